// Atomic file creation: readers see no file or the whole file, never a torn one, even when the
// writer is killed (-9) part way. Temporary files live in the same directory, so link(2) and
// rename(2) stay on one file system.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

// A random per-process prefix plus a counter: unique without a random draw per file.
const processTag = `${process.pid}.${randomBytes(4).toString('hex')}`;
let counter = 0;

export function tempName(dir: string, hint = 'tmp'): string {
  return path.join(dir, `.${hint}.${processTag}.${counter++}`);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeDurable(tmp: string, data: string | Uint8Array, mode: number): void {
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates `file` with `data` only if it does not exist yet (link(2) refuses an existing name, so two
 * writers racing for one name cannot both win). Returns false when the name was taken.
 */
export function createFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): boolean {
  const dir = path.dirname(file);
  const tmp = tempName(dir, path.basename(file));
  try {
    writeDurable(tmp, data, mode);
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncDir(dir);
  return true;
}

/** Writes `file` whole or not at all, replacing what was there (temp file, fsync, rename). */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = path.dirname(file);
  const tmp = tempName(dir, path.basename(file));
  try {
    writeDurable(tmp, data, mode);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncDir(dir);
}
