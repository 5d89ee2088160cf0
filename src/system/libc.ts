// The few file-metadata system calls Node's `fs` lacks, reached through `node:ffi` and glibc:
// nanosecond timestamps (fs.utimes takes a double, which cannot hold ns precision at today's
// epoch), device nodes, FIFOs and extended attributes (security.capability, ACLs, SELinux labels).
// Every function is synchronous and throws a Node-style error (code, syscall, path) on failure.
import { errno, glibc, syscallError } from './glibc.ts';

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const ENODATA = 61;
const ERANGE = 34;
const ENOTSUP = 95;

const libc = glibc;

function fail(syscall: string, path: string): never {
  const err = syscallError(syscall, `for '${path}'`, errno());
  err.path = path;
  throw err;
}

/** A point in time with nanosecond precision, as the manifest stores it. */
export interface Timespec {
  sec: bigint;
  nsec: number;
}

const timesBuf = Buffer.alloc(32);
function timespecPair(time: Timespec): Buffer {
  timesBuf.writeBigInt64LE(time.sec, 0);
  timesBuf.writeBigInt64LE(BigInt(time.nsec), 8);
  timesBuf.writeBigInt64LE(time.sec, 16);
  timesBuf.writeBigInt64LE(BigInt(time.nsec), 24);
  return timesBuf;
}

/** Sets atime and mtime of `path` (not following a final symlink) to `time`, exactly. */
export function setTimes(path: string, time: Timespec): void {
  if (libc().utimensat(AT_FDCWD, path, timespecPair(time), AT_SYMLINK_NOFOLLOW) !== 0) fail('utimensat', path);
}

/** setTimes for an open file: no path lookup. `path` only names the file in errors. */
export function setTimesFd(fd: number, time: Timespec, path: string): void {
  if (libc().futimens(fd, timespecPair(time)) !== 0) fail('futimens', path);
}

/** setXattr for an open file. */
export function setXattrFd(fd: number, name: string, value: Buffer, path: string): void {
  if (libc().fsetxattr(fd, name, value, BigInt(value.length), 0) !== 0) fail('fsetxattr', path);
}

/** Creates a device node or FIFO. `mode` includes the file-type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  if (libc().mknod(path, mode, makedev(major, minor)) !== 0) fail('mknod', path);
}

/** glibc's makedev: the 64-bit dev_t encoding of a major/minor pair. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** Splits a dev_t (as `fs.Stats.rdev` reports it) into major and minor. */
export function splitDev(dev: number | bigint): { major: number; minor: number } {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** Sets one extended attribute on `path` itself (a symlink is not followed). */
export function setXattr(path: string, name: string, value: Buffer): void {
  if (libc().lsetxattr(path, name, value, BigInt(value.length), 0) !== 0) fail('lsetxattr', path);
}

/** Removes one extended attribute of `path` itself; one that is already gone is not an error. */
export function removeXattr(path: string, name: string): void {
  if (libc().lremovexattr(path, name) !== 0 && errno() !== ENODATA) fail('lremovexattr', path);
}

/** Reads every extended attribute of `path` itself; an empty object when it has none. */
export function getXattrs(path: string): Record<string, Buffer> {
  const c = libc();
  let listBuf = Buffer.allocUnsafe(1024);
  let n = Number(c.llistxattr(path, listBuf, BigInt(listBuf.length)));
  if (n < 0 && errno() === ERANGE) {
    listBuf = Buffer.allocUnsafe(65536);
    n = Number(c.llistxattr(path, listBuf, BigInt(listBuf.length)));
  }
  if (n < 0) {
    // File systems without xattr support answer ENOTSUP: that simply means "none".
    if (errno() === ENOTSUP) return {};
    fail('llistxattr', path);
  }
  const out: Record<string, Buffer> = {};
  if (n === 0) return out;
  for (const name of listBuf
    .subarray(0, n - 1)
    .toString('latin1')
    .split('\0')) {
    let valueBuf = Buffer.allocUnsafe(256);
    let len = Number(c.lgetxattr(path, name, valueBuf, BigInt(valueBuf.length)));
    if (len < 0 && errno() === ERANGE) {
      valueBuf = Buffer.allocUnsafe(65536);
      len = Number(c.lgetxattr(path, name, valueBuf, BigInt(valueBuf.length)));
    }
    if (len < 0) {
      if (errno() === ENODATA) continue; // removed while we listed
      fail('lgetxattr', path);
    }
    out[name] = Buffer.from(valueBuf.subarray(0, len));
  }
  return out;
}

/** Flushes every dirty page of the file system holding `fd` to disk (syncfs(2)). */
export function syncFileSystem(fd: number, pathForErrors: string): void {
  if (glibc().syncfs(fd) !== 0) fail('syncfs', pathForErrors);
}
