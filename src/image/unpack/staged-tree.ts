// Objects from a tree this installer unpacked from the same manifest minutes earlier: its copy of
// the image in memory (tmpfs). Every object in it was verified against its digest on arrival and
// nothing else writes there, so it is read by path and not hashed a second time, which roughly
// halves the cost of the install onto the drives. A file whose size no longer matches is not
// used (the unpacker then fetches it from the network, verified as always).
import path from 'node:path';
import type { Digest } from '../model/digest.ts';
import type { ObjectFinder } from '../model/objects.ts';
import { readExactly } from './file-ops.ts';

export interface StagedTreeStats {
  objectsRead: number;
  bytesRead: number;
}

/**
 * A source of files trusted to hold exactly an object when they are regular files of its size
 * (verified when they were written, untouched since). The unpacker's writer threads copy them
 * (unpack.ts), reading each with O_NOFOLLOW and checking its size; objects whose file is not usable
 * come from the next source.
 */
export interface TrustedFiles {
  trustedFiles(wanted: Map<Digest, { size: number; paths: string[] }>): Map<Digest, string>;
}

export function stagedTreeFinder(root: string): ObjectFinder & TrustedFiles & { stats: StagedTreeStats } {
  const stats: StagedTreeStats = { objectsRead: 0, bytesRead: 0 };
  let buf: Buffer = Buffer.allocUnsafe(1024 * 1024);
  return {
    stats,
    trustedFiles(wanted) {
      return new Map([...wanted].map(([digest, { paths }]) => [digest, path.join(root, paths[0])]));
    },
    async find(wanted, onObject) {
      for (const [digest, { size, paths }] of wanted) {
        const read = readExactly(path.join(root, paths[0]), size, buf);
        if (!read) continue;
        buf = read.buf;
        stats.objectsRead++;
        stats.bytesRead += size;
        // A copy: the read buffer is reused for the next file.
        await onObject(digest, Buffer.from(read.content));
      }
    },
  };
}
