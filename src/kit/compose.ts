// A node group's image: its OS kit's image with its components' layers on top, as a pure function
// of manifests, so composing is only writing a new manifest (every object is shared). Later layers
// win at the same path; a directory present below keeps its metadata (a layer adds content, it
// does not reshape /etc); a file or link replacing a directory replaces the whole subtree; hard
// links stay within the layer that made them.
import type { Digest } from '../image/model/digest.ts';
import type { Entry, Manifest } from '../image/model/manifest.ts';
import { validateTree } from '../image/model/manifest.ts';
import { type Inode, TreeBuilder } from '../image/model/tree.ts';

function inodeOf(e: Exclude<Entry, { type: 'hardlink' }>): Inode {
  const meta = { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, ...(e.xattrs ? { xattrs: e.xattrs } : {}) };
  switch (e.type) {
    case 'dir':
      return { type: 'dir', meta };
    case 'file':
      return {
        type: 'file',
        meta,
        size: e.size,
        ...(e.digest ? { digest: e.digest as Digest } : {}),
        ...(e.sparse ? { sparse: true as const } : {}),
      };
    case 'symlink':
      return { type: 'symlink', meta, target: e.target };
    case 'char':
    case 'block':
      return { type: e.type, meta, rdev: e.rdev };
    case 'fifo':
      return { type: 'fifo', meta };
  }
}

export function overlay(base: Manifest, layers: Manifest[], source = 'composed image'): Manifest {
  const tree = new TreeBuilder();
  for (const [index, manifest] of [base, ...layers].entries()) {
    const inodes = new Map<string, Inode>();
    for (const e of manifest.entries) {
      if (e.type === 'hardlink') {
        const target = inodes.get(e.target);
        if (target) tree.set(e.path, target);
        continue;
      }
      const inode = inodeOf(e);
      inodes.set(e.path, inode);
      const below = tree.get(e.path);
      if (index > 0 && below?.type === 'dir' && inode.type === 'dir') continue;
      if (below?.type === 'dir' && inode.type !== 'dir') tree.remove(e.path);
      tree.set(e.path, inode);
    }
  }
  const out = tree.toManifest();
  validateTree(out, source);
  return out;
}
