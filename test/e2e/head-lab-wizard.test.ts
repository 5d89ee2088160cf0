// VM end to end (QEMU under TCG): a person at the head node's serial console goes through
// `cradle setup`'s wizard, all 11 screens, as `cradle lab --head-node --interactive` hands it to
// them. The test plays the lab's wizard script (test/support/wizard-script.ts, rehearsed in seconds
// by test/setup-wizard-lab.test.ts) through the PTY of QEMU's serial port: it goes Back once, walks
// into three refusals on their screens (one disk short of 40 GB, /boot on LVM, no OS kit), then
// confirms. The ISO carries only what the wizard has no screen for (the lab's operators' CA) and no
// consent: the wizard's `yes` is it. A rehearsal (cradle.dry-run=yes): the setup shows its plan
// and stops, disks untouched, and the answers it kept equal the zero-touch ones but for the
// password's salt (the zero-touch test installs from the same answers).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { labHeadAnswers } from '../../src/lab/head-lab-plan.ts';
import { runAtConsole } from '../../src/lab/head-shell.ts';
import { sha512Crypt } from '../../src/util/sha512-crypt.ts';
import { TerminalSession } from '../support/terminal-session.ts';
import { labWizardScript } from '../support/wizard-script.ts';
import { headLabFixture, headLabSkip } from './head-lab-fixture.ts';

const PASSWORD = 'lab head password';

describe('VM: the wizard on the head node’s serial console', { skip: headLabSkip }, () => {
  const { lab, session } = headLabFixture('headwiz', {
    compute: 0,
    interactive: true,
    setupArgs: 'cradle.dry-run=yes',
  });

  test('11 screens, Back once, three refusals, yes: the plan, and the zero-touch answers', {
    timeout: 1_200_000,
  }, async () => {
    await lab.prepare();
    session.start();
    const head = lab.head!;
    assert.equal(head.console, 'pty', "the head node's console is a real terminal");
    const s = new TerminalSession(head, { promptLimitMs: 180_000 });
    const [welcome, ...script] = labWizardScript({ password: PASSWORD });
    await s.expect(welcome.expect, 600_000);
    await s.run(script);
    assert.equal(s.output.match(/Not accepted:/g)?.length, 3, 'three refusals, each on its screen');
    assert.doesNotMatch(s.output, new RegExp(PASSWORD), 'the password is never echoed');
    await s.expect(/dry run: nothing was touched/, 300_000);
    await s.expect(/cradle: the setup exited with status 0/, 60_000);

    // The answers kept, as the zero-touch install would have saved them: the same but the salt.
    const kept = parseYaml((await runAtConsole(head, 'cat /run/cradle/answers.yaml', 120_000)).replaceAll('\r', ''));
    const { rootPassword, ...rest } = kept;
    const zeroTouch = labHeadAnswers(lab.plan, {
      password: PASSWORD,
      operatorCa: fs.readFileSync(lab.pki!.ca, 'utf8'),
    });
    const { rootPassword: _plain, ...expected } = zeroTouch;
    assert.deepEqual(rest, expected);
    const salt = /^\$6\$([^$]+)\$/.exec(rootPassword?.hash ?? '')?.[1];
    assert.ok(salt, `a SHA-512 crypt hash: ${rootPassword?.hash}`);
    assert.equal(sha512Crypt(PASSWORD, salt), rootPassword.hash, 'the hash is of the password typed');
    await session.stop();
    for (const d of lab.plan.head.disks) assert.equal(fs.statSync(d).blocks, 0, `${d}: a rehearsal writes nothing`);
  });
});
