// The image store on a local directory (layout in docs/image-format.md):
//   objects/sha256/ab/<64 hex>   zstd-compressed content, named by the digest of the *uncompressed* bytes
//   images/<stream>/<leaf>.json   image records: name -> manifest digest, creation time, source, stats
//   tmp/                          in-flight writes, on the same file system so a rename is atomic
// Manifests are objects too. Objects are written temp-then-rename, so a reader or a `kill -9` never
// sees a torn object; the store's file system is synced once before an image record is committed,
// and the record itself is created atomically and never overwritten. Nothing locks: concurrent adds
// of images that share objects write identical bytes under the same name, and gc spares objects
// younger than its grace period, so it cannot remove the objects of an add still in flight.
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { z } from 'zod';
import { digestHex, digestOf, isDigest, type Digest } from '../model/digest.ts';
import { encodeManifest, manifestStats, parseManifest, type Manifest, type ManifestStats } from '../model/manifest.ts';
import { checkFullImageName, checkImageName, streamOf } from '../model/names.ts';
import { createFileAtomic, tempName } from '../../util/atomic-file.ts';
import { syncFileSystem } from '../../system/libc.ts';
import { parseJsonWith } from '../../util/parse-json.ts';
import { ZSTD_LEVEL } from './zstd.ts';

const zstdCompress = promisify(zlib.zstdCompress);
const zstdDecompress = promisify(zlib.zstdDecompress);
export { ZSTD_LEVEL };
/**
 * Below this size zstd runs synchronously: for small inputs a call through libuv's pool costs far
 * more than the compression itself (measured: 21,000 man pages, 0.33 s sync vs 3 s async).
 */
export const SYNC_ZSTD_LIMIT = 1024 * 1024;

function compressOptions(size: number): zlib.ZstdOptions {
  // The pledged size lets zstd size its tables to the input instead of a full window per object.
  return { params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL }, pledgedSrcSize: size };
}

/** zstd-compresses a whole buffer: inline when small, on the thread pool when large. */
export async function compress(content: Uint8Array): Promise<Buffer> {
  const opts = compressOptions(content.length);
  return content.length < SYNC_ZSTD_LIMIT ? zlib.zstdCompressSync(content, opts) : zstdCompress(content, opts);
}

/** The inverse of compress(), with the same inline/pool split by stored size. */
export async function decompress(stored: Uint8Array): Promise<Buffer> {
  return stored.length < SYNC_ZSTD_LIMIT / 4 ? zlib.zstdDecompressSync(stored) : zstdDecompress(stored);
}

export interface ImageRecord {
  name: string;
  manifest: Digest;
  created: string;
  source: string;
  stats: ManifestStats;
}

export class StoreError extends Error {
  override name = 'StoreError';
}

/** The streams of `records`, sorted. */
function streamsOf(records: ImageRecord[]): string[] {
  return [...new Set(records.map((r) => streamOf(r.name)))].sort();
}

