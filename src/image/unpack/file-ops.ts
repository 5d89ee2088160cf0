// Writing one regular file of an image, exactly as its manifest entry says: used by the unpacker's
// writer threads (tree-writer-thread.ts) and by the unpacker itself. It imports neither the
// manifest's schema nor anything heavy, so a writer thread starts quickly.
import fs from 'node:fs';
import { type InodeEntry, parseMtime } from '../model/manifest.ts';
import { mknod, setTimes, setTimesFd, setXattr, setXattrFd } from '../../system/libc.ts';

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/** A regular file to write: its manifest entry (model/manifest.ts FileEntry) at an absolute path. */
export interface FileTarget {
  path: string;
  size: number;
  uid: number;
  gid: number;
  mode: number;
  /** `sec.nsec`, as the manifest stores it. */
  mtime: string;
  xattrs?: Record<string, string>;
  sparse?: true;
}

const BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** Runs `create`; if something already occupies the path, removes it and tries once more. */
export function replaceWith(p: string, create: () => void): void {
  try {
    create();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ELOOP' && code !== 'EISDIR' && code !== 'ENOTDIR') throw err;
    fs.rmSync(p, { recursive: true, force: true });
    create();
  }
}

const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/**
 * Writes `content` (already verified against the entry's digest) as a new file at `target.path`.
 * O_EXCL: whatever is at the path (a FIFO, a device node, another inode's hard link) is removed
 * and a new file made, never opened and written through. Owner, then mode, then xattrs, then
 * times, through the open descriptor: chown clears setuid bits and file capabilities, so it goes
 * first; setting xattrs does not touch mtime, so times go last.
 */
export function writeFileTarget(target: FileTarget, content: Uint8Array): void {
  const p = target.path;
  if (content.length !== target.size)
    throw new Error(`object for '${p}' has ${content.length} bytes, the manifest says ${target.size}`);
  let fd = -1;
  replaceWith(p, () => {
    fd = fs.openSync(p, CREATE_FLAGS, 0o600);
  });
  try {
    if (target.sparse) writeSparse(fd, content);
    else writeAll(fd, content);
    fs.fchownSync(fd, target.uid, target.gid);
    fs.fchmodSync(fd, target.mode);
    if (target.xattrs) {
      for (const [name, value] of Object.entries(target.xattrs)) setXattrFd(fd, name, Buffer.from(value, 'base64'), p);
    }
    setTimesFd(fd, parseMtime(target.mtime), p);
  } catch (err) {
    // Calls on a descriptor name no path: the error names the file (a full disk's message does).
    (err as NodeJS.ErrnoException).path ??= p;
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, content: Uint8Array): void {
  let off = 0;
  while (off < content.length) off += fs.writeSync(fd, content, off, content.length - off);
}

/** Writes only the non-zero blocks, so runs of zeros stay holes, then sets the length. */
function writeSparse(fd: number, content: Uint8Array): void {
  const buf = Buffer.from(content.buffer, content.byteOffset, content.length);
  let runStart = -1;
  for (let off = 0; off < buf.length; off += BLOCK) {
    const end = Math.min(off + BLOCK, buf.length);
    const zero = buf.compare(ZERO_BLOCK, 0, end - off, off, end) === 0;
    if (!zero && runStart < 0) runStart = off;
    if (zero && runStart >= 0) {
      fs.writeSync(fd, buf, runStart, off - runStart, runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) fs.writeSync(fd, buf, runStart, buf.length - runStart, runStart);
  fs.ftruncateSync(fd, buf.length);
}

/**
 * The bytes of `file` if it is a regular file (not a symlink) of exactly `size` bytes, read into
 * `buf` (grown when too small; the caller keeps the returned buffer for the next call).
 */
export function readExactly(file: string, size: number, buf: Buffer): { content: Buffer; buf: Buffer } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size !== size) return undefined;
    if (buf.length < size) buf = Buffer.allocUnsafe(Math.max(size, buf.length * 2));
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, off);
      if (n === 0) return undefined;
      off += n;
    }
    return { content: buf.subarray(0, size), buf };
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates a symlink, device node, FIFO or empty file at `p` with the entry's metadata. */
export function createNonRegular(p: string, entry: InodeEntry): void {
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

/**
 * Owner, then mode, then xattrs, then times: chown clears setuid bits and file capabilities, so it
 * goes first; setting xattrs does not touch mtime, so times go last.
 */
export function applyMeta(p: string, entry: InodeEntry): void {
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
