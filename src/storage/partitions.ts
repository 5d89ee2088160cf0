// The boot drive's partition plan, from the normalised layout, the image's real usage and the
// drive's size: a pure function, shown by `--dry-run` and applied later through sfdisk. GPT on both
// firmware kinds (a BIOS boot partition for GRUB on BIOS, an ESP on UEFI), so drives over 2 TiB
// work everywhere. Every file system is sized from what the image puts in it, not only the root
// (Dominator's installer let /var/log or /boot content overflow).
import type { Manifest } from '../image/model/manifest.ts';
import { MiB, type PlannedFileSystem } from './layout.ts';

export const GPT_TYPES = {
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  lvm: 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
} as const;

const BLOCK = 4096;
/** Space the rest-of-drive partition must at least get, or the drive is too small. */
const MIN_REST_BYTES = 256 * MiB;

/**
 * Bytes the image takes in each file system: every entry counts towards the deepest mount point
 * holding it. Directories take a block, files their size rounded up to blocks, symlinks 64 bytes
 * (a conservative figure), hard links and special files nothing.
 */
export function usageByMountPoint(manifest: Manifest, mountPoints: string[]): Map<string, number> {
  const usage = new Map(mountPoints.map((m) => [m, 0]));
  const deepestFirst = [...mountPoints].sort((a, b) => b.length - a.length);
  const owner = (path: string) => {
    const abs = path === '.' ? '/' : `/${path}`;
    return deepestFirst.find((m) => m === '/' || abs === m || abs.startsWith(`${m}/`)) ?? '/';
  };
  for (const e of manifest.entries) {
    let bytes = 0;
    if (e.type === 'dir') bytes = BLOCK;
    else if (e.type === 'file') bytes = Math.ceil(e.size / BLOCK) * BLOCK;
    else if (e.type === 'symlink') bytes = 64;
    if (bytes) {
      const m = owner(e.path);
      usage.set(m, (usage.get(m) ?? 0) + bytes);
    }
  }
  return usage;
}

/** The smallest file system mkfs makes: mkfs.xfs (xfsprogs 5.19 and later) refuses under 300 MB. */
const MIN_FS_BYTES = { ext4: 0, vfat: 0, xfs: 300 * 1000 * 1000 } as const;

/** File-system overhead on top of content: journal and metadata, generously. */
function overhead(type: PlannedFileSystem['type'], bytes: number): number {
  return type === 'vfat' ? MiB : Math.ceil(bytes * 0.05) + 64 * MiB;
}

export function roundUpMiB(bytes: number): number {
  return Math.ceil(bytes / MiB) * MiB;
}

export interface PlannedPartition {
  number: number;
  name: string;
  type: string;
  startBytes: number;
  sizeBytes: number;
  /** The file system it holds; none for the BIOS boot partition. */
  fs?: PlannedFileSystem;
  /** Bytes of the image that go into it. */
  contentBytes: number;
}

export interface DrivePlan {
  device: string;
  sizeBytes: number;
  partitions: PlannedPartition[];
}

export class DriveTooSmallError extends Error {
  override name = 'DriveTooSmallError';
}

/** Partition `n` of a disk: `/dev/sda` → `/dev/sda2`, `/dev/nvme0n1` → `/dev/nvme0n1p2`. */
export function partitionDevice(disk: string, n: number): string {
  return /\d$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

export function planBootDrive(
  device: string,
  sizeBytes: number,
  firmware: 'uefi' | 'bios',
  fileSystems: PlannedFileSystem[],
  usage: Map<string, number>,
): DrivePlan {
  const partitions: PlannedPartition[] = [];
  let start = MiB; // 1 MiB alignment; GPT's primary header and table fit before it
  const end = Math.floor((sizeBytes - MiB) / MiB) * MiB; // room for the backup GPT at the end
  if (firmware === 'bios') {
    partitions.push({
      number: 1,
      name: 'bios-boot',
      type: GPT_TYPES.biosBoot,
      startBytes: start,
      sizeBytes: MiB,
      contentBytes: 0,
    });
    start += MiB;
  }
  const needs: string[] = [];
  for (const fsys of fileSystems) {
    const content = usage.get(fsys.mountPoint) ?? 0;
    const number = partitions.length + 1;
    const type =
      fsys.mountPoint === '/boot/efi' || (firmware === 'uefi' && fsys.type === 'vfat' && number === 1)
        ? GPT_TYPES.esp
        : GPT_TYPES.linux;
    const name = fsys.label.replace(/^\//, '').replace(/\//g, '-') || 'root';
    if (fsys.rest) {
      partitions.push({
        number,
        name,
        type,
        startBytes: start,
        sizeBytes: end - start,
        fs: fsys,
        contentBytes: content,
      });
      needs.push(`${fsys.mountPoint} the rest (at least ${MIN_REST_BYTES / MiB} MiB)`);
      if (end - start < Math.max(MIN_REST_BYTES, content + overhead(fsys.type, content)))
        throw tooSmall(device, sizeBytes, start + MIN_REST_BYTES + MiB, needs);
      continue;
    }
    const wanted = content + fsys.minimumFreeBytes;
    const size = roundUpMiB(Math.max(fsys.minimumBytes, wanted + overhead(fsys.type, wanted), MIN_FS_BYTES[fsys.type]));
    needs.push(
      `${fsys.mountPoint} ${size / MiB} MiB (${Math.ceil(content / MiB)} MiB of image + ${Math.ceil(fsys.minimumFreeBytes / MiB)} MiB free)`,
    );
    partitions.push({ number, name, type, startBytes: start, sizeBytes: size, fs: fsys, contentBytes: content });
    start += size;
    if (start > end) throw tooSmall(device, sizeBytes, start + MiB, needs);
  }
  return { device, sizeBytes, partitions };
}

function tooSmall(device: string, have: number, need: number, needs: string[]): DriveTooSmallError {
  const gib = (b: number) => (b / 1024 ** 3).toFixed(2);
  return new DriveTooSmallError(
    `drive ${device} (${gib(have)} GiB) is too small for this image and layout, which need at least ${gib(need)} GiB: ${needs.join(', ')}; choose a larger drive or lower the layout's sizes`,
  );
}

/** The plan as an sfdisk script (sizes in 512-byte sectors). */
export function sfdiskScript(plan: DrivePlan): string {
  const lines = ['label: gpt', `device: ${plan.device}`, 'unit: sectors', ''];
  for (const p of plan.partitions) {
    lines.push(
      `${partitionDevice(plan.device, p.number)} : start=${p.startBytes / 512}, size=${p.sizeBytes / 512}, type=${p.type}, name="${p.name}"`,
    );
  }
  return `${lines.join('\n')}\n`;
}
