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

/**
 * The stored size of the object at `file` if present, undefined if not. A present object gets its
 * mtime refreshed: gc spares objects younger than its grace period, so an add that reuses an
 * object keeps it alive until the add's record names it.
 */
export function touchObject(file: string): number | undefined {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) return undefined;
  const now = new Date();
  fs.utimesSync(file, now, now);
  return st.size;
}

/**
 * Writes `compressed` to a temporary file in `tmpDir` and renames it to `final`: a reader or a
 * `kill -9` sees the whole object or none (`hint` names the temporary file: threads give their
 * own). Not synced here: the store syncs its file system once
 * before an image record names the object (ImageStore.commitImage).
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
