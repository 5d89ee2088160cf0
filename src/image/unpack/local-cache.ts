// The local object cache (`--cache-from DIR`, and the installer's booted and old OS): finds
// objects an image needs among files already on this machine, so they need not be downloaded.
// A file is used only when the very bytes handed on hash to the wanted digest, so a stale or
// tampered tree cannot inject content; where a candidate comes from never makes it trusted.
//
// Candidates, cheapest first:
//  1. the file at each of the object's own paths under each root (a reinstall of a similar image);
//  2. the paths a root's previous-install record (previous-install.ts) gives for the digest: where
//     the installer that wrote that tree put the object, even under another name;
//  3. only for objects still missing, every file of the same size in a root without such a record,
//     found by walking it once (staying on its file system).
// Files larger than SMALL_FILE (most of the bytes) are read and hashed on libuv's thread pool (fs
// reads, WebCrypto's SHA-256), several at a time, so hashing uses every core and reads overlap;
// small files (most of the files) are read and hashed on this thread, between. The bytes in
// flight are bounded. Contents are handed to `onObject` one at a time, in the order they
// were verified.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { webcrypto } from 'node:crypto';
import { type Digest, digestOf, hasherDigest, newHasher } from '../model/digest.ts';
import type { ObjectFinder, ObjectSink } from '../model/objects.ts';
import { readPreviousInstallRecord } from './previous-install.ts';

const READ_LIMIT = 256 * 1024 * 1024;
/**
 * Files up to this size are read and hashed right here, synchronously: for them the thread pool's
 * round trips (open, read, close, digest) cost more than the work, most of all under emulation.
 */
const SMALL_FILE = 256 * 1024;
/** Bytes read but not yet handed on, across the files being verified (one file may exceed it). */
const IN_FLIGHT_BYTES = 48 * 1024 * 1024;

export interface CacheStats {
  filesIndexed: number;
  filesHashed: number;
  bytesHashed: number;
  objectsFound: number;
  bytesFound: number;
  /** Objects found at a path the previous install's record named (not their own). */
  objectsFromRecord: number;
}

export function newCacheStats(): CacheStats {
  return { filesIndexed: 0, filesHashed: 0, bytesHashed: 0, objectsFound: 0, bytesFound: 0, objectsFromRecord: 0 };
}

type Wanted = Map<Digest, { size: number; paths: string[] }>;

export interface LocalCacheOptions {
  /** Files verified at once (default: twice the cores, at least 4). */
  concurrency?: number;
}

export class LocalObjectCache implements ObjectFinder {
  readonly stats: CacheStats = newCacheStats();
  private readonly roots: string[];
  private readonly concurrency: number;
  /** Per root: digest -> the paths its previous install put it at (absolute), if it has a record. */
  private records: (Map<Digest, string[]> | undefined)[] | undefined;
  private bySize: Map<number, string[]> | undefined;
  private readonly hashed = new Map<string, Digest | null>(); // "dev:ino" -> digest (null: unreadable)

  constructor(roots: string[], opts: LocalCacheOptions = {}) {
    this.roots = roots.map((r) => path.resolve(r));
    this.concurrency = opts.concurrency ?? Math.max(4, 2 * os.availableParallelism());
  }

  async find(wanted: Wanted, onObject: ObjectSink): Promise<void> {
    if (this.roots.length === 0 || wanted.size === 0) return;
    this.records ??= this.roots.map((r) => readPreviousInstallRecord(r));
    const records = this.records;
    const deliver = serially(onObject);
    const tried = new Map<Digest, Set<string>>();
    const first = [...wanted].map(([digest, { size, paths }]) => {
      const candidates = new Set<string>();
      this.roots.forEach((root, i) => {
        for (const p of paths) candidates.add(path.join(root, p));
        for (const p of records[i]?.get(digest) ?? []) candidates.add(p);
      });
      tried.set(digest, candidates);
      return { digest, size, candidates: [...candidates], own: paths.length * this.roots.length };
    });
    const missing = await this.verifyAll(first, deliver);
    if (!missing.length) return;
    // Roots without a record: every file of a wanted size, walked once, for what is still missing.
    const unrecorded = this.roots.filter((_, i) => !records[i]);
    if (!unrecorded.length) return;
    this.bySize ??= this.index(unrecorded, new Set([...wanted.values()].map((w) => w.size)));
    const bySize = this.bySize;
    const rest = missing.map(({ digest, size }) => ({
      digest,
      size,
      candidates: (bySize.get(size) ?? []).filter((p) => !tried.get(digest)?.has(p)),
      own: Number.POSITIVE_INFINITY,
    }));
    await this.verifyAll(rest, deliver);
  }

