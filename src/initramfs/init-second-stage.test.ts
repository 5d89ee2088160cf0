// init.sh's mount_second_stage, run for real by sh with busybox's sha256sum, cut and cat (the
// image's own), stand-ins for modprobe and mount, and its paths moved into a temporary directory
// (the host's sh, since busybox's static sh runs its own applets before any on PATH): Node and the installer are mounted only from a second stage whose digest is the one
// the first stage carries, and a missing or foreign one is named on the console.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tmpDir } from '../../test/helpers.ts';
import { SECOND_STAGE_DIGEST, SECOND_STAGE_FILE, SECOND_STAGE_MOUNT } from './installer-files.ts';
import { hostProgram } from './resolve.ts';

const init = fs.readFileSync(path.join(import.meta.dirname, 'init.sh'), 'utf8');

/** The function's text, its paths under `root`. */
function mountSecondStage(root: string): string {
  const start = init.indexOf('mount_second_stage() {');
  const end = init.indexOf('\n}\n', start);
  assert.ok(start >= 0 && end > start, 'init.sh still defines mount_second_stage');
  return init
    .slice(start, end + 3)
    .replaceAll('/etc/installer/', `${root}/etc/installer/`)
    .replaceAll(SECOND_STAGE_FILE, `${root}${SECOND_STAGE_FILE}`)
    .replaceAll(`${SECOND_STAGE_MOUNT} `, `${root}${SECOND_STAGE_MOUNT} `)
    .replaceAll(`${SECOND_STAGE_MOUNT}\n`, `${root}${SECOND_STAGE_MOUNT}\n`)
    .replaceAll('/proc/uptime', `${root}/uptime`);
}

describe('init.sh: the second stage', () => {
  let root: string;
  const squashfs = Buffer.from('a squashfs stand-in');
  const digest = createHash('sha256').update(squashfs).digest('hex');

  before(() => {
    root = tmpDir('cradle-init-stage2-');
    const bin = path.join(root, 'bin');
    fs.mkdirSync(bin);
    const busybox = hostProgram('busybox', 'busybox-static');
    for (const applet of ['sha256sum', 'cut', 'cat']) fs.symlinkSync(busybox, path.join(bin, applet));
    const stub = (name: string, body: string) =>
      fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    stub('modprobe', `echo "modprobe $*" >> ${root}/calls`);
    stub('mount', `echo "mount $*" >> ${root}/calls`);
    fs.mkdirSync(path.join(root, 'etc/installer'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/installer/modules.stage2'), 'loop\nsquashfs\n');
    fs.writeFileSync(path.join(root, 'uptime'), '7.25 12.00\n');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  function boot(
    stage2: Buffer | undefined,
    carried: string,
  ): { status: number | null; console: string; calls: string } {
    fs.rmSync(path.join(root, 'calls'), { force: true });
    fs.rmSync(path.join(root, SECOND_STAGE_FILE), { force: true });
    if (stage2) fs.writeFileSync(path.join(root, SECOND_STAGE_FILE), stage2);
    fs.writeFileSync(path.join(root, SECOND_STAGE_DIGEST), `${carried}\n`);
    const r = spawnSync('/bin/sh', ['-c', `${mountSecondStage(root)}mount_second_stage`], {
      encoding: 'utf8',
      env: { PATH: path.join(root, 'bin') },
    });
    const calls = fs.existsSync(path.join(root, 'calls')) ? fs.readFileSync(path.join(root, 'calls'), 'utf8') : '';
    return { status: r.status, console: r.stdout + r.stderr, calls };
  }

  test('the second stage whose digest the first carries is mounted read-only, after its modules', () => {
    const r = boot(squashfs, digest);
    assert.equal(r.status, 0, r.console);
    assert.equal(r.console, 'cradle: second stage mounted, up 7.25 s\n');
    assert.equal(
      r.calls,
      `modprobe -a -q loop squashfs\nmount -t squashfs -o ro,loop ${root}${SECOND_STAGE_FILE} ${root}${SECOND_STAGE_MOUNT}\n`,
    );
  });

  test('a second stage from another build is not mounted, and the console names both digests', () => {
    const other = createHash('sha256').update('another build').digest('hex');
    const r = boot(squashfs, other);
    assert.equal(r.status, 1);
    assert.equal(
      r.console,
      `cradle: the second stage is not this image's (sha256 ${digest}, expected ${other}): serve the stage2.img built with this initrd.img\n`,
    );
    assert.doesNotMatch(r.calls, /^mount/m);
  });

  test('a boot loader that loaded only initrd.img: the console says what to load', () => {
    const r = boot(undefined, digest);
    assert.equal(r.status, 1);
    assert.match(r.console, /no second stage .*the boot loader must load stage2\.img after initrd\.img/);
    assert.doesNotMatch(r.calls, /^mount/m);
  });

  test('init.sh uses the paths the build writes', () => {
    for (const p of [SECOND_STAGE_FILE, SECOND_STAGE_MOUNT, SECOND_STAGE_DIGEST])
      assert.ok(init.includes(p), `init.sh names ${p}`);
  });
});
