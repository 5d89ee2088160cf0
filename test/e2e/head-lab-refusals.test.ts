// VM end to end (QEMU under TCG), the head-node lab's refusals: a head node whose answers are on
// the lab's web server (HTTPS on the public network, as `cradle lab --answers` serves them) but
// whose kernel line pins another certificate's fingerprint says so on its console and reads
// nothing; at the live system's shell, an unreachable answers URL is refused the same way, and the
// right pin fetches the answers but, with no cradle.wipe=yes, stops at the confirmation. Not a byte
// reaches either disk.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { HEAD_LAB_DEFAULTS, HeadLab } from '../../src/lab/head-lab.ts';
import { HeadLabSession } from '../../src/lab/head-lab-run.ts';
import { runAtConsole } from '../../src/lab/head-shell.ts';
import { isRoot, removeWorkDir, tmpDir } from '../helpers.ts';
import { vmAccelerator } from './vm.ts';

const canRun = isRoot() && fs.existsSync('/usr/bin/qemu-system-x86_64') && fs.existsSync('/usr/bin/grub-mkrescue');
const skip = !canRun && 'needs root, qemu-system-x86 and grub-mkrescue';
const accel = await vmAccelerator(canRun);

const WRONG_PIN = Array.from({ length: 32 }, () => 'AB').join(':');

describe('VM: the head node refuses answers it cannot trust or reach', { skip }, () => {
  const dir = tmpDir('cradle-e2e-headrefuse-');
  const lab = new HeadLab({
    ...HEAD_LAB_DEFAULTS,
    dir,
    compute: 0,
    accel,
    answersOverHttps: true,
    // No consent on the kernel line; the lab's pin is replaced by another (the last one counts).
    setupArgs: `cradle.answers-fingerprint=${WRONG_PIN}`,
    namespace: `cradle-e2e-headrefuse-${process.pid}`,
    log: () => {},
  });
  const session = new HeadLabSession(lab);
  after(async () => {
    await session.stop();
    removeWorkDir(dir);
  });

  test('a wrong fingerprint, an unreachable URL, no consent: a clear message, nothing written', {
    timeout: 1_200_000,
  }, async () => {
    await lab.prepare();
    session.start();
    const m = lab.head!;
    const url = lab.answersUrl.replaceAll('.', '\\.');
    // Fingerprints as the setup writes them: 64 hex digits, lower case.
    const hex = (f: string) => f.replaceAll(':', '').toLowerCase();
    await m.waitFor(
      new RegExp(
        `cradle: the answers at ${url}: the server's certificate has fingerprint ${hex(lab.answersPin())}, not the pinned ${hex(WRONG_PIN)}: nothing was read`,
      ),
      900_000,
    );
    await m.waitFor(/cradle: the setup exited with status [1-9]/, 60_000);
    assert.equal(session.clock.timeline.setupDoneAt, undefined, 'the setup never got to the disks');

    // The live system's shell: an operator tries again by hand.
    const setup = (args: string) =>
      runAtConsole(m, `cradle setup --media /run/cradle/media --network dhcp ${args} 2>&1`, 300_000);
    await assert.rejects(
      setup('--answers https://192.0.2.1:1/answers.yaml'),
      /the answers at https:\/\/192\.0\.2\.1:1\/answers\.yaml: .*\(is the address right, the server up, the network configured\?\)/,
    );
    const fetched = await setup(`--answers ${lab.answersUrl} --answers-fingerprint ${lab.answersPin()}`);
    assert.match(fetched, new RegExp(`answers from ${url}`));
    assert.match(fetched, /stopped at the confirmation: without cradle\.wipe=yes .*nothing was touched/);
    await session.stop();
    for (const d of lab.plan.head.disks) assert.equal(fs.statSync(d).blocks, 0, `${d}: not a byte written`);
  });
});
