// What a drive holds now, read without changing anything and without partition device nodes (the
// lab host's kernel parses no partition tables): the table through `sfdisk --json`, each file
// system through `blkid --probe --offset`. Shown by --dry-run before a drive is wiped, and used to
// find the old OS whose files seed the object cache.
import type { Executor } from '../system/executor.ts';
import { CommandError } from '../system/run.ts';

export interface ExistingFileSystem {
  type: string;
  label?: string;
  uuid?: string;
}

export interface ExistingPartition {
  number: number;
  startBytes: number;
  sizeBytes: number;
  name?: string;
  fs?: ExistingFileSystem;
}

export interface DriveContents {
  table?: 'gpt' | 'dos';
  partitions: ExistingPartition[];
  /** A file system on the whole drive (no partition table). */
  wholeDiskFs?: ExistingFileSystem;
}

async function probe(exec: Executor, device: string, offset?: number): Promise<ExistingFileSystem | undefined> {
  try {
    const args = [
      '--probe',
      '--output',
      'export',
      ...(offset !== undefined ? ['--offset', String(offset)] : []),
      device,
    ];
    const { stdout } = await exec.read('blkid', args);
    const tags = new Map(
      stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
    );
    const type = tags.get('TYPE');
    if (!type) return undefined;
    return {
      type,
      ...(tags.get('LABEL') ? { label: tags.get('LABEL') } : {}),
      ...(tags.get('UUID') ? { uuid: tags.get('UUID') } : {}),
    };
  } catch (err) {
    if (err instanceof CommandError && err.exitCode === 2) return undefined; // blkid: nothing found
    throw err;
  }
}

export async function readDriveContents(exec: Executor, device: string): Promise<DriveContents> {
  let table:
    | {
        label?: string;
        sectorsize?: number;
        partitions?: { node: string; start: number; size: number; name?: string }[];
      }
    | undefined;
  try {
    table = JSON.parse((await exec.read('sfdisk', ['--json', device])).stdout).partitiontable;
  } catch (err) {
    if (!(err instanceof CommandError)) throw err; // no partition table: sfdisk exits 1
  }
  if (!table) {
    const fs = await probe(exec, device);
    return { partitions: [], ...(fs ? { wholeDiskFs: fs } : {}) };
  }
  const sector = table.sectorsize ?? 512;
  const partitions: ExistingPartition[] = [];
  for (const p of table.partitions ?? []) {
    const startBytes = p.start * sector;
    const fs = await probe(exec, device, startBytes);
    partitions.push({
      number: Number(/(\d+)$/.exec(p.node)?.[1] ?? partitions.length + 1),
      startBytes,
      sizeBytes: p.size * sector,
      ...(p.name ? { name: p.name } : {}),
      ...(fs ? { fs } : {}),
    });
  }
  return { table: table.label === 'gpt' ? 'gpt' : 'dos', partitions };
}

export function describeContents(c: DriveContents): string {
  const fsText = (fs?: ExistingFileSystem) => (fs ? `${fs.type}${fs.label ? ` '${fs.label}'` : ''}` : 'no file system');
  if (c.wholeDiskFs) return `a whole-disk ${fsText(c.wholeDiskFs)}`;
  if (!c.table) return 'no partition table (blank or unknown)';
  if (!c.partitions.length) return `an empty ${c.table.toUpperCase()} partition table`;
  const gib = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;
  return (
    `${c.table.toUpperCase()}: ` +
    c.partitions.map((p) => `#${p.number} ${gib(p.sizeBytes)} ${fsText(p.fs)}`).join(', ')
  );
}

/**
 * The partition most likely to hold the previous OS's root: labelled `rootfs` (ours and Dominator's),
 * else the largest ext4/xfs. A guess is fine: the cache only uses files whose hash matches.
 */
export function oldRootCandidate(c: DriveContents): ExistingPartition | undefined {
  const linuxFs = c.partitions.filter((p) => p.fs && ['ext4', 'ext3', 'ext2', 'xfs'].includes(p.fs.type));
  return linuxFs.find((p) => p.fs?.label === 'rootfs') ?? linuxFs.sort((a, b) => b.sizeBytes - a.sizeBytes)[0];
}
