// After a failure the installer waits before rebooting, so an operator can look; SIGTSTP holds
// the reboot (as often as wanted) and SIGCONT releases it; SIGHUP starts the install over, as in
// Dominator's installer. The failure here is the installer
// refusing a real install on a system that runs from a disk (this one); it runs in network and
// mount namespaces of its own all the same.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { failingInstaller, isRoot, tmpDir } from './helpers.ts';

describe('installer failure wait', { skip: !isRoot() && 'needs root (network namespace)' }, () => {
  let work: string;
  before(() => {
    work = tmpDir('cradle-failure-');
    fs.mkdirSync(path.join(work, 'sys', 'class', 'net'), { recursive: true });
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  /** The failing installer, started; `signal` reaches the installer itself (unshare forwards nothing). */
  function start(failureWait: number) {
    const argv = failingInstaller(work, { failureWait, status: false, namespaces: ['--net', '--mount'] });
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' },
    });
    let out = '';
    child.stderr.on('data', (b: Buffer) => (out += b));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 1200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, re);
    };
    const signal = (name: NodeJS.Signals) =>
      process.kill(
        Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]) ||
          child.pid!,
        name,
      );
    return { child, exited, waitFor, signal, out: () => out };
  }

  test('SIGTSTP holds the exit after a failure until SIGCONT', async () => {
    const { child, exited, waitFor, signal, out } = start(1);
    try {
      // Held as soon as the attempt has failed, before its 1 s wait begins: no race with that wait,
      // however busy the machine.
      await waitFor(/install failed: this system runs from a disk, not from an installer image/);
      signal('SIGTSTP');
      await waitFor(/reboot held by SIGTSTP until released/);
      // Its wait is over, and the hold keeps it there.
      await waitFor(/exiting in 1 s[\s\S]*reboot held by SIGTSTP: waiting for its release/);
      assert.equal(child.exitCode, null, out());
      assert.doesNotMatch(out(), /ran umount/, 'it unmounted something it did not mount');
      signal('SIGCONT');
      assert.equal(await exited, 1, out());
      assert.match(out(), /reboot released by SIGCONT/);
      assert.ok(
        fs.readFileSync(path.join(work, 'log', 'latest'), 'utf8').includes('FAILED'),
        'the log file has the failure',
      );
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('SIGHUP while it waits after a failure starts a new attempt at once', async () => {
    // A wait of an hour: only SIGHUP can end it within the test.
    const { child, exited, waitFor, signal, out } = start(3600);
    try {
      await waitFor(/exiting in 3600 s/);
      signal('SIGHUP');
      await waitFor(/restart asked for by SIGHUP: installing again\n[\s\S]*retrying the install/);
      // The second attempt runs the whole sequence again, and fails the same way.
      await waitFor(/retrying the install[\s\S]*install failed: this system runs from a disk[\s\S]*exiting in 3600 s/);
      assert.equal((out().match(/install failed:/g) ?? []).length, 2, out());
      assert.equal(child.exitCode, null, 'SIGHUP does not end the installer');
      // And again: every SIGHUP is taken, not only the first (Dominator's handler takes one).
      signal('SIGHUP');
      await waitFor(/(install failed:[\s\S]*){3}exiting in 3600 s/);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
