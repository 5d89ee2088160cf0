// The store's object files on disk, as the write path handles them: where an object lives, whether
// it is there already, and publishing a new one atomically. Shared by ImageStore (store.ts) and the
// object writer threads (object-writer-worker.ts), which must not load the whole store module.
import fs from 'node:fs';
import path from 'node:path';
import { tempName } from '../../util/atomic-file.ts';

/** objects/sha256/<first 2 hex>/<64 hex>: `objectsDir` is the store's objects/sha256. */
export function objectFile(objectsDir: string, hex: string): string {
  return path.join(objectsDir, hex.slice(0, 2), hex);
}

/** The 256 fan-out directory names, "00" to "ff". */
export const PREFIXES: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * The fan-out directories of `objectsDir` that hold at least one entry now (one getdents each, at
 * most: a fresh store has none). An object whose prefix is not among them was not in the store
 * when this was taken, so a writer need not look for it (see ObjectWriterPool).
 */
export function occupiedPrefixes(objectsDir: string): Set<string> {
  const occupied = new Set<string>();
  let present: string[];
  try {
    present = fs.readdirSync(objectsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return occupied;
    throw err;
  }
  for (const prefix of present) {
    if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
    let dir: fs.Dir | undefined;
    try {
      dir = fs.opendirSync(path.join(objectsDir, prefix));
      if (dir.readSync()) occupied.add(prefix);
    } catch {
      occupied.add(prefix); // unreadable or not a directory: look for its objects one by one
    } finally {
      dir?.closeSync();
    }
  }
  return occupied;
}

/**
 * Creates the fan-out directories an add will write into, once, so that publishing an object is
 * one rename, not a failed rename, a mkdir and a second rename per new directory.
 */
export function makeFanOutDirs(objectsDir: string, except: ReadonlySet<string> = new Set()): void {
  fs.mkdirSync(objectsDir, { recursive: true });
  for (const prefix of PREFIXES) {
    if (except.has(prefix)) continue;
    try {
      fs.mkdirSync(path.join(objectsDir, prefix));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * The stored size of the object at `file` if present, undefined if not. A present object gets its
 * mtime refreshed: gc spares objects younger than its grace period, so an add that reuses an
 * object keeps it alive until the add's record names it.
 */
export function touchObject(file: string): number | undefined {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) return undefined;
  const now = new Date();
  try {
    fs.utimesSync(file, now, now);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // gc took it just now
    throw err;
  }
  return st.size;
}

/**
 * Writes `compressed` to a temporary file in `tmpDir` and renames it to `final`: a reader or a
 * `kill -9` sees the whole object or none (`hint` names the temporary file: threads give their
 * own). An object already at `final` (identical bytes: the name is their digest) is replaced.
 * Not synced here: the store syncs its file system once before an image record names the object
 * (ImageStore.commitImage). (Starting each object's writeback early with sync_file_range was
 * measured: it shortened that final sync by ~120 ms on the Debian tree but cost the writer threads
 * ~0.4 s of CPU, a loss on 2 cores.)
 */
export function publishObject(tmpDir: string, compressed: Uint8Array, final: string, hint = 'obj'): void {
  const tmp = tempName(tmpDir, hint);
  const fd = fs.openSync(tmp, 'wx', 0o444);
  try {
    let done = 0;
    while (done < compressed.length) done += fs.writeSync(fd, compressed, done, compressed.length - done);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, final);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    fs.mkdirSync(path.dirname(final), { recursive: true });
    fs.renameSync(tmp, final);
  }
}