export class ImageStore {
  readonly root: string;
  private readonly objectsDir: string;
  private readonly imagesDir: string;
  private readonly tmpDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.objectsDir = path.join(this.root, 'objects', 'sha256');
    this.imagesDir = path.join(this.root, 'images');
    this.tmpDir = path.join(this.root, 'tmp');
  }

  /** Creates the store's directories if needed. */
  init(): this {
    for (const dir of [this.objectsDir, this.imagesDir, this.tmpDir]) fs.mkdirSync(dir, { recursive: true });
    return this;
  }

  /**
   * Opens an existing store, with a clear error when the directory is not one. A store whose
   * first add was killed while creating its directories is completed, not refused.
   */
  static open(root: string): ImageStore {
    const store = new ImageStore(root);
    if (!fs.existsSync(path.dirname(store.objectsDir)) && !fs.existsSync(store.imagesDir)) {
      throw new StoreError(
        `'${store.root}' is not an image store (no objects/ or images/): add an image to create one, or pass --store`,
      );
    }
    return store.init();
  }

  objectPath(digest: Digest): string {
    const hex = digestHex(digest);
    return path.join(this.objectsDir, hex.slice(0, 2), hex);
  }

  /** The stored (compressed) size of an object, or undefined if the store lacks it. */
  storedSize(digest: Digest): number | undefined {
    try {
      // No error made for an absent object: a batch asking for 100,000 unknown digests would
      // otherwise spend most of its time building exceptions.
      return fs.statSync(this.objectPath(digest), { throwIfNoEntry: false })?.size;
    } catch {
      return undefined;
    }
  }

  /**
   * Stores `content` under its digest unless present. Returns the stored size and whether this call
   * added it. An object already present gets its mtime refreshed so a concurrent gc spares it.
   */
  async putObject(
    content: Uint8Array,
    digest: Digest = digestOf(content),
  ): Promise<{ digest: Digest; storedBytes: number; added: boolean }> {
    const final = this.objectPath(digest);
    const existing = this.touch(final);
    if (existing !== undefined) return { digest, storedBytes: existing, added: false };
    const compressed = await compress(content);
    this.publish(compressed, final);
    return { digest, storedBytes: compressed.length, added: true };
  }

  private touch(file: string): number | undefined {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st) return undefined;
    const now = new Date();
    fs.utimesSync(file, now, now);
    return st.size;
  }

  private publish(compressed: Uint8Array, final: string): void {
    const tmp = tempName(this.tmpDir, 'obj');
    fs.writeFileSync(tmp, compressed, { mode: 0o444 });
    try {
      fs.renameSync(tmp, final);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fs.mkdirSync(path.dirname(final), { recursive: true });
      fs.renameSync(tmp, final);
    }
  }

  /** Path of a new temporary file in the store, for streaming writes of large objects. */
  tempPath(hint = 'obj'): string {
    return tempName(this.tmpDir, hint);
  }

  /** Moves a fully written temporary file (compressed content) into place as `digest`. */
  adoptTemp(tmp: string, digest: Digest): boolean {
    const final = this.objectPath(digest);
    if (this.touch(final) !== undefined) {
      fs.rmSync(tmp, { force: true });
      return false;
    }
    fs.mkdirSync(path.dirname(final), { recursive: true });
    fs.renameSync(tmp, final);
    return true;
  }

  readCompressed(digest: Digest): Buffer {
    try {
      return fs.readFileSync(this.objectPath(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new StoreError(`object ${digest} is not in the store`);
      throw err;
    }
  }

  /** Reads an object and checks its content against its digest before returning it. */
  async readObject(digest: Digest): Promise<Buffer> {
    const content = await decompress(this.readCompressed(digest));
    const actual = digestOf(content);
    if (actual !== digest)
      throw new StoreError(`object ${digest} is corrupt in the store: its content hashes to ${actual}`);
    return content;
  }

  async putManifest(manifest: Manifest): Promise<Digest> {
    const bytes = encodeManifest(manifest);
    const digest = digestOf(bytes);
    await this.putObject(bytes, digest);
    return digest;
  }

  async readManifest(digest: Digest): Promise<Manifest> {
    return parseManifest(await this.readObject(digest), `manifest ${digest}`);
  }

  /**
   * Makes everything written so far durable, then records the image. Refuses an existing name.
   * `objects` (the manifest and every content object) are checked to be present first: an add
   * slower than gc's grace period, or racing a gc, fails here with a clear error instead of
   * recording an image whose objects are gone. (One readdir per prefix directory, not a stat per
   * object: this runs on every add.)
   */
  commitImage(record: ImageRecord, objects: Iterable<Digest>): void {
    checkFullImageName(record.name);
    const listed = new Map<string, Set<string>>();
    for (const digest of objects) {
      const hex = digestHex(digest);
      const prefix = hex.slice(0, 2);
      let names = listed.get(prefix);
      if (!names) {
        const dir = path.join(this.objectsDir, prefix);
        names = new Set(fs.existsSync(dir) ? fs.readdirSync(dir) : []);
        listed.set(prefix, names);
      }
      if (!names.has(hex)) {
        throw new StoreError(
          `object ${digest} of image '${record.name}' vanished before the image was recorded (a concurrent 'image gc'?): run the add again`,
        );
      }
    }
    const file = this.recordPath(record.name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(this.root, 'r');
    try {
      syncFileSystem(fd, this.root);
    } finally {
      fs.closeSync(fd);
    }
    if (!createFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`)) {
      throw new StoreError(
        `image '${record.name}' already exists: images are immutable, so add it under a new leaf name (or 'cradle image rm' it first)`,
      );
    }
  }

  private recordPath(name: string): string {
    return path.join(this.imagesDir, `${name}.json`);
  }

  getRecord(name: string): ImageRecord | undefined {
    const file = this.recordPath(checkImageName(name));
    return fs.existsSync(file) ? readRecord(file) : undefined;
  }

  listRecords(): ImageRecord[] {
    const out: ImageRecord[] = [];
    this.walkImages((file, name) => {
      if (name.endsWith('.json') && !name.startsWith('.')) out.push(readRecord(file));
    });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Calls `visit` for every file under images/ (records, and temp files of interrupted commits). */
  private walkImages(visit: (file: string, name: string) => void): void {
    const walk = (dir: string) => {
      for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, ent.name);
        if (ent.isDirectory()) walk(p);
        else if (ent.isFile()) visit(p, ent.name);
      }
    };
    walk(this.imagesDir);
  }

  streams(): string[] {
    return streamsOf(this.listRecords());
  }

  /**
   * Resolves an exact image name, or a stream name to the image created last in it (by creation
   * time, not by name). A missing leaf is *not* silently replaced by the latest of its stream.
   */
  resolve(name: string): ImageRecord {
    checkImageName(name);
    const exact = this.getRecord(name);
    if (exact) return exact;
    // Read once: a name nobody has (anyone may ask) costs one pass over the records, not two.
    const records = this.listRecords();
    const inStream = records.filter((r) => streamOf(r.name) === name);
    if (inStream.length > 0) {
      return inStream.reduce((a, b) => (b.created > a.created || (b.created === a.created && b.name > a.name) ? b : a));
    }
    const streams = streamsOf(records);
    throw new StoreError(
      `no image or stream named '${name}'. ` +
        (streams.length
          ? `Streams in this store: ${streams.join(', ')}`
          : 'The store has no images yet: add one with `cradle image add`'),
    );
  }

  removeImage(name: string): ImageRecord {
    const record = this.getRecord(name);
    if (!record)
      throw new StoreError(`no image named '${name}' (rm takes a full name, not a stream): see 'cradle image list'`);
    fs.rmSync(this.recordPath(name));
    // Drop directories the removal left empty, up to images/.
    let dir = path.dirname(this.recordPath(name));
    while (dir !== this.imagesDir && fs.readdirSync(dir).length === 0) {
      fs.rmdirSync(dir);
      dir = path.dirname(dir);
    }
    return record;
  }

  /** Every object digest present in the store. */
  *allObjects(): Generator<Digest> {
    for (const prefix of fs.readdirSync(this.objectsDir)) {
      const dir = path.join(this.objectsDir, prefix);
      for (const hex of fs.readdirSync(dir)) {
        const digest = `sha256:${hex}`;
        if (isDigest(digest)) yield digest;
      }
    }
  }

  /** The objects the named images need: their manifests and every file content object. */
  async reachableObjects(): Promise<Set<Digest>> {
    const live = new Set<Digest>();
    for (const record of this.listRecords()) {
      live.add(record.manifest);
      const manifest = await this.readManifest(record.manifest);
      for (const e of manifest.entries) if (e.type === 'file' && e.digest) live.add(e.digest as Digest);
    }
    return live;
  }

  /**
   * Removes objects no image needs, and stale temporary files. Objects and temporary files younger
   * than `graceMs` are kept: they may belong to an add that has not committed its record yet.
   */
  async gc(graceMs = 3600_000): Promise<{ removed: number; removedBytes: number; kept: number }> {
    const live = await this.reachableObjects();
    const cutoff = Date.now() - graceMs;
    let removed = 0;
    let removedBytes = 0;
    let kept = 0;
    for (const digest of this.allObjects()) {
      if (live.has(digest)) {
        kept++;
        continue;
      }
      const file = this.objectPath(digest);
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.mtimeMs > cutoff) {
        kept++;
        continue;
      }
      fs.rmSync(file, { force: true });
      removed++;
      removedBytes += st.size;
    }
    // Temporary files of adds killed part way: in tmp/, and beside records (a commit's temp file).
    const removeIfStale = (file: string) => {
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (st && st.mtimeMs <= cutoff) fs.rmSync(file, { force: true });
    };
    for (const name of fs.readdirSync(this.tmpDir)) removeIfStale(path.join(this.tmpDir, name));
    this.walkImages((file, name) => {
      if (name.startsWith('.')) removeIfStale(file);
    });
    return { removed, removedBytes, kept };
  }

  /**
   * Checks the store: every record's manifest parses, and every object it needs is present and
   * decompresses to its digest. Returns the problems found (empty when the store is sound).
   */
  async verify(): Promise<string[]> {
    const problems: string[] = [];
    const checked = new Map<Digest, string | undefined>();
    const check = async (digest: Digest): Promise<string | undefined> => {
      if (!checked.has(digest)) {
        try {
          await this.readObject(digest);
          checked.set(digest, undefined);
        } catch (err) {
          checked.set(digest, (err as Error).message);
        }
      }
      return checked.get(digest);
    };
    for (const record of this.listRecords()) {
      const bad = await check(record.manifest);
      if (bad) {
        problems.push(`image ${record.name}: ${bad}`);
        continue;
      }
      let manifest: Manifest;
      try {
        manifest = await this.readManifest(record.manifest);
      } catch (err) {
        problems.push(`image ${record.name}: ${(err as Error).message}`);
        continue;
      }
      for (const e of manifest.entries) {
        if (e.type !== 'file' || !e.digest) continue;
        const problem = await check(e.digest as Digest);
        if (problem) problems.push(`image ${record.name}, file ${e.path}: ${problem}`);
      }
    }
    return problems;
  }
}

const recordSchema = z.object({
  name: z.string(),
  manifest: z.string().refine(isDigest, 'expected a sha256: digest'),
  created: z.iso.datetime(),
  source: z.string(),
  stats: z.object({
    entries: z.number(),
    files: z.number(),
    dirs: z.number(),
    symlinks: z.number(),
    bytes: z.number(),
    objects: z.number(),
    objectBytes: z.number(),
  }),
});

/** Reads an image record, checking its shape: a damaged record is named, not half-trusted. */
function readRecord(file: string): ImageRecord {
  const fix = 'repair it or remove it';
  return parseJsonWith(
    fs.readFileSync(file, 'utf8'),
    recordSchema,
    `image record '${file}'`,
    (m) => new StoreError(`${m}; ${fix}`),
  ) as ImageRecord;
}

export function newRecord(name: string, manifestDigestValue: Digest, manifest: Manifest, source: string): ImageRecord {
  return {
    name,
    manifest: manifestDigestValue,
    created: new Date().toISOString(),
    source,
    stats: manifestStats(manifest),
  };
}
