// The installer daemon on real devices, as root: loop devices as drives, a real image from an
// image server in its own network namespace, the installer in another, its eth0 a veth whose MAC
// Dominator's example config.json names. Encryption stops at luksFormat here (the host kernel has no
// device-mapper); the encrypted path runs in the installer-image VM tests.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { cradleBin, isRoot, sh, describeTree, diffTrees } from './helpers.ts';
import { GiB, goodFiles, InstallerHost, layout, MiB, SERVER } from './installer-host-fixture.ts';

/** Every path under `dir` with its type, mode, size and mtime (lstat only: nothing is read). */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (rel: string) => {
    const st = fs.lstatSync(path.join(dir, rel), { bigint: true });
    out.set(rel, `${st.mode.toString(8)} ${st.size} ${st.mtimeNs}`);
    if (st.isDirectory()) for (const name of fs.readdirSync(path.join(dir, rel))) visit(path.join(rel, name));
  };
  visit('.');
  return out;
}

function diffSnapshots(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, v] of a) if (b.get(p) !== v) out.push(`${p}: ${v} -> ${b.get(p) ?? 'gone'}`);
  for (const p of b.keys()) if (!a.has(p)) out.push(`${p}: new`);
  return out;
}

describe('installer on loop devices', { skip: !isRoot() && 'needs root (loop devices, mounts, namespaces)' }, () => {
  const host = new InstallerHost('inst');
  let work: string;
  let disk0: string;
  let disk1: string;
  let rootfs: string;
  const headAndTail = (dev: string) => host.headAndTail(dev);
  const placeFiles = (files: Record<string, string>, netboot = false) => host.placeFiles(files, netboot);
  const install = (files: Record<string, string> | 'placed', extra: string[] = [], netboot = false) =>
    host.install(files, extra, netboot);

  before(async () => {
    rootfs = debianRootfs('bootable');
    await host.setUp({
      netboot: true,
      addImages: (store, dir) => {
        // The changed image: the same tree plus 25 files (2.5 MB), through an overlay.
        const upper = path.join(dir, 'upper');
        fs.mkdirSync(path.join(upper, 'opt', 'app'), { recursive: true });
        for (let i = 0; i < 25; i++)
          fs.writeFileSync(path.join(upper, 'opt', 'app', `part${i}`), Buffer.alloc(100_000, i + 1));
        const changed = path.join(dir, 'changed');
        fs.mkdirSync(changed);
        fs.mkdirSync(path.join(dir, 'ovl-work'));
        sh('mount', [
          '-t',
          'overlay',
          'overlay',
          '-o',
          `lowerdir=${rootfs},upperdir=${upper},workdir=${path.join(dir, 'ovl-work')}`,
          changed,
        ]);
        try {
          sh(cradleBin, ['image', 'add', '--store', store, 'debian/v1', rootfs]);
          sh(cradleBin, ['image', 'add', '--store', store, 'debian/v2', changed]);
        } finally {
          sh('umount', [changed]);
        }
      },
    });
    ({ work, disk0, disk1 } = host);
  });

  after(() => host.cleanup());

  test('--dry-run shows the drives to wipe, partitions and file systems, and changes nothing', () => {
    // A dry run changes nothing, the installer's own network included: it uses what is set up.
    sh('ip', ['-n', host.lab!.machineNs, 'address', 'add', '192.168.1.2/24', 'dev', 'eth0']);
    sh('ip', ['-n', host.lab!.machineNs, 'link', 'set', 'eth0', 'up']);
    const before = headAndTail(disk0);
    // Everything the installer is pointed at (mount point, tmp root, logs, TFTP directory, TMPDIR)
    // is under the work directory: it is the same after as before, to the nanosecond.
    placeFiles(goodFiles('debian/v1'));
    const filesBefore = snapshot(work);
    const r = install('placed', ['--dry-run']);
    assert.equal(r.status, 0, r.out);
    // Only TMPDIR itself changes (its mtime): the dry run's scratch directory was made there, and
    // removed; nothing is left in it.
    const changed = diffSnapshots(filesBefore, snapshot(work)).filter((l) => !/^tmp: /.test(l));
    assert.deepEqual(changed, [], 'a dry run changed the file system');
    for (const want of [
      disk0,
      'BOOT DISK',
      'serial SER-BOOT-0',
      '4.0 GiB',
      'holds now',
      'Partitions of',
      '/var/log',
      'ext4 /home',
      '/data/0',
      '/data/1',
      'from the image server',
      'mkfs.ext4',
      'sfdisk',
      'grub-install',
    ]) {
      assert.ok(r.out.includes(want), `dry-run output lacks '${want}':\n${r.out}`);
    }
    assert.equal(headAndTail(disk0), before);
  });

  test("an old site's flag file, in Dominator's names, runs the installer to its plan", () => {
    // The network is the one the dry run above set up.
    placeFiles(goodFiles('debian/v1'));
    const selector = path.join(work, 'select-boot-disk');
    fs.writeFileSync(selector, `#!/bin/sh\n# the boot disk only\necho ${path.basename(disk0)}\n`, { mode: 0o755 });
    const flags = path.join(work, 'flags.default');
    fs.writeFileSync(
      flags,
      [
        '# flags.default of a Dominator installer image',
        `tftpDirectory=${path.join(work, 'tftpdata')}`,
        `tmpRoot=${path.join(work, 'tmproot')}`,
        `mountPoint=${path.join(work, 'mnt')}`,
        `logDir=${path.join(work, 'log')}`,
        `sysfsDirectory=${path.join(work, 'sys')}`,
        `driveSelector=${selector}`,
        'imageServerPortNum=6971',
        'portNum=6978',
        'skipNetwork=true',
        'logDebugLevel=1',
        '; a flag of a later Dominator release',
        'fleetManagerHostname=fleet-manager.example',
        '',
      ].join('\n'),
    );
    const r = host.run(
      [
        '-dryRun',
        '-allowRunningSystem',
        '-firmware=bios',
        '-bootedRoot',
        'none',
        `-buildTimestamp=${path.join(work, 'build-timestamp')}`,
      ],
      { CRADLE_FLAG_FILES: flags },
    );
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /flags\.default:13: unknown flag 'fleetManagerHostname' ignored/);
    // The drive selector of the file chose the boot disk alone.
    assert.ok(r.out.includes(`${disk0}`) && r.out.includes('Partitions of'), r.out);
    assert.ok(!r.out.includes(disk1), `the selector left ${disk1} out:\n${r.out}`);
    // Debug level 1 logs the programs that only read.
    assert.match(r.out, /reading (blkid|sfdisk|partx|lsblk)/);
  });

  test('installs the image onto the drives: tree, fstab, network and boot loader', () => {
    const r = install(goodFiles('debian/v1'));
    assert.equal(r.status, 0, r.out);

    sh('partx', ['--update', disk0]);
    sh('partx', ['--update', disk1]);
    const parts = JSON.parse(sh('sfdisk', ['--json', disk0])).partitiontable.partitions as {
      node: string;
      name: string;
    }[];
    assert.deepEqual(
      parts.map((p) => p.name),
      ['bios-boot', 'rootfs', 'home', 'var-log', 'data-0'],
    );
    const blk = (dev: string) =>
      Object.fromEntries(
        sh('blkid', ['-p', '-o', 'export', dev])
          .trim()
          .split('\n')
          .map((l) => l.split('=')),
      );
    const rootDev = `${disk0}p2`;
    const mnt = path.join(work, 'verify');
    fs.mkdirSync(mnt, { recursive: true });
    sh('mount', ['-o', 'ro', rootDev, mnt]);
    sh('mount', ['-o', 'ro', `${disk0}p4`, path.join(mnt, 'var/log')]);
    try {
      const fstab = fs.readFileSync(path.join(mnt, 'etc/fstab'), 'utf8');
      for (const [n, mp] of [
        [2, '/'],
        [3, '/home'],
        [4, '/var/log'],
        [5, '/data/0'],
      ] as const) {
        assert.match(fstab, new RegExp(`^UUID=${blk(`${disk0}p${n}`).UUID}\\s+${mp}\\s+ext4`, 'm'), fstab);
      }
      assert.match(fstab, new RegExp(`^UUID=${blk(`${disk1}p1`).UUID}\\s+/data/1\\s+ext4`, 'm'));
      assert.equal(blk(rootDev).LABEL, 'rootfs');

      // Everything the image holds is there, except what the installer writes on purpose.
      const ours =
        /^(etc\/(fstab|hostname|resolv\.conf|network\/interfaces|udev\/rules\.d(\/.*)?|cradle(\/boot-server)?)|var\/log(\/.*)?|var\/lib(\/initial-image)?|home|boot\/grub(\/.*)?|data(\/.*)?|dev|proc|sys|tmp)$/;
      // Directories the installer writes into have new mtimes; lost+found is mkfs's.
      const touched = /^(\.|boot|etc|etc\/network|etc\/udev|var|var\/log|var\/lib): mtimeNs|^lost\+found: unexpected/;
      const diff = diffTrees(
        describeTree(rootfs, (p) => ours.test(p)),
        describeTree(mnt, (p) => ours.test(p)),
      ).filter((l) => !touched.test(l));
      assert.deepEqual(diff, [], diff.slice(0, 20).join('\n'));

      assert.equal(fs.readFileSync(path.join(mnt, 'etc/hostname'), 'utf8'), 'hyper0\n');
      const interfaces = fs.readFileSync(path.join(mnt, 'etc/network/interfaces'), 'utf8');
      assert.match(interfaces, /iface eth0 inet static\n\taddress {6}192\.168\.1\.2\n/);
      assert.match(
        fs.readFileSync(path.join(mnt, 'etc/udev/rules.d/70-persistent-net.rules'), 'utf8'),
        /KERNELS=="0000:00:03.0", NAME="eth0"/,
      );
      assert.equal(
        fs.readFileSync(path.join(mnt, 'var/lib/initial-image'), 'utf8').trim().startsWith('debian/v1'),
        true,
      );
      assert.equal(
        fs.readFileSync(path.join(mnt, 'etc/cradle/boot-server'), 'utf8'),
        `http://${SERVER}:6977\n`,
        'the installed system finds its boot server to report in',
      );
      assert.ok(fs.existsSync(path.join(mnt, 'var/log/installer/config.json')));
      assert.match(fs.readFileSync(path.join(mnt, 'var/log/installer/log'), 'utf8'), /installed debian\/v1/);

      const grub = fs.readFileSync(path.join(mnt, 'boot/grub/grub.cfg'), 'utf8');
      assert.match(grub, new RegExp(`search --no-floppy --fs-uuid --set=root ${blk(rootDev).UUID}`));
      assert.match(grub, /linux \/boot\/vmlinuz-\S+ root=UUID=/);
      assert.ok(fs.existsSync(path.join(mnt, 'boot/grub/i386-pc/core.img')), 'grub-install wrote its modules');
    } finally {
      sh('umount', [path.join(mnt, 'var/log')]);
      sh('umount', [mnt]);
    }
    // GRUB's boot code in the first sector and its core image in the BIOS boot partition.
    const mbr = Buffer.alloc(512);
    const fd = fs.openSync(disk0, 'r');
    fs.readSync(fd, mbr, 0, 512, 0);
    const core = Buffer.alloc(512);
    fs.readSync(fd, core, 0, 512, MiB);
    fs.closeSync(fd);
    assert.ok(mbr.includes('GRUB'), 'MBR holds GRUB boot code');
    assert.ok(
      core.some((b) => b !== 0),
      'BIOS boot partition holds GRUB core',
    );

    const events = fs
      .readFileSync(path.join(work, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const phases = events.filter((e) => e.type === 'phase' && e.state === 'done').map((e) => e.phase);
    assert.deepEqual(phases.slice(0, 5), ['clock', 'network', 'plan', 'tools', 'storage']);
    const result = events.find((e) => e.type === 'result');
    assert.equal(result.ok, true);
    assert.ok(events.some((e) => e.type === 'progress' && e.bytesTotal > 0));
  });

  test('netbooted (DHCP, then configuration by TFTP), a changed image comes mostly from the old OS', () => {
    fs.rmSync(path.join(work, 'events.jsonl'), { force: true });
    const r = install(goodFiles('debian/v2'), ['--dhcp-timeout', '60'], true);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /DHCP: 192\.168\.1\.2 on eth0/);
    assert.match(r.out, /fetched storage-layout\.json \(\d+ bytes\) from tftp:\/\/192\.168\.1\.1/);
    assert.ok(fs.existsSync(path.join(work, 'log', 'dhcp', '0', 'packet')), 'the DHCP answer is logged');
    const result = fs
      .readFileSync(path.join(work, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.type === 'result');
    assert.equal(result.ok, true);
    // 25 new files of 100,000 bytes come over the network, plus the image's own versions of the
    // few small files the first install rewrote on the old system (fstab, hostname, ...).
    assert.ok(
      result.objects.bytesFetched >= 2_500_000 && result.objects.bytesFetched < 2_500_000 + 16 * 1024,
      JSON.stringify(result.objects),
    );
    assert.ok(result.objects.bytesFromCache > 500 * MiB, JSON.stringify(result.objects));
  });

  describe('bad input is refused before any drive is touched', () => {
    const cases: [string, () => Record<string, string>, string[], RegExp][] = [
      [
        'malformed config.json',
        () => goodFiles('debian/v1', { 'config.json': '{"Machine": {"HostIpAddress": "192.168.1.300"}}' }),
        [],
        /config\.json: field 'Machine\.HostIpAddress'.*IPv4/,
      ],
      [
        'a layout without /',
        () =>
          goodFiles('debian/v1', {
            'storage-layout.json': JSON.stringify({ BootDriveLayout: [{ MountPoint: '/home', MinimumFreeBytes: 1 }] }),
          }),
        [],
        /no root file system/,
      ],
      [
        'a malformed storage-layout.json',
        () => goodFiles('debian/v1', { 'storage-layout.json': '{"BootDriveLayout": [' }),
        [],
        /storage-layout\.json is not valid JSON/,
      ],
      [
        'a drive selector that prints nothing',
        () => goodFiles('debian/v1'),
        ['--drive-selector', '/bin/true'],
        /chose no drive/,
      ],
      [
        'a drive selector naming an unknown drive',
        () => goodFiles('debian/v1'),
        ['--drive-selector', path.join(import.meta.dirname, 'fixtures/select-sdz.sh')],
        /chose 'sdz', which is not a usable drive/,
      ],
      [
        'an unreachable image server',
        () => goodFiles('debian/v1', { imageserver: `${SERVER}:1\n` }),
        [],
        /ECONNREFUSED|cannot reach|connect/,
      ],
      ['an image that does not exist', () => goodFiles('debian/v9'), [], /debian\/v9/],
      [
        'a disk too small for the image',
        () =>
          goodFiles('debian/v1', {
            'storage-layout.json': layout({ BootDriveLayout: [{ MountPoint: '/', MinimumFreeBytes: 8 * GiB }] }),
          }),
        [],
        /too small/,
      ],
      [
        'encryption on a kernel without device-mapper',
        () => goodFiles('debian/v1', { 'storage-layout.json': layout({ Encrypt: true }) }),
        [],
        /no device-mapper/,
      ],
    ];
    for (const [name, files, extra, message] of cases) {
      test(name, () => {
        const before = [headAndTail(disk0), headAndTail(disk1)];
        const r = install(files(), extra);
        assert.equal(r.status, 1, r.out);
        assert.match(r.out, message);
        assert.deepEqual([headAndTail(disk0), headAndTail(disk1)], before, 'a drive was changed');
      });
    }
  });
});
