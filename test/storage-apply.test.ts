// The storage steps on a real loop device, through the Executor: a dry run records the commands
// and changes nothing; a real run erases, partitions (GPT, with partition nodes even on a kernel
// that parses no partition tables), formats LUKS2 with the key file, and makes file systems whose
// UUIDs and labels are the plan's; from a tools root, the same chrooted in it. Opening LUKS needs
// device-mapper, which this host kernel lacks: that part runs in the installer-image VM tests.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { eraseDrive, luksFormat, makeFileSystem, partitionDrive } from '../src/storage/apply.ts';
import { parseStorageLayout } from '../src/storage/layout.ts';
import { partitionDevice } from '../src/storage/partitions.ts';
import { planStorage, type StoragePlan } from '../src/storage/plan.ts';
import { readDriveContents, describeContents } from '../src/storage/contents.ts';
import { directoryLstat, toolsRoot } from '../src/storage/tools-root.ts';
import { Executor } from '../src/system/executor.ts';
import { bindMounts } from '../src/system/mounts.ts';
import { writeInRoot } from '../src/util/in-root.ts';
import { isRoot, removeWorkDir, sh, tmpDir } from './helpers.ts';
import { Lab } from './lab.ts';

const MiB = 1024 * 1024;

describe('storage steps on a loop device', { skip: !isRoot() && 'needs root (loop devices)' }, () => {
  let work: string;
  let lab: Lab;
  let disk: string;
  let plan: StoragePlan;
  const log: string[] = [];

  before(() => {
    work = tmpDir('cradle-apply-');
    lab = new Lab('apply');
    disk = lab.loopDevice(path.join(work, 'disk.img'), 1536 * MiB);
    const layout = parseStorageLayout(
      JSON.stringify({
        BootDriveLayout: [
          { MountPoint: '/', MinimumBytes: 300 * MiB },
          { MountPoint: '/srv', FileSystemType: 'xfs', MinimumBytes: 320 * MiB },
        ],
        Encrypt: true,
      }),
    );
    let n = 0;
    plan = planStorage(
      {
        firmware: 'uefi',
        drives: [
          {
            name: path.basename(disk),
            path: disk,
            sizeBytes: 1536 * MiB,
            model: '',
            serial: '',
            busPath: '',
            rotational: false,
          },
        ],
        layout,
        usage: new Map(),
      },
      () => `6a1c0de0-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    );
  });
  after(() => {
    lab?.cleanup();
    if (work) removeWorkDir(work);
  });

  test('a dry run records every command and leaves the drive alone', async () => {
    fs.writeFileSync(disk, Buffer.alloc(MiB, 0xab));
    const exec = new Executor({ dryRun: true, log: (l) => log.push(l) });
    const drive = plan.drives[0];
    await eraseDrive(exec, drive);
    await partitionDrive(
      exec,
      drive,
      drive.partitions.map((p) => partitionDevice(disk, p.number)),
    );
    for (const f of plan.fileSystems) {
      await luksFormat(exec, f, '/nonexistent.key');
      await makeFileSystem(exec, f);
    }
    assert.deepEqual(
      exec.skipped.map((c) => c.split(' ')[0]),
      ['blkdiscard', 'sfdisk', 'partx', 'mkfs.vfat', 'mkfs.ext4', 'cryptsetup', 'mkfs.xfs', 'cryptsetup', 'mkfs.ext4'],
    );
    const head = Buffer.alloc(MiB);
    const fd = fs.openSync(disk, 'r');
    fs.readSync(fd, head, 0, MiB, 0);
    fs.closeSync(fd);
    assert.ok(
      head.every((b) => b === 0xab),
      'the drive was written',
    );
  });

  test('erase, partition, LUKS2 format and mkfs produce what the plan says', async () => {
    const exec = new Executor({ dryRun: false, log: (l) => log.push(l) });
    const drive = plan.drives[0];
    await eraseDrive(exec, drive);
    await partitionDrive(
      exec,
      drive,
      drive.partitions.map((p) => partitionDevice(disk, p.number)),
    );
    const contents = await readDriveContents(exec, disk);
    assert.equal(contents.table, 'gpt');
    assert.deepEqual(
      contents.partitions.map((p) => p.sizeBytes / MiB),
      drive.partitions.map((p) => p.sizeBytes / MiB),
    );

    const key = path.join(work, 'crypt.key');
    fs.writeFileSync(key, Buffer.alloc(64, 7), { mode: 0o600 });
    for (const f of plan.fileSystems) {
      if (f.luks) {
        await luksFormat(exec, f, key);
        const dump = sh('cryptsetup', ['luksDump', f.partition]);
        assert.match(dump, /Version:\s+2/);
        assert.match(dump, new RegExp(`UUID:\\s+${f.luks.uuid}`));
        assert.match(dump, /PBKDF:\s+pbkdf2/);
        sh('cryptsetup', ['luksOpen', '--test-passphrase', '--key-file', key, f.partition]); // the key opens it
      } else {
        await makeFileSystem(exec, f);
        const tags = sh('blkid', ['-p', '-o', 'export', f.partition]);
        assert.match(tags, new RegExp(`^UUID=${f.uuid}$`, 'm'));
        assert.match(tags, new RegExp(`^LABEL=${f.label}$`, 'm'));
        assert.match(tags, new RegExp(`^TYPE=${f.type}$`, 'm'));
      }
    }
    assert.match(
      describeContents(await readDriveContents(exec, disk)),
      /^GPT: #1 0\.3 GiB vfat 'EFI', #2 0\.3 GiB ext4 'rootfs', #3 0\.3 GiB crypto_LUKS '\/srv', #4 0\.6 GiB crypto_LUKS '\/data\/0'$/,
    );
  });

  test("from a tools root: its programs chrooted in it, the key by its path there, the installer's own where it lacks one", async () => {
    // The tools root: Debian's bootable image (it has no sfdisk), through an overlay so the cached
    // tree is not changed.
    const rootfs = debianRootfs('bootable');
    const tree = path.join(work, 'tools');
    for (const d of ['tools', 'tools-upper', 'tools-work']) fs.mkdirSync(path.join(work, d));
    sh('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${rootfs},upperdir=${path.join(work, 'tools-upper')},workdir=${path.join(work, 'tools-work')}`,
      tree,
    ]);
    const mounted: string[] = [];
    const ran: string[] = [];
    try {
      const exec = new Executor({ dryRun: false, log: (l) => ran.push(l) });
      await bindMounts(exec, tree, (d) => mounted.push(d));
      const said: string[] = [];
      const tools = toolsRoot(tree, 'image debian', directoryLstat(tree), (_p, line) => said.push(line));
      writeInRoot(tree, 'run/test.key', Buffer.alloc(64, 9), 0o600);
      const key = path.join(tree, 'run/test.key');
      const drive = plan.drives[0];
      await eraseDrive(exec, drive);
      await partitionDrive(
        exec,
        drive,
        drive.partitions.map((p) => partitionDevice(disk, p.number)),
        tools,
      );
      for (const f of plan.fileSystems) {
        if (f.luks) {
          await luksFormat(exec, f, key, tools);
          assert.match(sh('cryptsetup', ['luksDump', f.partition]), new RegExp(`UUID:\\s+${f.luks.uuid}`));
          sh('cryptsetup', ['luksOpen', '--test-passphrase', '--key-file', key, f.partition]);
        } else {
          await makeFileSystem(exec, f, tools);
          assert.match(sh('blkid', ['-p', '-o', 'export', f.partition]), new RegExp(`^UUID=${f.uuid}$`, 'm'));
        }
      }
      const chrooted = (program: string) => new RegExp(`^ran chroot ${tree} /\\S+/${program} `, 'm');
      const all = ran.join('\n');
      assert.match(all, chrooted('partx --update'), all);
      assert.match(all, chrooted('mkfs.vfat'), all);
      assert.match(all, chrooted('mkfs.ext4'), all);
      assert.match(
        all,
        new RegExp(`^ran chroot ${tree} /\\S+/cryptsetup luksFormat .* --key-file /run/test.key `, 'm'),
        all,
      );
      assert.match(all, /^ran sfdisk /m, all);
      assert.deepEqual(said, [`image debian at ${tree} has no sfdisk: running the installer's own sfdisk`]);
    } finally {
      for (const d of mounted.reverse()) sh('umount', [d]);
      sh('umount', [tree]);
    }
  });
});
