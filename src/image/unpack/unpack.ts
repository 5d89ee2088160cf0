// Unpacks an image into a directory, faithfully: types, numeric owners, modes (setuid included),
// nanosecond mtimes, xattrs (capabilities, ACLs), device numbers, hard links and sparse holes.
// Order matters and is explained where it happens:
//   1. check free space, then create the skeleton in manifest order (directories, symlinks, device
//      nodes, FIFOs, empty files); validation guarantees parents come first and are directories;
//   2. write file contents as objects arrive, from the local cache first, then the network. Each
//      object is verified by the fetcher before a byte of it is written;
//   3. hard links, once their first path is complete;
//   4. directory metadata deepest first, because creating entries changes a directory's mtime.
// Any existing path that is in the way is replaced; a symlink is never followed.
import fs from 'node:fs';
import path from 'node:path';
import type { Digest } from '../model/digest.ts';
import {
  manifestStats,
  parseMtime,
  type Entry,
  type FileEntry,
  type InodeEntry,
  type Manifest,
} from '../model/manifest.ts';
import { getXattrs, mknod, removeXattr, setTimes, setTimesFd, setXattr, setXattrFd } from '../../system/libc.ts';
import { mountsUnder } from '../../system/mounts.ts';
import type { ObjectFetcher, ObjectFinder } from '../model/objects.ts';

export interface UnpackProgress {
  bytesDone: number;
  bytesTotal: number;
}

export interface UnpackOptions {
  fetcher: ObjectFetcher;
  /** File systems mounted under the target are the caller's own, made for this unpack. */
  ownMounts?: boolean;
  cache?: ObjectFinder;
  onProgress?: (p: UnpackProgress) => void;
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

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

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
    const createSkeleton = () => {
      dropXattrs(root);
      for (const dir of dirs) if (dir.path !== '.') makeDir(abs(dir.path));
      for (const entry of others) createNonRegular(abs(entry.path), entry);
    };

    let failed = false;
    const write = (digest: Digest, content: Buffer): number => {
      if (failed) throw new UnpackError('unpacking was abandoned');
      const entries = pending.get(digest);
      if (!entries) return 0; // not asked for, or already written
      pending.delete(digest);
      for (const entry of entries) {
        writeFile(abs(entry.path), entry, content);
        stats.bytesWritten += content.length;
      }
      opts.onProgress?.({ bytesDone: stats.bytesWritten, bytesTotal: total.bytes });
      return content.length;
    };
    const fetchRest = () => {
      const wanted = [...pending].map(([digest, entries]) => ({ digest, size: entries[0].size }));
      return opts.fetcher.fetch(wanted, (digest, content) => {
        const n = write(digest, content);
        if (n) {
          stats.objectsFetched++;
          stats.bytesFetched += n;
        }
      });
    };

    if (!opts.cache) {
      // Start downloading before creating the skeleton: its first objects arrive while the
      // directories are made, and none is written before that synchronous work has finished.
      const fetching = pending.size ? fetchRest() : Promise.resolve();
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
        const wanted = new Map([...pending].map(([d, es]) => [d, { size: es[0].size, paths: es.map((e) => e.path) }]));
        await opts.cache.find(wanted, (digest, content) => {
          const n = write(digest, content);
          if (n) {
            stats.objectsFromCache++;
            stats.bytesFromCache += n;
          }
        });
      }
      if (pending.size) await fetchRest();
    }
    if (pending.size) {
      const [digest, entries] = pending.entries().next().value!;
      throw new UnpackError(`${pending.size} objects never arrived, e.g. ${digest} for '${entries[0].path}'`);
    }

    for (const entry of hardlinks) {
      const { path: p, target: t } = entry as Extract<Entry, { type: 'hardlink' }>;
      replaceWith(abs(p), () => fs.linkSync(abs(t), abs(p)));
    }
    for (let i = dirs.length - 1; i >= 0; i--) applyMeta(abs(dirs[i].path), dirs[i]);
  });
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

