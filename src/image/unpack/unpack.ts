// Unpacks an image into a directory, faithfully: types, numeric owners, modes (setuid included),
// nanosecond mtimes, xattrs (capabilities, ACLs), device numbers, hard links and sparse holes.
// Order matters and is explained where it happens:
//   1. check free space, then create the skeleton in manifest order (directories, symlinks, device
//      nodes, FIFOs, empty files); validation guarantees parents come first and are directories;
//   2. write file contents as objects arrive, from the local cache first, then the network, on
//      writer threads (tree-writer.ts), one per core. Each object is verified before a byte of it
//      is written: by the writer thread that decompresses it (the image server's frames, as
//      stored), or by its source (a fetcher's or the cache's contents, a tree verified earlier);
//   3. hard links, once their first path is complete;
//   4. directory metadata deepest first, because creating entries changes a directory's mtime.
// Any existing path that is in the way is replaced; a symlink is never followed.
import fs from 'node:fs';
import path from 'node:path';
import type { Digest } from '../model/digest.ts';
import { manifestStats, type Entry, type FileEntry, type InodeEntry, type Manifest } from '../model/manifest.ts';
import { getXattrs, removeXattr } from '../../system/libc.ts';
import { mountsUnder } from '../../system/mounts.ts';
import type { ObjectFetcher, ObjectFinder, StoredFrame, StoredObjectSource } from '../model/objects.ts';
import { applyMeta, type FileTarget, replaceWith, writeFileTarget } from './file-ops.ts';
import type { TrustedFiles } from './staged-tree.ts';
import { TreeWriterPool } from './tree-writer.ts';

export interface UnpackProgress {
  bytesDone: number;
  bytesTotal: number;
}

export interface UnpackOptions {
  /** With fetchStored (the image server's client), objects come as stored and the writer threads verify them. */
  fetcher: ObjectFetcher | (ObjectFetcher & StoredObjectSource);
  /** File systems mounted under the target are the caller's own, made for this unpack. */
  ownMounts?: boolean;
  /** With trustedFiles (a tree verified earlier, staged-tree.ts), its files are copied by the writer threads and find() is not used. */
  cache?: ObjectFinder | (ObjectFinder & TrustedFiles);
  onProgress?: (p: UnpackProgress) => void;
  /** Writer threads the caller started early (and closes); default: this unpack's own. */
  writers?: TreeWriterPool;
}

export interface UnpackStats {
  entries: number;
  bytesWritten: number;
  objectsFromCache: number;
  bytesFromCache: number;
  objectsFetched: number;
  bytesFetched: number;
}

export class UnpackError extends Error {
  override name = 'UnpackError';
}