  /**
   * Tries each object's candidates in turn until one verifies, several objects at a time; returns
   * the objects none of whose candidates did.
   */
  private async verifyAll(
    jobs: { digest: Digest; size: number; candidates: string[]; own: number }[],
    deliver: ObjectSink,
  ): Promise<{ digest: Digest; size: number }[]> {
    const missing: { digest: Digest; size: number }[] = [];
    let next = 0;
    let inFlight = 0;
    const waiting: (() => void)[] = [];
    const room = async (size: number) => {
      while (inFlight > 0 && inFlight + size > IN_FLIGHT_BYTES) await new Promise<void>((r) => waiting.push(r));
      inFlight += size;
    };
    const release = (size: number) => {
      inFlight -= size;
      for (const w of waiting.splice(0)) w();
    };
    const lane = async () => {
      while (next < jobs.length) {
        const job = jobs[next++];
        let found = false;
        for (const [i, file] of job.candidates.entries()) {
          await room(job.size);
          try {
            const content = await this.tryFile(file, job.size, job.digest);
            if (!content) continue;
            this.stats.objectsFound++;
            this.stats.bytesFound += job.size;
            if (i >= job.own) this.stats.objectsFromRecord++;
            await deliver(job.digest, content);
            found = true;
            break;
          } finally {
            release(job.size);
          }
        }
        if (!found) missing.push({ digest: job.digest, size: job.size });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, jobs.length) }, lane));
    return missing;
  }

  /** Indexes regular files by size, staying on each root's file system. */
  private index(roots: string[], sizes: Set<number>): Map<number, string[]> {
    const bySize = new Map<number, string[]>();
    for (const root of roots) {
      let rootDev: number;
      try {
        rootDev = fs.statSync(root).dev;
      } catch {
        continue; // a cache root that does not exist simply has nothing
      }
      const walk = (dir: string) => {
        let ents: fs.Dirent[];
        try {
          ents = fs.readdirSync(dir, { withFileTypes: true });
        } catch {
          return;
        }
        for (const ent of ents) {
          const p = path.join(dir, ent.name);
          if (ent.isDirectory()) {
            const st = fs.lstatSync(p, { throwIfNoEntry: false });
            if (st && st.dev === rootDev) walk(p);
          } else if (ent.isFile()) {
            const st = fs.lstatSync(p, { throwIfNoEntry: false });
            if (!st || !sizes.has(st.size)) continue;
            this.stats.filesIndexed++;
            const list = bySize.get(st.size);
            if (list) list.push(p);
            else bySize.set(st.size, [p]);
          }
        }
      };
      walk(root);
    }
    return bySize;
  }

  /** The file's content if it is a regular file whose bytes, as read, are `size` long and hash to `digest`. */
  private async tryFile(file: string, size: number, digest: Digest): Promise<Buffer | undefined> {
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size !== size) return undefined;
    const key = `${st.dev}:${st.ino}`;
    const known = this.hashed.get(key);
    if (known !== undefined && known !== digest) return undefined;
    const small = size <= SMALL_FILE;
    let content: Buffer;
    try {
      if (small) content = readExactlySync(file, size);
      else content = size <= READ_LIMIT ? await readExactly(file, size) : readHugeIfMatches(file, digest);
    } catch {
      this.hashed.set(key, null);
      return undefined;
    }
    if (content.length !== size) {
      this.hashed.set(key, null);
      return undefined;
    }
    this.stats.filesHashed++;
    this.stats.bytesHashed += size;
    const actual = small
      ? digestOf(content)
      : (`sha256:${Buffer.from(await webcrypto.subtle.digest('SHA-256', content as Uint8Array<ArrayBuffer>)).toString('hex')}` as Digest);
    this.hashed.set(key, actual);
    return actual === digest ? content : undefined;
  }
}

/** `onObject` called one at a time, in call order, each call's promise settling with its own. */
function serially(onObject: ObjectSink): ObjectSink {
  let last: Promise<unknown> = Promise.resolve();
  return (digest, content) => {
    const call = last.then(() => onObject(digest, content));
    last = call.catch(() => {});
    return call;
  };
}

/**
 * The file's first `size` bytes, read on the thread pool; shorter when the file is (it changed
 * since it was looked at: the hash then decides nothing, the length already failed it).
 */
async function readExactly(file: string, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  if (size === 0) return buf;
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(buf, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return at === size ? buf : buf.subarray(0, at);
  } finally {
    await fh.close();
  }
}

/** As readExactly, on this thread. */
function readExactlySync(file: string, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  if (size === 0) return buf;
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    let at = 0;
    for (let n: number; at < size && (n = fs.readSync(fd, buf, at, size - at, at)) > 0; ) at += n;
    return at === size ? buf : buf.subarray(0, at);
  } finally {
    fs.closeSync(fd);
  }
}

/** For files too big to read speculatively: hash in pieces first, read whole only on a match. */
function readHugeIfMatches(file: string, digest: Digest): Buffer {
  const hasher = newHasher();
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
    for (let n: number; (n = fs.readSync(fd, buf)) > 0; ) hasher.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hasherDigest(hasher) === digest ? fs.readFileSync(file) : Buffer.alloc(0);
}
