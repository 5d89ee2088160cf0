import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEAD_LAB_DEFAULTS, HeadLab } from './head-lab.ts';

// Constructing a HeadLab plans it only: no namespace, file or machine is made.
const lab = new HeadLab({ ...HEAD_LAB_DEFAULTS, dir: '/lab', compute: 4, log: () => {} });

test('compute nodes by name: all without names, the named ones in the plan’s order, an unplanned name refused', () => {
  const names = (nodes: { hostname: string }[]) => nodes.map((c) => c.hostname);
  assert.deepEqual(names(lab.computeNodes()), ['compute1', 'compute2', 'compute3', 'compute4']);
  assert.deepEqual(names(lab.computeNodes(['compute4', 'compute2'])), ['compute2', 'compute4']);
  assert.deepEqual(lab.computeNodes([]), []);
  assert.throws(
    () => lab.computeNodes(['compute2', 'compute9']),
    /compute node compute9: not in this lab \(it has compute1, compute2, compute3, compute4\)/,
  );
});