export async function unpackImage(manifest: Manifest, target: string, opts: UnpackOptions): Promise<UnpackStats> {
  const root = path.resolve(target);
  const total = manifestStats(manifest);
  // Replacing paths under a mount (the host's /dev or /tmp bound in by an earlier load-image)
  // would change the host: refuse before touching anything, unless the caller mounted them for
  // this unpack (the installer's freshly made file systems for /home, /var/log, ...).
  const mounted = opts.ownMounts ? [] : mountsUnder(root);
  if (mounted.length)
    throw new UnpackError(`'${root}' has file systems mounted under it (${mounted.join(', ')}): unmount them first`);
  fs.mkdirSync(root, { recursive: true });
  checkSpace(root, total.bytes);

  const stats: UnpackStats = {
    entries: 0,
    bytesWritten: 0,
    objectsFromCache: 0,
    bytesFromCache: 0,
    objectsFetched: 0,
    bytesFetched: 0,
  };
  const abs = (p: string) => (p === '.' ? root : path.join(root, p));
  const pending = new Map<Digest, FileEntry[]>();
  const hardlinks: Entry[] = [];
  const dirs: InodeEntry[] = [];

  const pool =
    opts.writers ?? new TreeWriterPool({ origin: 'fetchStored' in opts.fetcher ? opts.fetcher.origin : undefined });
  pool.start(); // the threads start while the skeleton is made
  let bytesHere = 0; // written on this thread, when the pool was full and the source cannot wait
  const progress = () => {
    stats.bytesWritten = pool.bytesWritten + bytesHere;
    opts.onProgress?.({ bytesDone: stats.bytesWritten, bytesTotal: total.bytes });
  };
  pool.onProgress = progress;
  const targetsOf = (entries: FileEntry[]): FileTarget[] =>
    entries.map((e) => ({
      path: abs(e.path),
      size: e.size,
      uid: e.uid,
      gid: e.gid,
      mode: e.mode,
      mtime: e.mtime,
      ...(e.xattrs ? { xattrs: e.xattrs } : {}),
      ...(e.sparse ? { sparse: e.sparse } : {}),
    }));

  try {
    await guard(root, total.bytes, async () => {
      const others: InodeEntry[] = [];
      for (const entry of manifest.entries) {
        stats.entries++;
        if (entry.type === 'dir') dirs.push(entry);
        else if (entry.type === 'hardlink') hardlinks.push(entry);
        else if (entry.type === 'file' && entry.digest) {
          const list = pending.get(entry.digest as Digest);
          if (list) list.push(entry);
          else pending.set(entry.digest as Digest, [entry]);
        } else others.push(entry);
      }
      // Objects that arrive before the skeleton is made wait for it (or for its failure): their
      // directories must exist before a writer creates them.
      const skeleton = Promise.withResolvers<void>();
      let skeletonMade = false;
      const createSkeleton = () => {
        try {
          dropXattrs(root);
          for (const dir of dirs) if (dir.path !== '.') makeDir(abs(dir.path));
          // Written by the writer threads, in parallel with the files: their directories exist now.
          for (const entry of others) pool.addNode(abs(entry.path), entry);
        } finally {
          skeletonMade = true;
          skeleton.resolve();
        }
      };
      const afterSkeleton =
        <A extends unknown[]>(sink: (...args: A) => void | Promise<void>) =>
        (...args: A): void | Promise<void> =>
          skeletonMade ? sink(...args) : skeleton.promise.then(() => sink(...args));

      let failed = false;
      /**
       * Verified content (the local cache's, or a fetcher's without fetchStored): written on this
       * thread, as before the writer threads. Its source verifies on a thread of its own (hashing
       * the old disk is the slow part of a reinstall), and writer threads competing with it for
       * the cores made a cached reinstall slower (bench/installer.ts: tools phase 5.1 s -> 7.3 s).
       */
      const write = (digest: Digest, content: Buffer): number => {
        if (failed) throw new UnpackError('unpacking was abandoned');
        const entries = pending.get(digest);
        if (!entries) return 0; // not asked for, or already written
        pending.delete(digest);
        if (content.length !== entries[0].size)
          throw new UnpackError(
            `object for '${entries[0].path}' has ${content.length} bytes, the manifest says ${entries[0].size}`,
          );
        const targets = targetsOf(entries);
        for (const t of targets) writeFileTarget(t, content);
        bytesHere += content.length * targets.length;
        progress();
        return content.length;
      };
      const room = () => (pool.full() ? pool.room() : undefined);
      /** A source's sink: `write`, counting what was written as fetched or as from the cache. */
      const writeCounted = (from: 'Fetched' | 'FromCache') => (digest: Digest, content: Buffer) => {
        const n = write(digest, content);
        if (n) {
          stats[`objects${from}`]++;
          stats[`bytes${from}`] += n;
        }
        return room();
      };
      const fetchRest = async () => {
        const wanted = [...pending].map(([digest, entries]) => ({ digest, size: entries[0].size }));
        const fetcher = opts.fetcher;
        if ('fetchStored' in fetcher) {
          await fetcher.fetchStored(
            wanted,
            afterSkeleton((frame: StoredFrame) => {
              if (failed) throw new UnpackError('unpacking was abandoned');
              const entries = pending.get(frame.digest);
              if (!entries) return;
              pending.delete(frame.digest);
              stats.objectsFetched++;
              stats.bytesFetched += entries[0].size;
              pool.addStored(frame.digest, frame.stored, entries[0].size, targetsOf(entries));
              return room();
            }),
          );
        } else {
          await fetcher.fetch(wanted, afterSkeleton(writeCounted('Fetched')));
        }
        await pool.drain();
      };

      const cache = opts.cache;
      if (!cache) {
        // Start downloading before creating the skeleton: the server looks the objects up and
        // the first ones arrive while the directories are made (they wait for it: afterSkeleton).
        // The request leaves only once the event loop turns (the connection the manifest came
        // over is taken up on the next tick): without this turn it left after the skeleton, and
        // the first object came 70-150 ms later (Debian's tree).
        const fetching = pending.size ? fetchRest() : Promise.resolve();
        fetching.catch(() => {}); // a failure during the turn is awaited below, not unhandled
        await new Promise((resolve) => setImmediate(resolve));
        try {
          createSkeleton();
        } catch (err) {
          failed = true;
          await fetching.catch(() => {});
          throw err;
        }
        await fetching;
      } else {
        createSkeleton();
        if (pending.size) {
          const wanted = new Map(
            [...pending].map(([d, es]) => [d, { size: es[0].size, paths: es.map((e) => e.path) }]),
          );
          if ('trustedFiles' in cache) {
            for (const [digest, file] of cache.trustedFiles(wanted)) {
              const entries = pending.get(digest)!;
              const size = entries[0].size;
              pending.delete(digest);
              pool.addFile(file, size, targetsOf(entries), (found) => {
                if (!found)
                  pending.set(digest, entries); // fetched from the network below
                else {
                  stats.objectsFromCache++;
                  stats.bytesFromCache += size;
                }
              });
              await room();
            }
          } else {
            await cache.find(wanted, writeCounted('FromCache'));
          }
          await pool.drain();
        }
        if (pending.size) await fetchRest();
      }
      await pool.drain(); // everything written before hard links are made to it
      if (pending.size) {
        const [digest, entries] = pending.entries().next().value!;
        throw new UnpackError(`${pending.size} objects never arrived, e.g. ${digest} for '${entries[0].path}'`);
      }
      progress();

      for (const entry of hardlinks) {
        const { path: p, target: t } = entry as Extract<Entry, { type: 'hardlink' }>;
        replaceWith(abs(p), () => fs.linkSync(abs(t), abs(p)));
      }
      for (let i = dirs.length - 1; i >= 0; i--) applyMeta(abs(dirs[i].path), dirs[i]);
    });
  } finally {
    if (!opts.writers) await pool.close();
  }
  return stats;
}

