// Reads a tar archive (plain, gzip or zstd) into a TreeBuilder, storing file contents as it goes.
// The archive is only ever *read*: owners, modes, device numbers and xattrs come from the headers
// and nothing it says is done to the file system, so any user can add any archive. The same code
// applies OCI / docker layers, where whiteout markers delete what lower layers put in the tree.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { pipeline, type Readable } from 'node:stream';
import { WHOLE_READ_LIMIT, type Ingest } from '../store/ingest.ts';
import { formatMtime } from '../model/manifest.ts';
import type { PackWarnings } from './dir.ts';
import { TarError } from './tar-headers.ts';
import { readTar, readTarSource, type ByteSource, type TarEntry } from './tar-reader.ts';
import { encodeXattrs, type Inode, type Meta, normalizeArchivePath, TreeBuilder } from '../model/tree.ts';

export type Compression = 'gzip' | 'zstd' | 'none';

const READ_AHEAD = 64 * 1024;

export interface LayerOptions {
  /** Interpret OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) instead of adding them as files. */
  whiteouts: boolean;
}

export async function packTarFile(file: string, ingest: Ingest, log: PackWarnings): Promise<TreeBuilder> {
  const tree = new TreeBuilder();
  await inContext(
    `tar archive '${file}'`,
    applyTarEntries(tarEntriesOf(file), tree, ingest, log, { whiteouts: false }),
  );
  return tree;
}

/** Applies a decompressed tar stream to `tree`. */
export async function applyTarLayer(
  source: Readable | AsyncIterable<Uint8Array>,
  tree: TreeBuilder,
  ingest: Ingest,
  log: PackWarnings,
  options: LayerOptions,
): Promise<void> {
  await applyTarEntries(readTar(source), tree, ingest, log, options);
}

/** Detects compression by magic bytes: file names and media types are not trusted. */
export function compressionOf(magic: Buffer, what: string): Compression {
  if (magic[0] === 0x1f && magic[1] === 0x8b) return 'gzip';
  if (magic.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    throw new TarError(
      `${what} is xz-compressed, which is not supported: decompress it (xz -d) or re-compress it with gzip or zstd`,
    );
  }
  if (magic.subarray(0, 3).toString('latin1') === 'BZh') {
    throw new TarError(
      `${what} is bzip2-compressed, which is not supported: decompress it (bunzip2) or re-compress it with gzip or zstd`,
    );
  }
  return 'none';
}

/** Up to `length` bytes of `file` at `position`. */
export function peek(file: string, position: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    return buf.subarray(0, fs.readSync(fd, buf, 0, length, position));
  } finally {
    fs.closeSync(fd);
  }
}

/** A decompressing stream over `file` (or its byte range [start, end)). */
export function openDecompressed(
  file: string,
  compression: Compression,
  range?: { start: number; end: number },
): Readable {
  const raw = fs.createReadStream(file, range ? { start: range.start, end: range.end - 1 } : {});
  if (compression === 'none') return raw;
  const decompressor = compression === 'gzip' ? zlib.createGunzip() : zlib.createZstdDecompress();
  // pipeline destroys the decompressor with the file's error too, so the reader sees every failure.
  return pipeline(raw, decompressor, () => undefined);
}

/** The entries of a tar file or of a byte range of one (a member of an outer tar), decompressing by magic. */
export function tarEntriesOf(file: string, range?: { start: number; end: number }): AsyncGenerator<TarEntry> {
  const what = range ? `the member at byte ${range.start} of '${file}'` : `'${file}'`;
  const compression = compressionOf(peek(file, range?.start ?? 0, 6), what);
  // Uncompressed archives are read by offset, so skipping content costs nothing.
  if (compression === 'none') return readTarFile(file, range);
  return readTar(openDecompressed(file, compression, range));
}

/**
 * Reads an uncompressed tar file, or the byte range [start, end) of one (a member of an outer
 * tar). Content that is not read is skipped by seeking, so scanning headers costs no data reads.
 */
