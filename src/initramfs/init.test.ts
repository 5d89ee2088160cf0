// The head-node ISO's part of init.sh, run for real by sh with stand-ins for the machine (blkid,
// mount, reboot, the setup itself) and /proc/cmdline and /run/cradle moved into a temporary
// directory: after a finished install the machine restarts into the head node, unless
// cradle.reboot=no keeps the live system and its shell (and says so on the console); a setup that
// stopped before the disks never restarts it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tmpDir } from '../../test/helpers.ts';

const init = fs.readFileSync(path.join(import.meta.dirname, 'init.sh'), 'utf8');

/** The `cradle.setup` branch of init.sh, its paths under `root` (the installer's branch left out). */
function setupBranch(root: string): string {
  const start = init.indexOf('[ "$mode" = setup ]; then');
  const end = init.indexOf('# A shell on the console');
  assert.ok(start >= 0 && end > start, 'init.sh still has its cradle.setup branch');
  return `mode=setup\nif ${init
    .slice(start, end)
    .replaceAll('/proc/cmdline', `${root}/cmdline`)
    .replaceAll('/run/cradle', `${root}/run`)
    .replaceAll('/usr/bin/cradle', 'cradle')}`;
}

describe('init.sh on the head-node ISO: after the setup', () => {
  let root: string;
  before(() => {
    root = tmpDir('cradle-init-');
    const bin = path.join(root, 'bin');
    fs.mkdirSync(bin);
    const stub = (name: string, body: string) =>
      fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    stub('blkid', 'echo /dev/sr0');
    stub('mount', 'exit 0');
    stub('sync', 'exit 0');
    stub('sleep', 'exit 0');
    stub('setsid', 'shift; exec "$@"'); // `setsid cttyhack PROGRAM ARGS`: runs PROGRAM ARGS
    stub('reboot', `echo "reboot $*" >> ${root}/rebooted`);
    // The setup: a finished install leaves the reboot marker with the host name behind.
    stub('cradle', `[ "$FINISHED" = yes ] && echo head.lab.test > ${root}/run/reboot\nexit "$STATUS"`);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  function boot(cmdline: string, setup: { finished: boolean; status: number }): { console: string; rebooted: boolean } {
    fs.rmSync(path.join(root, 'run'), { recursive: true, force: true });
    fs.rmSync(path.join(root, 'rebooted'), { force: true });
    fs.writeFileSync(path.join(root, 'cmdline'), `${cmdline}\n`);
    const script = path.join(root, 'init-setup.sh');
    fs.writeFileSync(script, setupBranch(root));
    const console = execFileSync('sh', [script], {
      encoding: 'utf8',
      env: {
        PATH: `${root}/bin:${process.env.PATH}`,
        FINISHED: setup.finished ? 'yes' : 'no',
        STATUS: String(setup.status),
      },
    });
    return { console, rebooted: fs.existsSync(path.join(root, 'rebooted')) };
  }

  const args = 'console=tty0 console=ttyS0,115200n8 loglevel=3 cradle.setup cradle.wipe=yes';

  test('a finished install restarts into the head node', () => {
    const r = boot(args, { finished: true, status: 0 });
    assert.equal(
      r.console,
      'cradle: the setup exited with status 0\ncradle: restarting into the head node head.lab.test\n',
    );
    assert.equal(r.rebooted, true);
    assert.equal(fs.readFileSync(path.join(root, 'rebooted'), 'utf8'), 'reboot -f\n');
  });

  test('cradle.reboot=no: the live system and its shell stay, and the console says so', () => {
    for (const cmdline of [`${args} cradle.reboot=no`, `cradle.reboot=no ${args}`]) {
      const r = boot(cmdline, { finished: true, status: 0 });
      assert.equal(
        r.console,
        'cradle: the setup exited with status 0\ncradle: cradle.reboot=no: not restarting into the head node head.lab.test; the shell is yours\n',
        cmdline,
      );
      assert.equal(r.rebooted, false, cmdline);
    }
    assert.equal(
      boot(`${args} cradle.reboot=nope`, { finished: true, status: 0 }).rebooted,
      true,
      'only "no" keeps it',
    );
  });

  test('a setup that stopped before the disks (confirmation, error) never restarts the machine', () => {
    for (const status of [0, 1]) {
      const r = boot(args, { finished: false, status });
      assert.equal(r.console, `cradle: the setup exited with status ${status}\n`);
      assert.equal(r.rebooted, false);
    }
  });
});
