// Golden cases for storage planning: layout validation and normalisation, per-mount-point sizing
// from the image, GPT plans for BIOS and UEFI, the sfdisk script, fstab and crypttab.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MANIFEST_FORMAT, type Entry, type Manifest } from '../image/model/manifest.ts';
import { renderCrypttab, renderFstab } from './fstab.ts';
import { MiB, normalizeLayout, parseStorageLayout } from './layout.ts';
import { GPT_TYPES, partitionDevice, planBootDrive, sfdiskScript, usageByMountPoint } from './partitions.ts';

const GiB = 1024 * MiB;
// Dominator's default storage-layout.json.
const SEED_LAYOUT = fs.readFileSync(path.join(import.meta.dirname, 'testdata', 'seed-storage-layout.json'), 'utf8');
const meta = { mode: 0o755, uid: 0, gid: 0, mtime: '0.000000000' };
const digest = `sha256:${'a'.repeat(64)}`;
/** An image with 1 GiB under /usr, 100 MiB under /var/log, a directory and a symlink. */
const image: Manifest = {
  format: MANIFEST_FORMAT,
  entries: [
    { path: '.', type: 'dir', ...meta },
    { path: 'usr', type: 'dir', ...meta },
    { path: 'usr/big', type: 'file', ...meta, size: GiB, digest },
    { path: 'usr/one', type: 'file', ...meta, size: 1, digest },
    { path: 'usr/link', type: 'symlink', ...meta, target: 'big' },
    { path: 'var', type: 'dir', ...meta },
    { path: 'var/log', type: 'dir', ...meta },
    { path: 'var/log/old', type: 'file', ...meta, size: 100 * MiB, digest },
  ] as Entry[],
};

describe('storage layout', () => {
  it("normalises Dominator's default for BIOS: labels, encryption, the implied /data/0", () => {
    const fsList = normalizeLayout(parseStorageLayout(SEED_LAYOUT), 'bios');
    assert.deepEqual(
      fsList.map((f) => `${f.mountPoint} ${f.type} ${f.label} enc=${f.encrypt} rest=${f.rest}`),
      [
        '/ ext4 rootfs enc=false rest=false',
        '/home ext4 /home enc=true rest=false',
        '/var/log ext4 /var/log enc=true rest=false',
        '/data/0 ext4 /data/0 enc=true rest=true',
      ],
    );
  });

  it('puts an ESP first on UEFI, and lets a /boot of the layout become it', () => {
    assert.equal(normalizeLayout(parseStorageLayout(SEED_LAYOUT), 'uefi')[0].mountPoint, '/boot/efi');
    const withBoot = JSON.parse(SEED_LAYOUT);
    withBoot.BootDriveLayout.push({ MountPoint: '/boot', MinimumFreeBytes: 512 * MiB });
    withBoot.BootDriveLayout.push({ MountPoint: '/data/0' });
    const fsList = normalizeLayout(parseStorageLayout(JSON.stringify(withBoot)), 'uefi');
    assert.deepEqual(
      fsList.map((f) => `${f.mountPoint} ${f.type}`),
      ['/boot vfat', '/ ext4', '/home ext4', '/var/log ext4', '/data/0 ext4'],
    );
    assert.equal(fsList.filter((f) => f.mountPoint === '/boot').length, 1, 'no second, ext4 /boot');
  });

  const refused: [string, object, RegExp][] = [
    [
      'a layout without /',
      { BootDriveLayout: [{ MountPoint: '/home', MinimumBytes: GiB }] },
      /has no root file system: add \{"MountPoint": "\/"\}/,
    ],
    [
      'a size-less partition before the last',
      { BootDriveLayout: [{ MountPoint: '/' }, { MountPoint: '/home', MinimumBytes: GiB }] },
      /BootDriveLayout\.0 \(\/\) has no size/,
    ],
    [
      'a mount point twice',
      {
        BootDriveLayout: [
          { MountPoint: '/', MinimumBytes: GiB },
          { MountPoint: '//', MinimumBytes: GiB },
        ],
      },
      /appears twice/,
    ],
    [
      'a relative mount point',
      { BootDriveLayout: [{ MountPoint: 'home', MinimumBytes: GiB }] },
      /BootDriveLayout\.0\.MountPoint' is invalid: expected an absolute path/,
    ],
    [
      'an unknown file system',
      { BootDriveLayout: [{ MountPoint: '/', FileSystemType: 'zfs', MinimumBytes: GiB }] },
      /FileSystemType' is invalid/,
    ],
    [
      'a label too long for ext4',
      {
        BootDriveLayout: [
          { MountPoint: '/srv/very/long/path', MinimumBytes: GiB },
          { MountPoint: '/', MinimumBytes: GiB },
        ],
      },
      /label '\/srv\/very\/long\/path' of \/srv\/very\/long\/path is longer than ext4 allows \(16 bytes\)/,
    ],
    [
      'a sized last partition after /data/0 was declared',
      {
        BootDriveLayout: [
          { MountPoint: '/', MinimumBytes: GiB },
          { MountPoint: '/data/0' },
          { MountPoint: '/x', MinimumBytes: GiB },
        ],
      },
      /BootDriveLayout\.1 \(\/data\/0\) takes the rest of the drive, so it must be the last partition/,
    ],
  ];
  for (const [what, layout, message] of refused) {
    it(`refuses ${what}, naming the field and the fix`, () => {
      assert.throws(() => normalizeLayout(parseStorageLayout(JSON.stringify(layout)), 'bios'), message);
    });
  }
  it('refuses a file that is not JSON', () =>
    assert.throws(() => parseStorageLayout('{'), /storage-layout\.json is not valid JSON/));
});