export async function* readTarFile(
  file: string,
  range: { start: number; end?: number } = { start: 0 },
): AsyncGenerator<TarEntry> {
  const handle = await fs.promises.open(file, 'r');
  let end: number;
  try {
    end = range.end ?? (await handle.stat()).size;
  } catch (err) {
    await handle.close();
    throw err;
  }
  yield* readTarSource(new FileSource(handle, range.start, end)); // closes the handle when done
}

/** Positional reads of a file (range); skipping is free. */
class FileSource implements ByteSource {
  private offset: number;
  private ahead: Buffer = Buffer.alloc(0);
  private aheadStart = 0;
  private readonly handle: fs.promises.FileHandle;
  private readonly start: number;
  private readonly end: number;

  constructor(handle: fs.promises.FileHandle, start: number, end: number) {
    this.handle = handle;
    this.start = start;
    this.offset = start;
    this.end = end;
  }

  get position(): number {
    return this.offset - this.start;
  }

  async read(max: number): Promise<Buffer | null> {
    const want = Math.min(max, this.end - this.offset);
    if (want <= 0) return null;
    let at = this.offset - this.aheadStart;
    if (at < 0 || at >= this.ahead.length) {
      // Read ahead so that runs of small members do not cost a system call per 512-byte header.
      // Each refill is a new buffer: slices handed out earlier stay valid.
      const len = Math.min(Math.max(want, READ_AHEAD), this.end - this.offset);
      const buf = Buffer.allocUnsafe(len);
      const { bytesRead } = await this.handle.read(buf, 0, len, this.offset);
      if (bytesRead === 0) return null;
      this.ahead = buf.subarray(0, bytesRead);
      this.aheadStart = this.offset;
      at = 0;
    }
    const out = this.ahead.subarray(at, at + want);
    this.offset += out.length;
    return out;
  }

  async skip(n: number): Promise<number> {
    const skipped = Math.max(0, Math.min(n, this.end - this.offset));
    this.offset += skipped;
    return skipped;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Adds `context: ` in front of the message of any error from `work`, keeping its class. */
export async function inContext<T>(context: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof Error) err.message = `${context}: ${err.message}`;
    throw err;
  }
}

export async function applyTarEntries(
  entries: AsyncIterable<TarEntry>,
  tree: TreeBuilder,
  ingest: Ingest,
  log: PackWarnings,
  options: LayerOptions,
): Promise<void> {
  const layer = options.whiteouts ? new LayerPaths() : undefined;
  for await (const entry of entries) {
    const path = normalizeArchivePath(entry.path);
    if (layer && applyWhiteout(path, tree, layer)) continue;
    const inode = await inodeOf(entry, path, tree, ingest, log);
    if (!inode) continue;
    tree.set(path, inode);
    layer?.add(path, inode);
  }
}

// ---- entries -----------------------------------------------------------------------------------

async function inodeOf(
  entry: TarEntry,
  path: string,
  tree: TreeBuilder,
  ingest: Ingest,
  log: PackWarnings,
): Promise<Inode | undefined> {
  switch (entry.type) {
    case 'dir':
      return { type: 'dir', meta: metaOf(entry) };
    case 'file':
      return fileInode(entry, ingest);
    case 'symlink':
      if (!entry.linkname)
        throw new TarError(
          `tar member '${entry.path}' is a symlink with an empty target: fix or drop it and re-create the archive`,
        );
      return { type: 'symlink', meta: metaOf(entry), target: entry.linkname };
    case 'hardlink':
      return linkedInode(entry, path, tree);
    case 'char':
    case 'block':
      return { type: entry.type, meta: metaOf(entry), rdev: { major: entry.devmajor, minor: entry.devminor } };
    case 'fifo':
      return { type: 'fifo', meta: metaOf(entry) };
    case 'other':
      // Sockets, volume labels, vendor extensions: nothing an image can hold.
      log.warn(
        `skipping tar member '${entry.path}' of type '${printable(entry.typeflag)}': it is not a file, directory, link, device or FIFO`,
      );
      return undefined;
  }
}

