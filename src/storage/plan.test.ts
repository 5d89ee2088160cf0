// Golden cases for the whole storage plan: Dominator's default layout on a BIOS and a UEFI machine
// with a data drive, rendered as --dry-run's partition list, fstab and crypttab would show it; plus
// drive discovery and selection from a sysfs tree, and the boot loader's configuration.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MANIFEST_FORMAT, type Entry, type Manifest } from '../image/model/manifest.ts';
import { findBootInfo, grubInstallOf, renderGrubConfig } from './bootloader.ts';
import { listDrives, selectDrives, type Drive } from './drives.ts';
import { renderCrypttab, renderFstab } from './fstab.ts';
import { MiB, parseStorageLayout } from './layout.ts';
import { usageByMountPoint } from './partitions.ts';
import { mapperName, planStorage, type StoragePlan } from './plan.ts';

const GiB = 1024 * MiB;
const SEED_LAYOUT = parseStorageLayout(
  fs.readFileSync(path.join(import.meta.dirname, 'testdata', 'seed-storage-layout.json'), 'utf8'),
);
const meta = { mode: 0o644, uid: 0, gid: 0, mtime: '0.000000000' };
const digest = `sha256:${'b'.repeat(64)}`;
const image: Manifest = {
  format: MANIFEST_FORMAT,
  entries: [
    { path: '.', type: 'dir', ...meta },
    { path: 'boot', type: 'dir', ...meta },
    { path: 'boot/vmlinuz-6.1.0-9-amd64', type: 'file', ...meta, size: 8 * MiB, digest },
    { path: 'boot/vmlinuz-6.1.0-10-amd64', type: 'file', ...meta, size: 8 * MiB, digest },
    { path: 'boot/initrd.img-6.1.0-10-amd64', type: 'file', ...meta, size: 30 * MiB, digest },
    { path: 'usr', type: 'dir', ...meta },
    { path: 'usr/sbin', type: 'dir', ...meta },
    { path: 'usr/sbin/grub-install', type: 'file', ...meta, size: 1000, digest },
    { path: 'usr/lib/grub', type: 'dir', ...meta },
    { path: 'usr/lib/grub/i386-pc', type: 'dir', ...meta },
    { path: 'usr/lib', type: 'file', ...meta, size: 700 * MiB, digest },
  ] as Entry[],
};
const drive = (name: string, sizeBytes: number): Drive => ({
  name,
  path: `/dev/${name}`,
  sizeBytes,
  model: 'M',
  serial: 'S',
  busPath: name,
  rotational: false,
});

/** The plan as text: what the golden files hold. */
function describePlan(plan: StoragePlan): string {
  const lines: string[] = [`firmware ${plan.firmware}`];
  for (const d of plan.drives) {
    lines.push(`drive ${d.device}`);
    for (const p of d.partitions)
      lines.push(`  ${p.number} ${p.name} start=${p.startBytes / MiB}MiB size=${p.sizeBytes / MiB}MiB type=${p.type}`);
  }
  for (const f of plan.fileSystems) {
    lines.push(
      `fs ${f.mountPoint} ${f.type} label=${f.label} on ${f.partition}${f.luks ? ` luks=${f.luks.name} -> ${f.device}` : ''}${f.mountWhileInstalling ? ' mounted' : ''}`,
    );
  }
  const made = plan.fileSystems.map((f) => ({
    mountPoint: f.mountPoint,
    type: f.type,
    uuid: f.uuid,
    discard: true,
    ...(f.luks ? { luks: { uuid: f.luks.uuid, name: f.luks.name } } : {}),
  }));
  return [...lines, '', renderFstab(made), renderCrypttab(made)].join('\n');
}

