// The whole storage plan of an install: which drives are wiped, their partitions, and every file
// system with its identity (UUIDs are chosen here, so --dry-run can show the fstab that will be
// written), encryption and mount. A pure function of facts; storage/apply.ts carries it out.
import { normalizeLayout, type PlannedFileSystem, type StorageLayout } from './layout.ts';
import { partitionDevice, planBootDrive, type DrivePlan, type PlannedPartition, GPT_TYPES } from './partitions.ts';
import type { Drive } from './drives.ts';
import { DriveTooSmallError } from './partitions.ts';
import { MiB } from './layout.ts';

export interface FileSystemPlan {
  mountPoint: string;
  type: 'ext4' | 'xfs' | 'vfat';
  label: string;
  uuid: string;
  /** Partition device holding it. */
  partition: string;
  drive: string;
  luks?: { uuid: string; name: string; device: string };
  /** What mkfs runs on: the mapper device when encrypted. */
  device: string;
  /** /data/N file systems are made but not mounted while installing. */
  mountWhileInstalling: boolean;
  bytesPerInode?: number;
  sizeBytes: number;
  contentBytes: number;
}

export interface StoragePlan {
  firmware: 'uefi' | 'bios';
  drives: DrivePlan[];
  fileSystems: FileSystemPlan[];
  encrypt: boolean;
  /** File systems mounted under the new root while installing, shallowest first. */
  mounts: FileSystemPlan[];
}

export interface StorageFacts {
  firmware: 'uefi' | 'bios';
  /** Selected drives; the first is the boot drive. */
  drives: Drive[];
  layout: StorageLayout;
  /** Image bytes per mount point (storage/partitions.ts usageByMountPoint). */
  usage: Map<string, number>;
  /** Where the mapper devices appear (normally /dev/mapper). */
  mapperDir?: string;
}

/** ext4 and xfs take any UUID; vfat a 32-bit serial, written XXXX-XXXX. */
function vfatSerial(uuid: string): string {
  const hex = uuid.replace(/-/g, '').slice(-8).toUpperCase();
  return `${hex.slice(0, 4)}-${hex.slice(4)}`;
}

/** A name for the LUKS mapping and crypttab: the mount point as a word, e.g. var-log, data-0. */
export function mapperName(mountPoint: string): string {
  return `luks-${mountPoint.replace(/^\/+|\/+$/g, '').replace(/[^A-Za-z0-9_.]+/g, '-') || 'root'}`;
}

export function planStorage(facts: StorageFacts, newUuid: () => string): StoragePlan {
  const [boot, ...data] = facts.drives;
  if (!boot) throw new DriveTooSmallError('no drive to install on');
  const mapperDir = facts.mapperDir ?? '/dev/mapper';
  const bootFileSystems = normalizeLayout(facts.layout, facts.firmware);
  const drives: DrivePlan[] = [planBootDrive(boot.path, boot.sizeBytes, facts.firmware, bootFileSystems, facts.usage)];
  const basename = facts.layout.ExtraMountPointsBasename.replace(/\/?$/, '/');
  for (const [i, d] of data.entries()) drives.push(planDataDrive(d, `${basename}${i + 1}`, facts.layout.Encrypt));

  const fileSystems: FileSystemPlan[] = [];
  for (const drive of drives) {
    for (const p of drive.partitions) {
      if (p.fs) fileSystems.push(fileSystemPlan(drive.device, p, p.fs, newUuid, mapperDir));
    }
  }
  // The rest-of-drive file systems (/data/N) are made while the image installs, not mounted.
  const rest = new Set(drives.flatMap((d) => d.partitions.filter((p) => p.fs?.rest).map((p) => p.fs!.mountPoint)));
  for (const f of fileSystems) f.mountWhileInstalling = !rest.has(f.mountPoint);
  const mounts = fileSystems
    .filter((f) => f.mountWhileInstalling)
    .sort((a, b) => depth(a.mountPoint) - depth(b.mountPoint));
  return { firmware: facts.firmware, drives, fileSystems, encrypt: fileSystems.some((f) => f.luks), mounts };
}

function depth(mountPoint: string): number {
  return mountPoint === '/' ? 0 : mountPoint.split('/').length;
}

function fileSystemPlan(
  drive: string,
  p: PlannedPartition,
  fs: PlannedFileSystem,
  newUuid: () => string,
  mapperDir: string,
): FileSystemPlan {
  const partition = partitionDevice(drive, p.number);
  const id = newUuid();
  const luks = fs.encrypt ? { uuid: newUuid(), name: mapperName(fs.mountPoint), device: '' } : undefined;
  if (luks) luks.device = `${mapperDir}/${luks.name}`;
  return {
    mountPoint: fs.mountPoint,
    type: fs.type,
    label: fs.label,
    uuid: fs.type === 'vfat' ? vfatSerial(id) : id,
    partition,
    drive,
    ...(luks ? { luks } : {}),
    device: luks?.device ?? partition,
    mountWhileInstalling: true,
    ...(fs.bytesPerInode ? { bytesPerInode: fs.bytesPerInode } : {}),
    sizeBytes: p.sizeBytes,
    contentBytes: p.contentBytes,
  };
}

/** A further drive: one GPT partition holding /data/N (GPT so other tools see it is in use). */
function planDataDrive(d: Drive, mountPoint: string, encrypt: boolean): DrivePlan {
  const end = Math.floor((d.sizeBytes - MiB) / MiB) * MiB;
  if (end - MiB < 64 * MiB)
    throw new DriveTooSmallError(
      `drive ${d.path} (${d.sizeBytes} bytes) is too small for ${mountPoint}: deselect it with a -driveSelector`,
    );
  const fs: PlannedFileSystem = {
    mountPoint,
    type: 'ext4',
    label: mountPoint,
    minimumBytes: 0,
    minimumFreeBytes: 0,
    rest: true,
    encrypt,
    bytesPerInode: 1024 * 1024,
  };
  return {
    device: d.path,
    sizeBytes: d.sizeBytes,
    partitions: [
      {
        number: 1,
        name: mountPoint.replace(/^\//, '').replace(/\//g, '-'),
        type: GPT_TYPES.linux,
        startBytes: MiB,
        sizeBytes: end - MiB,
        fs,
        contentBytes: 0,
      },
    ],
  };
}
