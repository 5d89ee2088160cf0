// The head node's storage layout, planned from the answers and the chosen disks: GPT on every
// disk; on the first, the firmware's partition (a BIOS boot partition, or an ESP on UEFI), then
// the plain partitions (/boot at least: GRUB reads it without LVM), then a physical volume with
// the rest; every other disk one physical volume. One volume group, `cradle`, across them holds
// the other volumes. Kusu's rules are checked here, each with its own message: at least 40 GB
// in all, `/`, `/boot` and `/depot` present, `/boot` not on LVM. A pure function: nothing is
// written before the confirmation.
import { AnswersError, type VolumeAnswer } from './answers.ts';
import { partitionDevice } from '../storage/partitions.ts';
import { formatBytes } from '../util/format.ts';
import { gb } from './disks.ts';
import type { DiskFact } from './facts.ts';

export const MIN_TOTAL_BYTES = 40e9;
export const VOLUME_GROUP = 'cradle';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** GPT's own tables at both ends, and alignment: kept free on every disk. */
const DISK_OVERHEAD = 2 * MiB;
/** LVM metadata and extent rounding, per physical volume. */
const PV_OVERHEAD = 4 * MiB;

/**
 * Cradle's default, after Kusu's (/boot, swap, then root, var, depot and home in one volume
 * group): /depot takes the rest rather than /home, since it holds every kit and node group image.
 */
export const DEFAULT_VOLUMES: VolumeAnswer[] = [
  { mount: '/boot', size: 1 * GiB, fs: 'ext4', lvm: false },
  { mount: 'swap', size: 2 * GiB, fs: 'swap' },
  { mount: '/', size: 16 * GiB, fs: 'ext4' },
  { mount: '/var', size: 4 * GiB, fs: 'ext4' },
  { mount: '/home', size: 4 * GiB, fs: 'ext4' },
  { mount: '/depot', size: 'rest', fs: 'ext4' },
];

export type Size = number | 'rest';

export interface PlannedPartition {
  disk: string;
  /** The device node, e.g. /dev/sda2 or /dev/nvme0n1p2. */
  device: string;
  number: number;
  role: 'bios-boot' | 'esp' | 'plain' | 'pv';
  size: Size;
  fs?: 'ext4' | 'xfs' | 'swap' | 'vfat';
  mount?: string;
}

export interface PlannedVolume {
  /** The logical volume's name: root for /, the mount point's words otherwise (var_log). */
  name: string;
  mount: string;
  fs: 'ext4' | 'xfs' | 'swap';
  size: Size;
}

export interface HeadLayout {
  firmware: 'uefi' | 'bios';
  disks: DiskFact[];
  totalBytes: number;
  partitions: PlannedPartition[];
  volumeGroup: { name: string; physicalVolumes: string[]; bytes: number };
  volumes: PlannedVolume[];
}