function golden(name: string, actual: string): void {
  const file = path.join(import.meta.dirname, 'testdata', name);
  if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs (UPDATE_GOLDEN=1 rewrites it after review)`);
}

function plan(firmware: 'bios' | 'uefi'): StoragePlan {
  let n = 0;
  const uuid = () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
  const mountPoints = ['/', '/home', '/var/log', '/data/0', '/boot/efi'];
  return planStorage(
    {
      firmware,
      drives: [drive('sda', 64 * GiB), drive('nvme0n1', 16 * GiB)],
      layout: SEED_LAYOUT,
      usage: usageByMountPoint(image, mountPoints),
    },
    uuid,
  );
}

describe('storage plan', () => {
  it('BIOS: BIOS boot partition, sized file systems, /data/0 and /data/1 encrypted', () =>
    golden('plan-bios', describePlan(plan('bios'))));
  it('UEFI: an ESP at /boot/efi first, never encrypted', () => golden('plan-uefi', describePlan(plan('uefi'))));
  it('mounts shallowest first and leaves /data/N for later', () => {
    assert.deepEqual(
      plan('bios').mounts.map((f) => f.mountPoint),
      ['/', '/home', '/var/log'],
    );
  });
  it('refuses mount points and bases that could leave the new root', () => {
    for (const bad of ['/../../etc', '/srv/./x', '/home dir']) {
      assert.throws(
        () =>
          parseStorageLayout(
            JSON.stringify({
              BootDriveLayout: [
                { MountPoint: '/', MinimumBytes: 1 },
                { MountPoint: bad, MinimumBytes: 1 },
              ],
            }),
          ),
        /BootDriveLayout\.1\.MountPoint/,
      );
    }
    for (const bad of ['/', 'data/', '/data/../']) {
      assert.throws(
        () =>
          parseStorageLayout(
            JSON.stringify({ BootDriveLayout: [{ MountPoint: '/', MinimumBytes: 1 }], ExtraMountPointsBasename: bad }),
          ),
        /ExtraMountPointsBasename/,
      );
    }
  });
  it('on UEFI a declared /boot/efi is the ESP: vfat, first, once, never encrypted', () => {
    const layout = parseStorageLayout(
      JSON.stringify({
        BootDriveLayout: [
          { MountPoint: '/', MinimumBytes: GiB },
          { MountPoint: '/boot/efi', MinimumBytes: 512 * MiB },
        ],
        Encrypt: true,
      }),
    );
    const p = planStorage(
      { firmware: 'uefi', drives: [drive('sda', 8 * GiB)], layout, usage: new Map() },
      () => '00000000-0000-4000-8000-000000000000',
    );
    assert.deepEqual(
      p.fileSystems.map((f) => [f.mountPoint, f.type, Boolean(f.luks)]),
      [
        ['/boot/efi', 'vfat', false],
        ['/', 'ext4', false],
        ['/data/0', 'ext4', true],
      ],
    );
    assert.equal(p.drives[0].partitions[0].sizeBytes, 512 * MiB);
  });
  it('gives xfs at least the 300 MB mkfs.xfs needs', () => {
    const layout = parseStorageLayout(
      JSON.stringify({
        BootDriveLayout: [
          { MountPoint: '/', MinimumBytes: GiB },
          { MountPoint: '/var/log', FileSystemType: 'xfs', MinimumFreeBytes: 16 * MiB },
        ],
      }),
    );
    const p = planStorage(
      { firmware: 'bios', drives: [drive('sda', 8 * GiB)], layout, usage: new Map() },
      () => '00000000-0000-4000-8000-000000000000',
    );
    assert.ok(p.fileSystems.find((f) => f.mountPoint === '/var/log')!.sizeBytes >= 300e6);
  });
  it('names LUKS mappings after their mount points', () => {
    assert.equal(mapperName('/var/log'), 'luks-var-log');
    assert.equal(mapperName('/data/0'), 'luks-data-0');
  });
});

describe('boot loader', () => {
  it('boots the newest kernel of the image with its initrd', () => {
    assert.deepEqual(findBootInfo(image), {
      kernel: '/boot/vmlinuz-6.1.0-10-amd64',
      initrd: '/boot/initrd.img-6.1.0-10-amd64',
      version: '6.1.0-10-amd64',
    });
    assert.equal(grubInstallOf(image, 'bios'), '/usr/sbin/grub-install');
    assert.equal(grubInstallOf(image, 'uefi'), undefined, 'no x86_64-efi platform files');
    assert.equal(
      findBootInfo({ ...image, entries: image.entries.filter((e) => !e.path.startsWith('boot/')) }),
      undefined,
    );
  });
  it('writes grub.cfg that finds /boot by UUID', () => {
    const boot = findBootInfo(image)!;
    golden(
      'grub.cfg',
      renderGrubConfig({
        boot,
        bootFsUuid: 'B00T',
        separateBoot: false,
        rootUuid: 'R00T',
        kernelOptions: 'ro console=tty0',
      }),
    );
    assert.match(
      renderGrubConfig({ boot, bootFsUuid: 'B', separateBoot: true, rootUuid: 'R', kernelOptions: 'ro' }),
      /linux \/vmlinuz-6\.1\.0-10-amd64 root=UUID=R ro\n\tinitrd \/initrd\.img/,
    );
  });
});

describe('drives', () => {
  it('finds whole, fixed, readable disks in bus order and says why others were skipped', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-drives-'));
    try {
      const sys = path.join(root, 'sys');
      const dev = path.join(root, 'dev');
      fs.mkdirSync(dev);
      fs.mkdirSync(path.join(sys, 'class', 'block'), { recursive: true });
      const add = (name: string, bus: string, attrs: Record<string, string>, device = true) => {
        const rel = `devices/${bus}/block/${name}`;
        fs.mkdirSync(path.join(sys, rel, 'queue'), { recursive: true });
        if (device) fs.mkdirSync(path.join(sys, rel, 'device'));
        for (const [k, v] of Object.entries({ removable: '0', size: '2048', ...attrs }))
          fs.writeFileSync(path.join(sys, rel, k), `${v}\n`);
        fs.symlinkSync(`../../${rel}`, path.join(sys, 'class', 'block', name));
        fs.writeFileSync(path.join(dev, name), Buffer.alloc(4096));
      };
      add('sdb', 'pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0', {});
      add('nvme0n1', 'pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0', { 'queue/rotational': '0' });
      add('sr0', 'pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0', { removable: '1' });
      add('loop0', 'virtual', {}, false);
      add('sdc', 'pci0000:00/0000:00:1f.2/ata4/host3/target3:0:0/3:0:0:0', { size: '0' });
      const { drives, skipped } = listDrives({ sysfs: sys, dev });
      assert.deepEqual(
        drives.map((d) => d.name),
        ['nvme0n1', 'sdb'],
      );
      assert.equal(drives[0].sizeBytes, 2048 * 512);
      assert.deepEqual(
        skipped.map((s) => s.split(':')[0]),
        ['sdc', 'sr0'],
      );
      assert.deepEqual(
        selectDrives(drives, '# data first\n/dev/sdb\n\nnvme0n1\n', 'sel').map((d) => d.name),
        ['sdb', 'nvme0n1'],
      );
      assert.throws(() => selectDrives(drives, '\n', 'sel'), /chose no drive/);
      assert.throws(
        () => selectDrives(drives, 'sdz', 'sel'),
        /'sdz', which is not a usable drive \(usable: nvme0n1, sdb\)/,
      );
      assert.throws(() => selectDrives(drives, 'sdb\nsdb', 'sel'), /twice/);
    } finally {
      fs.rmSync(root, { recursive: true });
    }
  });
});
