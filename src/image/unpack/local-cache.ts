// The local object cache (`--cache-from DIR`, and later the installer's booted and old OS): finds
// objects an image needs among files already on this machine, so they need not be downloaded.
// Only files whose size equals a wanted object's size are hashed at all, the file at the same path
// first, so a reinstall over a similar tree hashes little more than it reuses. A file is used only
// when its content hashes to the wanted digest, so a stale or tampered tree cannot inject content.
import fs from 'node:fs';
import path from 'node:path';
import { digestOf, hasherDigest, newHasher, type Digest } from '../model/digest.ts';
import type { ObjectFinder, ObjectSink } from '../model/objects.ts';

const READ_LIMIT = 256 * 1024 * 1024;

export interface CacheStats {
  filesIndexed: number;
  filesHashed: number;
  bytesHashed: number;
  objectsFound: number;
  bytesFound: number;
}

export function newCacheStats(): CacheStats {
  return { filesIndexed: 0, filesHashed: 0, bytesHashed: 0, objectsFound: 0, bytesFound: 0 };
}

export class LocalObjectCache implements ObjectFinder {
  readonly stats: CacheStats = newCacheStats();
  private readonly roots: string[];
  private bySize: Map<number, string[]> | undefined;
  private readonly hashed = new Map<string, Digest | null>(); // "dev:ino" -> digest (null: unreadable)

  constructor(roots: string[]) {
    this.roots = roots.map((r) => path.resolve(r));
  }

  /** Indexes regular files by size, staying on each root's file system. */
  private index(sizes: Set<number>): Map<number, string[]> {
    const bySize = new Map<number, string[]>();
    for (const root of this.roots) {
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

  async find(wanted: Map<Digest, { size: number; paths: string[] }>, onObject: ObjectSink): Promise<void> {
    if (this.roots.length === 0 || wanted.size === 0) return;
    this.bySize ??= this.index(new Set([...wanted.values()].map((w) => w.size)));
    for (const [digest, { size, paths }] of wanted) {
      const candidates = new Set<string>();
      for (const root of this.roots) for (const p of paths) candidates.add(path.join(root, p));
      for (const p of this.bySize.get(size) ?? []) candidates.add(p);
      for (const file of candidates) {
        const content = this.tryFile(file, size, digest);
        if (content) {
          this.stats.objectsFound++;
          this.stats.bytesFound += size;
          await onObject(digest, content);
          break;
        }
      }
    }
  }

  /** Returns the file's content if it is a regular file of `size` bytes hashing to `digest`. */
  private tryFile(file: string, size: number, digest: Digest): Buffer | undefined {
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size !== size) return undefined;
    const key = `${st.dev}:${st.ino}`;
    const known = this.hashed.get(key);
    if (known !== undefined && known !== digest) return undefined;
    let content: Buffer;
    try {
      content = size <= READ_LIMIT ? fs.readFileSync(file) : readHugeIfMatches(file, digest);
    } catch {
      this.hashed.set(key, null);
      return undefined;
    }
    if (content.length === 0 && size > 0) {
      this.hashed.set(key, null);
      return undefined;
    }
    this.stats.filesHashed++;
    this.stats.bytesHashed += size;
    const actual = digestOf(content);
    this.hashed.set(key, actual);
    return actual === digest ? content : undefined;
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
