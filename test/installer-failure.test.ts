// After a failure the installer waits before rebooting, so an operator can look; SIGTSTP holds
// the reboot (as often as wanted) and SIGCONT releases it. The failure here is the installer
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

  test('SIGTSTP holds the exit after a failure until SIGCONT', async () => {
    const argv = failingInstaller(work, { failureWait: 1, status: false, namespaces: ['--net', '--mount'] });
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
    // Held as soon as the attempt has failed, before its 1 s wait begins: no race with that wait,
    // however busy the machine.
    await waitFor(/install failed: this system runs from a disk, not from an installer image/);
    // unshare forwards nothing: signal the installer itself, unshare's only child.
    const pid =
      Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]) ||
      child.pid!;
    process.kill(pid, 'SIGTSTP');
    await waitFor(/reboot held by SIGTSTP until released/);
    // Its wait is over, and the hold keeps it there.
    await waitFor(/exiting in 1 s[\s\S]*reboot held by SIGTSTP: waiting for its release/);
    assert.equal(child.exitCode, null, out);
    assert.doesNotMatch(out, /ran umount/, 'it unmounted something it did not mount');
    process.kill(pid, 'SIGCONT');
    assert.equal(await exited, 1, out);
    assert.match(out, /reboot released by SIGCONT/);
    assert.ok(
      fs.readFileSync(path.join(work, 'log', 'latest'), 'utf8').includes('FAILED'),
      'the log file has the failure',
    );
  });
});
