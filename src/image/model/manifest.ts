// The image manifest: every inode of a file-system tree with its metadata, and for regular files
// the digest of their content. The manifest's own digest is the image's identity. Format and field
// meanings: docs/image-format.md. A manifest is untrusted input: `parseManifest` validates the
// schema *and* the tree (safe paths, parents before children, hard links to earlier files), so an
// unpacker that follows the entries in order can never write outside its target.
import type { z } from 'zod';
import type { Digest } from './digest.ts';
import { checkedManifest, MANIFEST_FORMAT, MAX_PATH_BYTES } from './manifest-check.ts';
import type { entrySchema } from './manifest-schema.ts';
import type { Timespec } from '../../system/libc.ts';

export { MANIFEST_FORMAT };

const MAX_NAME_BYTES = 255;

export type Entry = z.infer<typeof entrySchema>;
export type FileEntry = Extract<Entry, { type: 'file' }>;
export type DirEntry = Extract<Entry, { type: 'dir' }>;
export type HardlinkEntry = Extract<Entry, { type: 'hardlink' }>;
export type InodeEntry = Exclude<Entry, HardlinkEntry>;
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  entries: Entry[];
}

export class ManifestError extends Error {
  override name = 'ManifestError';
}

/**
 * Parses and fully validates manifest bytes; rejects with ManifestError naming the bad entry. Only
 * a manifest the hand check does not accept loads zod (manifest-schema.ts), for its error.
 */
export async function parseManifest(bytes: Uint8Array, source = 'manifest'): Promise<Manifest> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new ManifestError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  // The hand-written check first (manifest-check.ts); zod for what it leaves, and for the error.
  const checked = checkedManifest(json);
  if (checked) {
    validateTree(checked as Manifest, source);
    return checked as Manifest;
  }
  const { manifestSchema } = await import('./manifest-schema.ts');
  const result = manifestSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.join('.');
    // Name the entry by its path too, when there is one to name.
    const [top, index] = issue.path;
    const entry =
      top === 'entries' && typeof index === 'number'
        ? (json as { entries: { path?: unknown }[] }).entries[index]
        : undefined;
    const which = typeof entry?.path === 'string' ? ` (entry '${entry.path}')` : '';
    throw new ManifestError(
      `${source}: field '${where}'${which} is invalid: ${issue.message}; see docs/image-format.md for the entry fields`,
    );
  }
  const manifest = result.data as Manifest;
  validateTree(manifest, source);
  return manifest;
}

/**
 * Checks the rules that make unpacking safe: the first entry is the root directory ".", every path
 * is relative and normalised (no "", ".", ".." components, no leading or doubled "/"), appears once,
 * and its parent is an earlier *directory* entry, so no later entry can be reached through a
 * symlink; hard links name an earlier regular file; a file has a digest exactly when it has bytes.
 */
export function validateTree(manifest: Manifest, source = 'manifest'): void {
  const kinds = new Map<string, Entry['type']>();
  manifest.entries.forEach((entry, index) => {
    const bad = (why: string, fix: string): never => {
      throw new ManifestError(`${source}: entry ${index} ('${entry.path}') ${why}; ${fix}`);
    };
    if (index === 0) {
      if (entry.path !== '.' || entry.type !== 'dir')
        bad('must be the root directory', "start the entries with {path: '.', type: 'dir'}");
      kinds.set('.', 'dir');
      return;
    }
    const problem = pathProblem(entry.path);
    if (problem) bad(`has an unsafe path: ${problem}`, 'use a relative path without "." or ".." components');
    if (kinds.has(entry.path)) bad('appears twice', 'list each path once');
    const slash = entry.path.lastIndexOf('/');
    const parent = slash < 0 ? '.' : entry.path.slice(0, slash);
    const parentKind = kinds.get(parent);
    if (parentKind === undefined)
      bad(`comes before its parent '${parent}'`, 'list every directory before its contents');
    if (parentKind !== 'dir')
      bad(
        `has a parent '${parent}' that is a ${parentKind}, not a directory`,
        'entries may only live inside directories',
      );
    if (entry.type === 'hardlink') {
      if (kinds.get(entry.target) !== 'file')
        bad(
          `links to '${entry.target}', which is not an earlier regular file`,
          'point hard links at the first path of their inode',
        );
    } else if (entry.type === 'file') {
      if (entry.size > 0 && !entry.digest) bad('has bytes but no digest', 'add the digest of its content');
      if (entry.size === 0 && entry.digest) bad('is empty but has a digest', 'drop the digest of an empty file');
    }
    kinds.set(entry.path, entry.type);
  });
}

