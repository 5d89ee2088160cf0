import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { createCa } from '../pki/pki.ts';
import { HEAD_LAB_DEFAULTS, HeadLab } from './head-lab.ts';
import type { LabPki } from './lab-pki.ts';

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

test("an operator's answers: the lab adds its compute nodes and operators' CA; a gap is refused before anything is built", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-head-lab-'));
  try {
    await createCa(path.join(dir, 'ca'), { name: 'lab CA', days: 30 });
    const pki = { ca: path.join(dir, 'ca/ca.pem') } as LabPki;
    const withAnswers = (text: string) => {
      fs.writeFileSync(path.join(dir, 'mine.yaml'), text);
      const l = new HeadLab({
        ...HEAD_LAB_DEFAULTS,
        dir,
        compute: 1,
        answers: path.join(dir, 'mine.yaml'),
        log: () => {},
      });
      l.pki = pki;
      return l;
    };
    const own = new HeadLab({ ...HEAD_LAB_DEFAULTS, dir, compute: 1, log: () => {} });
    own.pki = pki;
    own.password = 'a-lab-password';
    const full = parseYaml(own.answersText());
    const mine = { ...full, hostname: 'mine.example.org', nodes: undefined, operators: undefined };
    const merged = parseYaml(withAnswers(JSON.stringify(mine)).answersText());
    assert.equal(merged.hostname, 'mine.example.org');
    assert.deepEqual(merged.nodes, [
      { hostname: 'compute1', mac: '52:54:00:10:01:01', ip: '10.1.0.11', nodeGroup: 'compute' },
    ]);
    assert.match(merged.operators.ca, /BEGIN CERTIFICATE/);
    assert.throws(
      () => withAnswers('cradleSetup: 1\nhostname: head.example.org\n').answersText(),
      /mine\.yaml leaves out language, keyboard, timezone, rootPassword, network, disks: the head node installs from it unattended/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
