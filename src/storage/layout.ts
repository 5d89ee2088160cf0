// Dominator's storage layout (`storage-layout.json`), validated at the boundary and normalised into
// the list of boot-drive file systems the installer makes. Field names and encodings are
// Dominator's (FileSystemType as text or its number, null as absent), and every field of its
// StorageLayout and Partition is accepted; those the installer does not use are listed in notes
// for its log (storageLayoutNotes). Unlike Dominator's installer, everything it silently accepted
// and later tripped over is refused here with the field named: a size-less partition before the
// last, duplicate or relative mount points, labels longer than the file system allows.
import { z } from 'zod';
import { nullAsAbsent } from '../util/go-json.ts';
import { parseJsonWith } from '../util/parse-json.ts';

export const MiB = 1024 * 1024;
const ESP_MIN_BYTES = 256 * MiB;

/** Dominator's FileSystemType: text, or its number (0 ext4, 1 vfat); xfs is Cradle's own. */
const fileSystemType = z
  .union([z.enum(['ext4', 'xfs', 'vfat']), z.literal(0), z.literal(1)], {
    error: (i) =>
      `${JSON.stringify(i.input)} is not a file-system type: use ext4, vfat or xfs (or Dominator's numbers 0 = ext4, 1 = vfat)`,
  })
  .transform((t) => (t === 0 ? 'ext4' : t === 1 ? 'vfat' : t));

const uint = (max: number) => z.number().int().min(0).max(max);

const partitionFields = {
  BytesPerInode: z.number().int().min(1024).optional(),
  FileSystemLabel: z.string().optional(),
  FileSystemType: fileSystemType.default('ext4'),
  MountPoint: z
    .string()
    .regex(/^\/[A-Za-z0-9._/@+-]*$/, 'expected an absolute path of letters, digits and ._@+- such as /home')
    .refine(
      (p) => !p.split('/').some((c) => c === '.' || c === '..'),
      "expected a plain path: no '.' or '..' components",
    ),
  MinimumBytes: z.number().int().min(0).default(0),
  MinimumFreeBytes: z.number().int().min(0).default(0),
  // Dominator's imagetool reads these three for its raw images; its installer, like Cradle's, does
  // not: accepted so Dominator's files work, and reported as ignored (storageLayoutNotes).
  ReservedBlocksPercentage: uint(65535).optional(),
  RootGroupId: uint(2 ** 32 - 1).optional(),
  RootUserId: uint(2 ** 32 - 1).optional(),
};
const partitionSchema = z.looseObject(nullAsAbsent(partitionFields));

/** Partition fields Dominator defines that the installer does not use. */
const IGNORED_PARTITION_FIELDS = ['ReservedBlocksPercentage', 'RootGroupId', 'RootUserId'];

const layoutFields = {
  BootDriveLayout: z.array(partitionSchema).min(1, 'list at least the root file system, {"MountPoint": "/"}'),
  ExtraMountPointsBasename: z
    .string()
    .regex(/^\/[A-Za-z0-9._/@+-]*[A-Za-z0-9._@+-]\/?$/, 'expected an absolute path below / such as /data/')
    .refine(
      (p) => !p.split('/').some((c) => c === '.' || c === '..'),
      "expected a plain path: no '.' or '..' components",
    )
    .default('/data/'),
  Encrypt: z.boolean().default(false),
  UseKexec: z.boolean().default(false),
};
export const storageLayoutSchema = z.looseObject(nullAsAbsent(layoutFields));

export type StorageLayout = z.infer<typeof storageLayoutSchema>;
type PartitionSpec = z.infer<typeof partitionSchema>;

/** A file system of the boot drive, as planned. */
export interface PlannedFileSystem {
  mountPoint: string;
  type: 'ext4' | 'xfs' | 'vfat';
  label: string;
  minimumBytes: number;
  minimumFreeBytes: number;
  /** Takes the rest of the drive (the last one). */
  rest: boolean;
  encrypt: boolean;
  bytesPerInode?: number;
}

export class LayoutError extends Error {
  override name = 'LayoutError';
}

/**
 * A storage layout read and checked as the installer checks it: the schema, then the rules of the
 * layout as a whole (a root file system, sizes, the last partition), on either firmware. The one
 * check for every place a layout enters Cradle: the installer, `cradle machine add --layout`, the
 * machine database, the boot server's default.
 */
export function parseStorageLayout(text: string, file = 'storage-layout.json'): StorageLayout {
  return checkStorageLayout(
    parseJsonWith(text, storageLayoutSchema, file, (m) => new LayoutError(m)),
    file,
  );
}

/** The layout's whole-layout rules (normalizeLayout's), for BIOS and UEFI machines alike. */
export function checkStorageLayout(layout: StorageLayout, file = 'storage-layout.json'): StorageLayout {
  for (const firmware of ['bios', 'uefi'] as const) normalizeLayout(structuredClone(layout), firmware, file);
  return layout;
}

/**
 * What the installer should log about a parsed layout: Dominator's fields it does not use, and
 * keys that are no field of Dominator's StorageLayout or Partition (kept, as Go ignores them).
 */
