// Reads a directory tree into a TreeBuilder, storing file contents as it goes. Owners, modes,
// nanosecond mtimes, xattrs, device numbers and hard links are taken from the file system as they
// are; sparse files are flagged so unpack can recreate their holes. Like `tar --one-file-system`,
// it does not descend into other mounted file systems (a chroot's /proc, say): their mount points
// are kept as empty directories. This thread walks the tree and reads metadata; file contents are
// read and stored on the ingest's threads.
import fs from 'node:fs';
import path from 'node:path';
import type { Ingest } from '../store/ingest.ts';
import { WHOLE_READ_LIMIT } from '../store/ingest.ts';
import { formatMtimeNs } from '../model/manifest.ts';
import { encodeXattrs, TreeBuilder, type Inode, type Meta } from '../model/tree.ts';
import { getXattrs, splitDev } from '../../system/libc.ts';

export interface PackWarnings {
  warn(message: string): void;
}

export async function packDirectory(root: string, ingest: Ingest, log: PackWarnings): Promise<TreeBuilder> {
  const tree = new TreeBuilder();
  const rootStat = fs.lstatSync(root, { bigint: true });
  if (!rootStat.isDirectory()) throw new Error(`'${root}' is not a directory`);
  const byInode = new Map<string, Inode>(); // "dev:ino" of multiply-linked files -> their inode

  const visit = async (rel: string, st: fs.BigIntStats): Promise<void> => {
    const abs = rel === '.' ? root : path.join(root, rel);
    const key = `${st.dev}:${st.ino}`;
    if (!st.isDirectory() && st.nlink > 1n) {
      const shared = byInode.get(key);
      if (shared) {
        tree.set(rel, shared);
        return;
      }
    }
    const inode = await readInode(abs, st, ingest);
    if (!inode) {
      log.warn(`skipping socket '${rel}': sockets cannot be stored in an image`);
      return;
    }
    tree.set(rel, inode);
    if (!st.isDirectory() && st.nlink > 1n) byInode.set(key, inode);
    if (!st.isDirectory()) return;
    if (rel !== '.' && st.dev !== rootStat.dev) {
      log.warn(`not descending into '${rel}': another file system is mounted there`);
      return;
    }
    const names = fs
      .readdirSync(abs, { encoding: 'buffer' })
      .sort(Buffer.compare)
      .map((raw) => utf8(raw, rel));
    for (const name of names) {
      const childRel = rel === '.' ? name : `${rel}/${name}`;
      await visit(childRel, fs.lstatSync(path.join(root, childRel), { bigint: true }));
    }
  };
  await visit('.', rootStat);
  return tree;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Manifests are JSON: a name (or link target) that is not UTF-8 is refused, clearly. */
function utf8(raw: Buffer, where: string): string {
  try {
    return strictUtf8.decode(raw);
  } catch {
    throw new Error(
      `a name in '${where}' is not valid UTF-8 (${JSON.stringify(raw.toString('latin1'))}): rename it, e.g. with convmv, before adding the tree`,
    );
  }
}

function metaOf(abs: string, st: fs.BigIntStats): Meta {
  const meta: Meta = {
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: formatMtimeNs(st.mtimeNs),
  };
  const xattrs = encodeXattrs(getXattrs(abs));
  if (xattrs) meta.xattrs = xattrs;
  return meta;
}

async function readInode(abs: string, st: fs.BigIntStats, ingest: Ingest): Promise<Inode | undefined> {
  const meta = metaOf(abs, st);
  if (st.isDirectory()) return { type: 'dir', meta };
  if (st.isSymbolicLink())
    return { type: 'symlink', meta, target: utf8(fs.readlinkSync(abs, { encoding: 'buffer' }), abs) };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    return { type: st.isCharacterDevice() ? 'char' : 'block', meta, rdev: splitDev(st.rdev) };
  }
  if (st.isFIFO()) return { type: 'fifo', meta };
  if (!st.isFile()) return undefined;
  const size = Number(st.size);
  if (size === 0) return { type: 'file', meta, size: 0 };
  const sparse = st.blocks * 512n < st.size ? ({ sparse: true } as const) : {};
  if (size <= WHOLE_READ_LIMIT) {
    // Read, hashed and stored on the ingest's threads; the digest is filled in once stored, before
    // ingest.finish() resolves (and so before the manifest is made).
    const inode: Inode = { type: 'file', meta, size, ...sparse };
    await ingest.addFile(abs, size, (digest) => {
      inode.digest = digest;
    });
    return inode;
  }
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const stored = await ingest.addStream(fs.createReadStream('', { fd, autoClose: false }));
    if (stored.size !== size) throw new Error(`'${abs}' changed size while being read`);
    return { type: 'file', meta, size, digest: stored.digest, ...sparse };
  } finally {
    fs.closeSync(fd);
  }
}