async function fileInode(entry: TarEntry, ingest: Ingest): Promise<Inode> {
  const meta = metaOf(entry);
  const size = entry.size;
  if (size === 0) return { type: 'file', meta, size: 0 };
  if (size <= WHOLE_READ_LIMIT)
    return { type: 'file', meta, size, digest: await ingest.addBuffer(await entry.readAll()) };
  const stored = await ingest.addStream(entry.content());
  if (stored.size !== size)
    throw new TarError(`tar member '${entry.path}' gave ${stored.size} bytes instead of its ${size}`);
  return { type: 'file', meta, size, digest: stored.digest };
}

/** A hard link shares the Inode object of its target, so the manifest records it as a link. */
function linkedInode(entry: TarEntry, path: string, tree: TreeBuilder): Inode {
  const target = normalizeArchivePath(entry.linkname);
  const inode = tree.get(target);
  if (!inode) {
    throw new TarError(
      `tar member '${entry.path}' is a hard link to '${entry.linkname}', which is not earlier in the archive (or an earlier layer): re-create the archive with the target included`,
    );
  }
  if (inode.type === 'dir')
    throw new TarError(
      `tar member '${entry.path}' is a hard link to the directory '${entry.linkname}', which no file system allows`,
    );
  if (target === path) throw new TarError(`tar member '${entry.path}' is a hard link to itself`);
  // The manifest links only regular files; another hard-linked inode (a symlink, say) becomes a copy.
  return inode.type === 'file' ? inode : { ...inode };
}

function metaOf(entry: TarEntry): Meta {
  for (const [field, value] of [
    ['uid', entry.uid],
    ['gid', entry.gid],
  ] as const) {
    if (value > 0xffffffff)
      throw new TarError(`tar member '${entry.path}' has ${field} ${value}, above the 32-bit limit`);
  }
  const meta: Meta = {
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    mtime: formatMtime(entry.mtime.sec, entry.mtime.nsec),
  };
  const xattrs = encodeXattrs(entry.xattrs);
  if (xattrs) meta.xattrs = xattrs;
  return meta;
}

function printable(flag: string): string {
  return /^[\x21-\x7e]$/.test(flag) ? flag : `\\x${flag.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

// ---- OCI whiteouts -------------------------------------------------------------------------------

/**
 * The paths the current layer has set. Whiteouts apply only to lower layers (OCI image spec), so
 * a marker that comes after entries of its own layer must not delete them: they are put back.
 */
class LayerPaths {
  private readonly inodes = new Map<string, Inode>();
  private readonly dirsWithEntries = new Set<string>(['.']);

  add(path: string, inode: Inode): void {
    this.inodes.set(path, inode);
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) this.dirsWithEntries.add(path.slice(0, i));
  }

  has(path: string): boolean {
    return this.inodes.has(path);
  }

  /** Sets again the layer's own entries under `dir`, after a whiteout removed them. */
  restoreUnder(dir: string, tree: TreeBuilder): void {
    if (!this.dirsWithEntries.has(dir)) return;
    const prefix = dir === '.' ? '' : `${dir}/`;
    for (const [path, inode] of this.inodes) {
      if (path.startsWith(prefix) && path !== dir) tree.set(path, inode);
    }
  }
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Handles `path` if it is a whiteout marker (true), which is then not added itself. */
function applyWhiteout(path: string, tree: TreeBuilder, layer: LayerPaths): boolean {
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  if (!base.startsWith(WHITEOUT)) return false;
  const dir = slash < 0 ? '.' : path.slice(0, slash);
  if (base === OPAQUE) {
    tree.clearDir(dir);
    layer.restoreUnder(dir, tree);
  } else if (base.startsWith(WHITEOUT + WHITEOUT)) {
    // Other ".wh..wh.*" names are aufs bookkeeping (.wh..wh.plnk, ...) with no meaning in an image.
  } else {
    const target = (dir === '.' ? '' : `${dir}/`) + base.slice(WHITEOUT.length);
    if (!layer.has(target)) {
      tree.remove(target);
      layer.restoreUnder(target, tree);
    }
  }
  return true;
}