/**
 * Why a path is unsafe, or undefined. One pass over its components; UTF-8 lengths are counted only
 * where the string is long enough to exceed a limit (a UTF-16 unit is at most 3 bytes of UTF-8).
 */
export function pathProblem(path: string): string | undefined {
  if (path.startsWith('/')) return 'it is absolute';
  if (path.includes('\0')) return 'it contains a NUL byte';
  if (path.length * 3 > MAX_PATH_BYTES && Buffer.byteLength(path) > MAX_PATH_BYTES)
    return `it is longer than ${MAX_PATH_BYTES} bytes`;
  for (let start = 0; ; ) {
    const slash = path.indexOf('/', start);
    const end = slash < 0 ? path.length : slash;
    const length = end - start;
    if (length === 0) return 'it has an empty component';
    if (length <= 2 && path.charCodeAt(start) === 46 && (length === 1 || path.charCodeAt(start + 1) === 46))
      return `it has a '${path.slice(start, end)}' component`;
    if (length * 3 > MAX_NAME_BYTES && Buffer.byteLength(path.slice(start, end)) > MAX_NAME_BYTES)
      return `a component is longer than ${MAX_NAME_BYTES} bytes`;
    if (slash < 0) return undefined;
    start = slash + 1;
  }
}

/** Serialises a manifest deterministically: the same tree always gives the same bytes and digest. */
export function encodeManifest(manifest: Manifest): Buffer {
  const lines = manifest.entries.map((e) => JSON.stringify(e));
  return Buffer.from(`{"format":${JSON.stringify(manifest.format)},"entries":[\n${lines.join(',\n')}\n]}\n`);
}

export function formatMtime(sec: bigint, nsec: number): string {
  // Negative times keep the sign on the seconds and a positive nanosecond part, like timespec.
  return `${sec}.${String(nsec).padStart(9, '0')}`;
}

/** formatMtime of a nanosecond count such as `fs.BigIntStats.mtimeNs`, flooring like timespec. */
export function formatMtimeNs(ns: bigint): string {
  const NS = 1_000_000_000n;
  const nsec = ((ns % NS) + NS) % NS;
  return formatMtime((ns - nsec) / NS, Number(nsec));
}

export function parseMtime(value: string): Timespec {
  const dot = value.indexOf('.');
  return { sec: BigInt(value.slice(0, dot)), nsec: Number(value.slice(dot + 1)) };
}

export interface ManifestStats {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  /** Sum of regular-file sizes (each inode once): what unpacking writes. */
  bytes: number;
  /** Distinct objects and their total size. */
  objects: number;
  objectBytes: number;
}

export function manifestStats(manifest: Manifest): ManifestStats {
  const stats: ManifestStats = { entries: 0, files: 0, dirs: 0, symlinks: 0, bytes: 0, objects: 0, objectBytes: 0 };
  const seen = new Set<string>();
  for (const e of manifest.entries) {
    stats.entries++;
    if (e.type === 'dir') stats.dirs++;
    else if (e.type === 'symlink') stats.symlinks++;
    else if (e.type === 'file') {
      stats.files++;
      stats.bytes += e.size;
      if (e.digest && !seen.has(e.digest)) {
        seen.add(e.digest);
        stats.objects++;
        stats.objectBytes += e.size;
      }
    }
  }
  return stats;
}

/** The distinct objects a manifest needs, with their sizes. */
export function neededObjects(manifest: Manifest): Map<Digest, number> {
  const needed = new Map<Digest, number>();
  for (const e of manifest.entries) {
    if (e.type === 'file' && e.digest) needed.set(e.digest as Digest, e.size);
  }
  return needed;
}