/** Runs `create`; if something already occupies the path, removes it and tries once more. */
function replaceWith(p: string, create: () => void): void {
  try {
    create();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ELOOP' && code !== 'EISDIR' && code !== 'ENOTDIR') throw err;
    fs.rmSync(p, { recursive: true, force: true });
    create();
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

function createNonRegular(p: string, entry: InodeEntry): void {
  switch (entry.type) {
    case 'symlink':
      replaceWith(p, () => fs.symlinkSync(entry.target, p));
      fs.lchownSync(p, entry.uid, entry.gid);
      break;
    case 'char':
    case 'block': {
      const type = entry.type === 'char' ? S_IFCHR : S_IFBLK;
      replaceWith(p, () => mknod(p, type | 0o600, entry.rdev.major, entry.rdev.minor));
      break;
    }
    case 'fifo':
      replaceWith(p, () => mknod(p, S_IFIFO | 0o600));
      break;
    case 'file': // empty
      replaceWith(p, () =>
        fs.closeSync(
          fs.openSync(
            p,
            fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
            0o600,
          ),
        ),
      );
      break;
    case 'dir':
      throw new Error('unreachable');
  }
  if (entry.type === 'symlink') finishMeta(p, entry);
  else applyMeta(p, entry);
}

function writeFile(p: string, entry: FileEntry, content: Buffer): void {
  if (content.length !== entry.size)
    throw new UnpackError(`object for '${entry.path}' has ${content.length} bytes, the manifest says ${entry.size}`);
  // O_EXCL: whatever is at the path (a FIFO, a device node, another inode's hard link) is removed
  // and a new file made, never opened and written through.
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
  let fd = -1;
  replaceWith(p, () => {
    fd = fs.openSync(p, flags, 0o600);
  });
  try {
    if (entry.sparse) writeSparse(fd, content);
    else fs.writeSync(fd, content);
    // Through the open descriptor: no path lookups, and the same order as applyMeta().
    fs.fchownSync(fd, entry.uid, entry.gid);
    fs.fchmodSync(fd, entry.mode);
    if (entry.xattrs) {
      for (const [name, value] of Object.entries(entry.xattrs)) setXattrFd(fd, name, Buffer.from(value, 'base64'), p);
    }
    setTimesFd(fd, parseMtime(entry.mtime), p);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes only the non-zero blocks, so runs of zeros stay holes, then sets the length. */
function writeSparse(fd: number, content: Buffer): void {
  let runStart = -1;
  for (let off = 0; off < content.length; off += BLOCK) {
    const end = Math.min(off + BLOCK, content.length);
    const zero = content.compare(ZERO_BLOCK, 0, end - off, off, end) === 0;
    if (!zero && runStart < 0) runStart = off;
    if (zero && runStart >= 0) {
      fs.writeSync(fd, content, runStart, off - runStart, runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) fs.writeSync(fd, content, runStart, content.length - runStart, runStart);
  fs.ftruncateSync(fd, content.length);
}

/**
 * Owner, then mode, then xattrs, then times: chown clears setuid bits and file capabilities, so it
 * goes first; setting xattrs does not touch mtime, so times go last.
 */
/**
 * A directory reused from an earlier tree loses its xattrs before anything is created in it: an
 * old default ACL would be inherited by every new entry, an old SELinux label would stay. The
 * image's own xattrs are set at the end, with the rest of the directory's metadata.
 */
function dropXattrs(p: string): void {
  for (const name of Object.keys(getXattrs(p))) removeXattr(p, name);
}

function applyMeta(p: string, entry: InodeEntry): void {
  fs.lchownSync(p, entry.uid, entry.gid);
  fs.chmodSync(p, entry.mode);
  finishMeta(p, entry);
}

function finishMeta(p: string, entry: InodeEntry): void {
  if (entry.xattrs) {
    for (const [name, value] of Object.entries(entry.xattrs)) setXattr(p, name, Buffer.from(value, 'base64'));
  }
  setTimes(p, parseMtime(entry.mtime));
}
