// VM end to end (QEMU under TCG), the head-node lab's refusals: a head node whose answers are on
// the lab's web server (HTTPS on the public network, as `cradle lab --answers` serves them) but
// whose kernel line pins another certificate's fingerprint says so on its console and reads
// nothing; at the live system's shell, an unreachable answers URL is refused the same way, and the
// right pin fetches the answers but, with no cradle.wipe=yes, stops at the confirmation. Not a byte
// reaches either disk.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { runAtConsole } from '../../src/lab/head-shell.ts';
import { headLabFixture, headLabSkip } from './head-lab-fixture.ts';

const WRONG_PIN = Array.from({ length: 32 }, () => 'AB').join(':');

describe('VM: the head node refuses answers it cannot trust or reach', { skip: headLabSkip }, () => {
  const { lab, session } = headLabFixture('headrefuse', {
    compute: 0,
    answersOverHttps: true,
    // No consent on the kernel line; the lab's pin is replaced by another (the last one counts).
    setupArgs: `cradle.answers-fingerprint=${WRONG_PIN}`,
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