export function storageLayoutNotes(layout: StorageLayout, file = 'storage-layout.json'): string[] {
  const notes: string[] = [];
  for (const key of Object.keys(layout))
    if (!(key in layoutFields))
      notes.push(`${file}: field '${key}' is not one of Dominator's (StorageLayout): ignored`);
  layout.BootDriveLayout.forEach((p, i) => {
    for (const key of Object.keys(p)) {
      const at = `${file}: field 'BootDriveLayout.${i}.${key}' (${p.MountPoint})`;
      if (IGNORED_PARTITION_FIELDS.includes(key))
        notes.push(`${at} is for Dominator's imagetool: the installer ignores it, as Dominator's does`);
      else if (!(key in partitionFields)) notes.push(`${at} is not one of Dominator's (Partition): ignored`);
    }
  });
  return notes;
}

/** parseStorageLayout, with the notes the installer logs (storageLayoutNotes). */
export function parseStorageLayoutWithNotes(
  text: string,
  file = 'storage-layout.json',
): { layout: StorageLayout; notes: string[] } {
  const layout = parseStorageLayout(text, file);
  return { layout, notes: storageLayoutNotes(layout, file) };
}

const LABEL_LIMIT = { ext4: 16, xfs: 12, vfat: 11 } as const;

function defaultLabel(mountPoint: string): string {
  if (mountPoint === '/') return 'rootfs';
  if (mountPoint === '/boot') return 'bootfs';
  if (mountPoint === '/boot/efi') return 'EFI';
  return mountPoint;
}

/**
 * The boot drive's file systems in partition order. On UEFI an ESP comes first (at /boot/efi,
 * or taking over a /boot of the layout, which then is vfat); `/` must be present once; the
 * remainder of the drive goes to the last entry, `<ExtraMountPointsBasename>0` unless declared.
 * File systems other than /, /boot and the ESP are encrypted when `Encrypt` is set.
 */
export function normalizeLayout(
  layout: StorageLayout,
  firmware: 'uefi' | 'bios',
  file = 'storage-layout.json',
): PlannedFileSystem[] {
  const specs: PartitionSpec[] = [...layout.BootDriveLayout];
  const bad = (index: number, why: string): never => {
    throw new LayoutError(`${file}: BootDriveLayout.${index} (${specs[index]?.MountPoint}) ${why}`);
  };
  const seen = new Set<string>();
  specs.forEach((p, i) => {
    const mp = p.MountPoint.replace(/\/+$/, '') || '/';
    if (seen.has(mp)) bad(i, 'appears twice: give each mount point once');
    seen.add(mp);
    p.MountPoint = mp;
  });
  if (!seen.has('/'))
    throw new LayoutError(`${file}: BootDriveLayout has no root file system: add {"MountPoint": "/"}`);

  const extraName = `${layout.ExtraMountPointsBasename.replace(/\/?$/, '/')}0`;
  const declaredExtra = specs.findIndex((p) => p.MountPoint === extraName);
  if (declaredExtra >= 0 && declaredExtra !== specs.length - 1)
    bad(declaredExtra, 'takes the rest of the drive, so it must be the last partition');
  specs.forEach((p, i) => {
    const sized = p.MinimumBytes > 0 || p.MinimumFreeBytes > 0;
    const last = i === specs.length - 1;
    if (!sized && !(last && declaredExtra === i))
      bad(
        i,
        'has no size: give MinimumBytes or MinimumFreeBytes (only the last partition takes the rest of the drive)',
      );
    if (declaredExtra >= 0 && last && sized)
      bad(i, `is last after ${extraName} was declared, so it must take the rest of the drive: drop its sizes`);
  });

  const out: PlannedFileSystem[] = [];
  // On UEFI the ESP is /boot when the layout has one, else /boot/efi; a declared /boot/efi is
  // that ESP (its sizes and label kept), never a second file system or an encrypted one.
  const bootSpec = specs.find((p) => p.MountPoint === '/boot') ?? specs.find((p) => p.MountPoint === '/boot/efi');
  if (firmware === 'uefi') {
    const mountPoint = bootSpec?.MountPoint ?? '/boot/efi';
    out.push({
      mountPoint,
      type: 'vfat',
      label: bootSpec?.FileSystemLabel ?? (mountPoint === '/boot' ? 'bootfs' : 'EFI'),
      minimumBytes: Math.max(ESP_MIN_BYTES, bootSpec?.MinimumBytes ?? 0),
      minimumFreeBytes: bootSpec?.MinimumFreeBytes ?? 0,
      rest: false,
      encrypt: false,
    });
  }
  for (const p of specs) {
    if (firmware === 'uefi' && p === bootSpec) continue;
    out.push({
      mountPoint: p.MountPoint,
      type: p.FileSystemType,
      label: p.FileSystemLabel ?? defaultLabel(p.MountPoint),
      minimumBytes: p.MinimumBytes,
      minimumFreeBytes: p.MinimumFreeBytes,
      rest: false,
      encrypt: layout.Encrypt && !['/', '/boot', '/boot/efi'].includes(p.MountPoint),
      ...(p.BytesPerInode ? { bytesPerInode: p.BytesPerInode } : {}),
    });
  }
  if (declaredExtra < 0) {
    out.push({
      mountPoint: extraName,
      type: 'ext4',
      label: extraName,
      minimumBytes: 0,
      minimumFreeBytes: 0,
      rest: true,
      encrypt: layout.Encrypt,
      bytesPerInode: 65536,
    });
  } else out[out.length - 1].rest = true;

  for (const fsys of out) {
    const limit = LABEL_LIMIT[fsys.type];
    if (Buffer.byteLength(fsys.label) > limit) {
      throw new LayoutError(
        `${file}: the label '${fsys.label}' of ${fsys.mountPoint} is longer than ${fsys.type} allows (${limit} bytes): set a shorter FileSystemLabel`,
      );
    }
  }
  return out;
}