describe('sizing and partitioning', () => {
  const fsList = normalizeLayout(parseStorageLayout(SEED_LAYOUT), 'bios');
  const usage = usageByMountPoint(
    image,
    fsList.map((f) => f.mountPoint),
  );

  it('counts each entry towards the deepest mount point holding it', () => {
    assert.equal(usage.get('/'), 3 * 4096 + GiB + 4096 + 64); // ., usr and var; big and one; the link
    assert.equal(usage.get('/var/log'), 4096 + 100 * MiB); // the mount point's own directory, and old
    assert.equal(usage.get('/home'), 0);
  });

  it('plans GPT for BIOS: a BIOS boot partition, then sizes from content + free + overhead', () => {
    const plan = planBootDrive('/dev/sda', 20 * GiB, 'bios', fsList, usage);
    assert.deepEqual(
      plan.partitions.map(
        (p) =>
          `${p.number} ${p.name} ${p.startBytes / MiB}+${p.sizeBytes / MiB} ${p.type === GPT_TYPES.biosBoot ? 'bios' : 'linux'}`,
      ),
      [
        '1 bios-boot 1+1 bios',
        '2 rootfs 2+3290 linux',
        '3 home 3292+1140 linux',
        '4 var-log 4432+707 linux',
        '5 data-0 5139+15340 linux',
      ],
    );
    assert.equal(
      sfdiskScript(plan).split('\n')[4],
      `/dev/sda1 : start=2048, size=2048, type=${GPT_TYPES.biosBoot}, name="bios-boot"`,
    );
  });

  it('plans an ESP first on UEFI', () => {
    const uefi = normalizeLayout(parseStorageLayout(SEED_LAYOUT), 'uefi');
    const plan = planBootDrive(
      '/dev/nvme0n1',
      20 * GiB,
      'uefi',
      uefi,
      usageByMountPoint(
        image,
        uefi.map((f) => f.mountPoint),
      ),
    );
    assert.equal(plan.partitions[0].type, GPT_TYPES.esp);
    assert.equal(plan.partitions[0].sizeBytes, 256 * MiB);
    assert.match(sfdiskScript(plan), /^\/dev\/nvme0n1p1 : start=2048, size=524288, type=C12A7328/m);
  });

  it('refuses a drive too small before anything is touched, saying what needs the space', () => {
    assert.throws(
      () => planBootDrive('/dev/sda', 4 * GiB, 'bios', fsList, usage),
      /drive \/dev\/sda \(4\.00 GiB\) is too small for this image and layout, which need at least .* GiB: \/ 3290 MiB \(1025 MiB of image \+ 2048 MiB free\)/,
    );
  });

  it('names partitions of NVMe and SATA disks', () => {
    assert.equal(partitionDevice('/dev/sda', 2), '/dev/sda2');
    assert.equal(partitionDevice('/dev/nvme0n1', 2), '/dev/nvme0n1p2');
    assert.equal(partitionDevice('/dev/mmcblk0', 1), '/dev/mmcblk0p1');
  });
});

describe('fstab and crypttab', () => {
  it('name file systems by UUID, root first, encrypted ones through crypttab', () => {
    const made = [
      {
        mountPoint: '/home',
        type: 'ext4' as const,
        uuid: '2222',
        luks: { uuid: 'aaaa', name: 'luks-home' },
        discard: true,
      },
      { mountPoint: '/', type: 'ext4' as const, uuid: '1111', discard: true },
      { mountPoint: '/boot/efi', type: 'vfat' as const, uuid: 'ABCD-1234', discard: false },
    ];
    assert.equal(
      renderFstab(made),
      [
        '# /etc/fstab: written by the Cradle installer',
        'UUID=1111      /         ext4 discard                                     0 1',
        'UUID=2222      /home     ext4 discard,nofail,x-systemd.device-timeout=30s 0 2',
        'UUID=ABCD-1234 /boot/efi vfat umask=0077                                  0 2',
        '',
      ].join('\n'),
    );
    assert.equal(
      renderCrypttab(made),
      '# /etc/crypttab: written by the Cradle installer\nluks-home UUID=aaaa /etc/crypt.key luks,discard\n',
    );
  });
});
