// Where the storage programs run from: a program is found in a root only as the kernel would find
// it after chroot (symlinks, absolute ones too, resolved inside the root; executable files only),
// in an unpacked tree or in an image's manifest alike; runTool chroots into the root when it has
// the program, gives a file inside the root by its path there, and falls back to the installer's
// own program, saying so once.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { MANIFEST_FORMAT, type Entry, type Manifest } from '../image/model/manifest.ts';
import { Executor } from '../system/executor.ts';
import { parseStorageLayout } from './layout.ts';
import { planStorage } from './plan.ts';
import { directoryLstat, findProgram, manifestLstat, runTool, toolPrograms, toolsRoot } from './tools-root.ts';

const DIRS = ['/usr/local/sbin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const meta = { uid: 0, gid: 0, mtime: '0.000000000' };
const dir = (p: string): Entry => ({ type: 'dir', path: p, mode: 0o755, ...meta });
const file = (p: string, mode = 0o755): Entry => ({ type: 'file', path: p, mode, size: 1, ...meta });
const link = (p: string, target: string): Entry => ({ type: 'symlink', path: p, target, mode: 0o777, ...meta });

/** A merged-/usr image: /sbin is a link to usr/sbin, mkfs.ext4 a link to mke2fs. */
const manifest: Manifest = {
  format: MANIFEST_FORMAT,
  entries: [
    dir('.'),
    dir('usr'),
    dir('usr/sbin'),
    dir('usr/bin'),
    dir('usr/lib'),
    link('sbin', 'usr/sbin'),
    file('usr/sbin/mke2fs'),
    link('usr/sbin/mkfs.ext4', 'mke2fs'),
    // Absolute, so it must resolve inside the image, not on the installer.
    link('usr/sbin/cryptsetup', '/usr/lib/cryptsetup'),
    file('usr/lib/cryptsetup'),
    { type: 'hardlink', path: 'usr/sbin/sfdisk', target: 'usr/sbin/mke2fs' },
    file('usr/bin/partx', 0o644), // not executable
    link('usr/sbin/loop', 'loop'),
    link('usr/sbin/elsewhere', '/bin/sh'), // the image has no /bin/sh: the installer's does not count
  ],
};

describe('finding a program in a root', () => {
  const lstat = manifestLstat(manifest);
  it('finds executables through relative, absolute and hard links, first in PATH order', () => {
    assert.equal(findProgram(lstat, 'mkfs.ext4', DIRS), '/usr/sbin/mkfs.ext4');
    assert.equal(findProgram(lstat, 'cryptsetup', DIRS), '/usr/sbin/cryptsetup');
    assert.equal(findProgram(lstat, 'sfdisk', DIRS), '/usr/sbin/sfdisk');
    // Found through the /sbin link when PATH names /sbin first.
    assert.equal(findProgram(lstat, 'mke2fs', ['/sbin', '/usr/sbin']), '/sbin/mke2fs');
  });
  it('does not take a non-executable file, a loop, or a link leading out of the image', () => {
    assert.equal(findProgram(lstat, 'partx', DIRS), undefined);
    assert.equal(findProgram(lstat, 'loop', DIRS), undefined);
    assert.equal(findProgram(lstat, 'elsewhere', DIRS), undefined);
    assert.equal(findProgram(lstat, 'mkfs.xfs', DIRS), undefined);
  });

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-tools-root-'));
  after(() => fs.rmSync(work, { recursive: true, force: true }));
  it('resolves an unpacked tree the same way', () => {
    fs.mkdirSync(path.join(work, 'usr/sbin'), { recursive: true });
    fs.mkdirSync(path.join(work, 'opt/tools'), { recursive: true });
    fs.symlinkSync('usr/sbin', path.join(work, 'sbin'));
    fs.writeFileSync(path.join(work, 'opt/tools/sfdisk'), '#!/bin/sh\n', { mode: 0o755 });
    fs.symlinkSync('/opt/tools/sfdisk', path.join(work, 'usr/sbin/sfdisk'));
    // The installer has /bin/sh, the tree does not.
    fs.symlinkSync('/bin/sh', path.join(work, 'usr/sbin/sh'));
    const tree = directoryLstat(work);
    assert.equal(findProgram(tree, 'sfdisk', ['/sbin']), '/sbin/sfdisk');
    assert.equal(findProgram(tree, 'sh', DIRS), undefined);
  });
});

describe('running a program from the tools root', () => {
  it('chroots when the root has it, maps files inside the root, and falls back once, saying so', async () => {
    const exec = new Executor({ dryRun: true, log: () => {} });
    const said: string[] = [];
    const tools = toolsRoot(
      '/tmproot',
      'tools image t/1',
      manifestLstat(manifest),
      (_p, line) => said.push(line),
      DIRS,
    );
    await runTool(exec, tools, 'cryptsetup', ['--key-file', '/tmproot/run/k.key', '/dev/sda3']);
    await runTool(exec, tools, 'partx', ['--update', '/dev/sda']);
    await runTool(exec, tools, 'partx', ['--update', '/dev/sdb']);
    await runTool(exec, undefined, 'mkfs.ext4', ['/dev/sda2']);
    assert.deepEqual(exec.skipped, [
      'chroot /tmproot /usr/sbin/cryptsetup --key-file /run/k.key /dev/sda3',
      'partx --update /dev/sda',
      'partx --update /dev/sdb',
      'mkfs.ext4 /dev/sda2',
    ]);
    assert.deepEqual(said, ["tools image t/1 at /tmproot has no partx: running the installer's own partx"]);
  });
});

describe('the programs a plan runs from the tools root', () => {
  it('partitioning, cryptsetup only when encrypting, and one mkfs per file-system type', () => {
    const plan = (encrypt: boolean) =>
      planStorage(
        {
          firmware: 'uefi',
          drives: [
            {
              name: 'sda',
              path: '/dev/sda',
              sizeBytes: 8 * 1024 ** 3,
              model: '',
              serial: '',
              busPath: '',
              rotational: false,
            },
          ],
          layout: parseStorageLayout(
            JSON.stringify({
              BootDriveLayout: [
                { MountPoint: '/', MinimumBytes: 1024 ** 3 },
                { MountPoint: '/srv', FileSystemType: 'xfs', MinimumBytes: 1024 ** 3 },
              ],
              Encrypt: encrypt,
            }),
          ),
          usage: new Map(),
        },
        () => '6a1c0de0-0000-4000-8000-000000000001',
      );
    assert.deepEqual(toolPrograms(plan(false)), ['sfdisk', 'partx', 'mkfs.vfat', 'mkfs.ext4', 'mkfs.xfs']);
    assert.deepEqual(toolPrograms(plan(true)), ['sfdisk', 'partx', 'cryptsetup', 'mkfs.vfat', 'mkfs.ext4', 'mkfs.xfs']);
  });
});