function checkSpace(root: string, bytes: number): void {
  const fsStat = fs.statfsSync(root);
  const free = fsStat.bavail * fsStat.bsize;
  if (bytes > free) {
    throw new UnpackError(
      `not enough space on '${root}': the image needs ${bytes} bytes of file data but only ${free} are free; free space or unpack elsewhere`,
    );
  }
}

/** Turns ENOSPC/EDQUOT into one clear error, whatever step hit it. */
async function guard(root: string, bytes: number, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new UnpackError(
        `disk full: ran out of space on '${root}' while writing '${(err as NodeJS.ErrnoException).path ?? '?'}' (the image needs ${bytes} bytes of file data); free space or unpack elsewhere`,
      );
    }
    throw err;
  }
}

function makeDir(p: string): void {
  try {
    fs.mkdirSync(p, 0o700);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (fs.lstatSync(p).isDirectory()) {
      dropXattrs(p); // reuse, e.g. a mount point
      return;
    }
    fs.rmSync(p, { force: true });
    fs.mkdirSync(p, 0o700);
  }
}

/**
 * A directory reused from an earlier tree loses its xattrs before anything is created in it: an
 * old default ACL would be inherited by every new entry, an old SELinux label would stay. The
 * image's own xattrs are set at the end, with the rest of the directory's metadata.
 */
function dropXattrs(p: string): void {
  for (const name of Object.keys(getXattrs(p))) removeXattr(p, name);
}
