// The dry run says which root the storage programs run from: the tools image when one is named,
// else the image being installed, each program the installer's own where that image lacks it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Digest } from '../image/model/digest.ts';
import { MANIFEST_FORMAT, type Entry, type Manifest } from '../image/model/manifest.ts';
import type { ImageRecord } from '../image/store/store.ts';
import { parseStorageLayout } from '../storage/layout.ts';
import { planStorage } from '../storage/plan.ts';
import { describeTools, type DryRunFacts } from './dry-run.ts';
import type { InstallPlan, ResolvedImage } from './plan-install.ts';

const meta = { uid: 0, gid: 0, mtime: '0.000000000' };
function image(name: string, programs: string[]): ResolvedImage {
  const entries: Entry[] = [
    { type: 'dir', path: '.', mode: 0o755, ...meta },
    { type: 'dir', path: 'usr', mode: 0o755, ...meta },
    { type: 'dir', path: 'usr/sbin', mode: 0o755, ...meta },
    ...programs.map((p): Entry => ({ type: 'file', path: `usr/sbin/${p}`, mode: 0o755, size: 1, ...meta })),
  ];
  const manifest: Manifest = { format: MANIFEST_FORMAT, entries };
  return { record: { name, manifest: 'sha256:0' as Digest } as ImageRecord, manifest };
}

const storage = planStorage(
  {
    firmware: 'bios',
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
      JSON.stringify({ BootDriveLayout: [{ MountPoint: '/', MinimumBytes: 1024 ** 3 }], Encrypt: true }),
    ),
    usage: new Map(),
  },
  () => '6a1c0de0-0000-4000-8000-000000000001',
);
const plan = { storage, grubInstall: '/usr/sbin/grub-install' } as InstallPlan;
const target = image('debian/v1', ['mkfs.ext4', 'cryptsetup', 'grub-install']);
const tools = image('tools/v7', ['sfdisk', 'partx', 'mkfs.ext4']);
const DIRS = ['/usr/sbin'];

describe('dry run: where the storage programs run from', () => {
  it('the tools image, when one is named, with the installer filling in what it lacks', () => {
    const facts: DryRunFacts = { images: { image: target, tools }, plan, useKexec: false };
    assert.deepEqual(describeTools(facts, DIRS), [
      'Programs: partitioning, encryption and file systems run chrooted in the tools image tools/v7, unpacked in memory at --tmp-root:',
      '  from it: sfdisk, partx, mkfs.ext4',
      "  the installer's own (the tools image tools/v7 lacks them): cryptsetup",
      "  the installer's own: blkdiscard, mount; grub-install: the installed system's, chrooted in it",
    ]);
  });
  it('else the image being installed', () => {
    const facts: DryRunFacts = { images: { image: target }, plan, useKexec: true };
    assert.deepEqual(describeTools(facts, DIRS), [
      'Programs: partitioning, encryption and file systems run chrooted in the image debian/v1, unpacked in memory at --tmp-root:',
      '  from it: cryptsetup, mkfs.ext4',
      "  the installer's own (the image debian/v1 lacks them): sfdisk, partx",
      "  the installer's own: blkdiscard, mount, kexec --load; grub-install: the installed system's, chrooted in it",
    ]);
  });
});
