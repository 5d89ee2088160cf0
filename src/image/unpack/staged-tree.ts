// Objects from a tree this installer unpacked from the same manifest minutes earlier: its copy of
// the image in memory (tmpfs). Every object in it was verified against its digest on arrival and
// nothing else writes there, so it is read by path and not hashed a second time, which roughly
// halves the cost of the install onto the drives. A file whose size no longer matches is not
// used (the unpacker then fetches it from the network, verified as always).
import fs from 'node:fs';
import path from 'node:path';
import type { ObjectFinder } from '../model/objects.ts';

export interface StagedTreeStats {
  objectsRead: number;
  bytesRead: number;
}

export function stagedTreeFinder(root: string): ObjectFinder & { stats: StagedTreeStats } {
  const stats: StagedTreeStats = { objectsRead: 0, bytesRead: 0 };
  return {
    stats,
    async find(wanted, onObject) {
      for (const [digest, { size, paths }] of wanted) {
        const content = readExactly(path.join(root, paths[0]), size);
        if (!content) continue;
        stats.objectsRead++;
        stats.bytesRead += size;
        await onObject(digest, content);
      }
    },
  };
}

/** The file's bytes if it is a regular file (not a symlink) of exactly `size` bytes. */
function readExactly(file: string, size: number): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size !== size) return undefined;
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, off);
      if (n === 0) return undefined;
      off += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}
