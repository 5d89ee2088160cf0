import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { createCa } from '../pki/pki.ts';
import { parseAnswers } from '../setup/answers.ts';
import { parseFacts } from '../setup/facts.ts';
import { planSetup } from '../setup/plan.ts';
import { headLabPlan, labHeadAnswers } from './head-lab-plan.ts';

const facts = parseFacts(
  fs.readFileSync(path.join(import.meta.dirname, 'testdata/head-facts.json'), 'utf8'),
  'head-facts.json',
);

test("the lab's head node: its answers pass the setup's own checks on its machine, with both disks only", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-head-lab-plan-'));
  try {
    await createCa(path.join(dir, 'ca'), { name: 'lab CA', days: 30 });
    const plan = headLabPlan({ dir: '/lab', compute: 2, firmware: 'bios' });
    assert.deepEqual(
      plan.compute.map((c) => [c.hostname, c.mac, c.ip, c.tap]),
      [
        ['compute1', '52:54:00:10:01:01', '10.1.0.11', 'tap-compute1'],
        ['compute2', '52:54:00:10:01:02', '10.1.0.12', 'tap-compute2'],
      ],
    );
    const answers = labHeadAnswers(plan, {
      password: 'a-lab-password',
      operatorCa: fs.readFileSync(path.join(dir, 'ca/ca.pem'), 'utf8'),
    });
    // Through YAML, as the ISO carries it.
    const parsed = parseAnswers(toYaml(answers), 'the lab answers');
    const setup = planSetup(parsed, facts, { salt: 'labsalt' });
    assert.deepEqual(
      setup.nodes.map((n) => [n.hostname, n.ip, n.nodeGroup]),
      [
        ['compute1', '10.1.0.11', 'compute'],
        ['compute2', '10.1.0.12', 'compute'],
      ],
    );
    assert.equal(setup.network.provisioning.address, '10.1.0.1');
    assert.ok(setup.operatorCa, "the lab's CA is an operators' CA of the head node");
    // One 30 GiB disk alone fails the 40 GB rule: LVM must span both.
    const oneDisk = parseAnswers(toYaml({ ...answers, disks: { match: { path: '/dev/vda' } } }), 'one disk');
    assert.throws(() => planSetup(oneDisk, facts), /hold 32\.2 GB: a head node needs at least 40\.0 GB/);
    assert.throws(() => headLabPlan({ dir: '/lab', compute: 21, firmware: 'bios' }), /--compute 21: give 0 to 20/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