/** A file system's label: what fstab finds it by (ext4 takes at most 16 characters). */
export const fsLabel = (mount: string) => (mount === '/' ? 'root' : mount.slice(1).replace(/\//g, '-')).slice(0, 16);

export function volumeName(mount: string): string {
  return mount === '/' ? 'root' : mount === 'swap' ? 'swap' : mount.slice(1).replace(/[/.-]/g, '_');
}

const fsOf = (v: VolumeAnswer) => v.fs ?? (v.mount === 'swap' ? 'swap' : 'ext4');
// Volumes in binary units (as they are sized), disks in decimal ones (as they are sold).
const show = (s: Size) => (s === 'rest' ? 'the rest' : formatBytes(s));

/** Kusu's rules and Cradle's own, as messages; empty when the layout is sound. */
export function layoutProblems(volumes: VolumeAnswer[], disks: DiskFact[]): string[] {
  const problems: string[] = [];
  const total = disks.reduce((n, d) => n + d.sizeBytes, 0);
  if (total < MIN_TOTAL_BYTES)
    problems.push(
      `the disks chosen (${disks.map((d) => `${d.name} ${gb(d.sizeBytes)}`).join(', ') || 'none'}) hold ${gb(total)}: a head node needs at least ${gb(MIN_TOTAL_BYTES)} in all, ${gb(MIN_TOTAL_BYTES - total)} more; choose more or larger disks ('disks.match', 'disks.pick')`,
    );
  const mounts = volumes.map((v) => v.mount);
  for (const [mount, why] of [
    ['/', 'the root file system'],
    ['/boot', 'the kernels GRUB loads'],
    ['/depot', 'the kits and the images of every node group'],
  ])
    if (!mounts.includes(mount))
      problems.push(`the layout has no ${mount} (${why}): add a volume with 'mount: ${mount}'`);
  for (const m of new Set(mounts.filter((m, i) => mounts.indexOf(m) !== i)))
    problems.push(`the layout has ${m} twice: give each mount point one volume`);
  const boot = volumes.find((v) => v.mount === '/boot');
  if (boot && boot.lvm !== false)
    problems.push("/boot is on LVM, where GRUB does not look for it: write 'lvm: false' for /boot");
  for (const v of volumes) {
    if ((v.mount === 'swap') !== (fsOf(v) === 'swap'))
      problems.push(`${v.mount}: swap is 'mount: swap' with 'fs: swap', and only that`);
  }
  const plain = volumes.filter((v) => v.lvm === false);
  const lvm = volumes.filter((v) => v.lvm !== false);
  if (plain.filter((v) => v.size === 'rest').length)
    problems.push(
      `${plain.find((v) => v.size === 'rest')?.mount} takes 'the rest' outside LVM: only a volume in LVM can (the partitions leave the rest to the volume group)`,
    );
  if (lvm.filter((v) => v.size === 'rest').length > 1)
    problems.push(
      `${lvm
        .filter((v) => v.size === 'rest')
        .map((v) => v.mount)
        .join(' and ')} both take 'the rest': give all but one a size`,
    );
  return problems;
}

/** Plans the partitions, the volume group and its volumes; throws with every problem found. */
export function planHeadLayout(
  answer: VolumeAnswer[] | 'default',
  disks: DiskFact[],
  firmware: 'uefi' | 'bios',
): HeadLayout {
  const volumes = answer === 'default' ? DEFAULT_VOLUMES : answer;
  const problems = layoutProblems(volumes, disks);
  if (problems.length) throw new AnswersError(`the disk layout:\n  ${problems.join('\n  ')}`);
  const [first, ...others] = disks;
  const partitions: PlannedPartition[] = [];
  const add = (disk: DiskFact, p: Omit<PlannedPartition, 'disk' | 'device' | 'number'>) => {
    const number = partitions.filter((x) => x.disk === disk.path).length + 1;
    partitions.push({ disk: disk.path, device: partitionDevice(disk.path, number), number, ...p });
  };
  add(
    first,
    firmware === 'uefi'
      ? { role: 'esp', size: 512 * MiB, fs: 'vfat', mount: '/boot/efi' }
      : { role: 'bios-boot', size: MiB },
  );
  for (const v of volumes.filter((x) => x.lvm === false))
    add(first, { role: 'plain', size: v.size, fs: fsOf(v), mount: v.mount });
  const fixedOnFirst = partitions.reduce((n, p) => n + (p.size === 'rest' ? 0 : p.size), 0);
  add(first, { role: 'pv', size: 'rest' });
  for (const d of others) add(d, { role: 'pv', size: 'rest' });
  const pvBytes =
    first.sizeBytes -
    DISK_OVERHEAD -
    fixedOnFirst -
    PV_OVERHEAD +
    others.reduce((n, d) => n + d.sizeBytes - DISK_OVERHEAD - PV_OVERHEAD, 0);
  const lvm = volumes.filter((v) => v.lvm !== false);
  const wanted = lvm.reduce((n, v) => n + (v.size === 'rest' ? 0 : v.size), 0);
  if (wanted > pvBytes || (wanted === pvBytes && lvm.some((v) => v.size === 'rest')))
    throw new AnswersError(
      `the disk layout: the volumes in LVM want ${gb(wanted)}${lvm.some((v) => v.size === 'rest') ? ' and some room for the rest' : ''}, the volume group has ${gb(pvBytes)}: make them smaller or choose more disks`,
    );
  return {
    firmware,
    disks,
    totalBytes: disks.reduce((n, d) => n + d.sizeBytes, 0),
    partitions,
    volumeGroup: {
      name: VOLUME_GROUP,
      physicalVolumes: partitions.filter((p) => p.role === 'pv').map((p) => p.device),
      bytes: pvBytes,
    },
    volumes: lvm.map((v) => ({ name: volumeName(v.mount), mount: v.mount, fs: fsOf(v), size: v.size })),
  };
}

/** The layout as the confirmation and `--dry-run` show it. */
export function describeLayout(l: HeadLayout): string[] {
  const lines: string[] = [];
  for (const d of l.disks) {
    lines.push(`${d.path}: GPT`);
    for (const p of l.partitions.filter((x) => x.disk === d.path))
      lines.push(
        `  ${p.device}  ${show(p.size).padStart(9)}  ${p.role === 'pv' ? `LVM physical volume of ${l.volumeGroup.name}` : p.role === 'bios-boot' ? 'BIOS boot (GRUB)' : `${p.fs} ${p.mount}`}`,
      );
  }
  lines.push(
    `volume group ${l.volumeGroup.name} (${formatBytes(l.volumeGroup.bytes)} across ${l.volumeGroup.physicalVolumes.join(', ')}):`,
  );
  for (const v of l.volumes)
    lines.push(
      `  ${v.name.padEnd(8)} ${show(v.size).padStart(9)}  ${v.fs} ${v.mount === 'swap' ? '' : v.mount}`.trimEnd(),
    );
  return lines;
}
