// An in-memory file-system tree that image sources (directories, tar archives, OCI layers) fill in
// any order, and that emits a valid manifest: parents before children, names sorted, one full entry
// per inode and `hardlink` entries for its other paths. Layers are applied by setting and removing
// paths in order (OCI whiteouts), so the same builder serves every source.
import type { Digest } from './digest.ts';
import { MANIFEST_FORMAT, type Entry, type Manifest } from './manifest.ts';

/** What an inode is, independent of the paths that name it. */
export type Inode =
  | { type: 'dir'; meta: Meta }
  | { type: 'file'; meta: Meta; size: number; digest?: Digest; sparse?: true }
  | { type: 'symlink'; meta: Meta; target: string }
  | { type: 'char' | 'block'; meta: Meta; rdev: { major: number; minor: number } }
  | { type: 'fifo'; meta: Meta };

export interface Meta {
  mode: number;
  uid: number;
  gid: number;
  mtime: string;
  xattrs?: Record<string, string>;
}

interface Node {
  inode: Inode;
  children?: Map<string, Node>; // directories only
}

/** Raw xattr values as the manifest keeps them: names sorted, values base64; none -> undefined. */
export function encodeXattrs(raw: Record<string, Buffer>): Record<string, string> | undefined {
  const names = Object.keys(raw).sort();
  if (!names.length) return undefined;
  const out: Record<string, string> = {};
  for (const name of names) out[name] = raw[name].toString('base64');
  return out;
}

export class TreeError extends Error {
  override name = 'TreeError';
}

/** Normalises a path from an archive ("./a//b/", "/a/b") to "a/b"; refuses ".." components. */
export function normalizeArchivePath(raw: string): string {
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..')
      throw new TreeError(`archive member '${raw}' has a '..' component: refusing a path that could escape the image`);
    parts.push(part);
  }
  return parts.length ? parts.join('/') : '.';
}

const IMPLIED_DIR: Meta = { mode: 0o755, uid: 0, gid: 0, mtime: '0.000000000' };

export class TreeBuilder {
  private readonly root: Node = { inode: { type: 'dir', meta: { ...IMPLIED_DIR } }, children: new Map() };

  /** Sets the inode at `path` (normalised), creating missing parent directories. */
  set(path: string, inode: Inode): void {
    if (path === '.') {
      if (inode.type !== 'dir') throw new TreeError('the image root must be a directory');
      this.root.inode = inode;
      return;
    }
    const { parent, name } = this.parentOf(path, true)!;
    const existing = parent.children!.get(name);
    if (existing && existing.inode.type === 'dir' && inode.type === 'dir') {
      existing.inode = inode; // a directory entry over a directory keeps its contents (tar, layers)
      return;
    }
    parent.children!.set(name, inode.type === 'dir' ? { inode, children: new Map() } : { inode });
  }

  get(path: string): Inode | undefined {
    if (path === '.') return this.root.inode;
    const found = this.parentOf(path, false);
    return found?.parent.children?.get(found.name)?.inode;
  }

  /** Removes `path` and everything under it; a missing path is not an error (whiteouts). */
  remove(path: string): void {
    const found = this.parentOf(path, false);
    found?.parent.children?.delete(found.name);
  }

  /** Empties a directory but keeps it (an OCI opaque whiteout). */
  clearDir(path: string): void {
    const node = this.node(path);
    if (node?.children) node.children.clear();
  }

  private node(path: string): Node | undefined {
    if (path === '.') return this.root;
    const found = this.parentOf(path, false);
    return found?.parent.children?.get(found.name);
  }

  private parentOf(path: string, create: boolean): { parent: Node; name: string } | undefined {
    const parts = path.split('/');
    const name = parts.pop()!;
    let dir = this.root;
    for (const part of parts) {
      let next = dir.children!.get(part);
      if (!next?.children) {
        if (!create) return undefined;
        if (next?.inode.type === 'symlink') {
          // tar would write through the link; an image holds no path under a symlink. Say so
          // rather than silently turning the link into a directory.
          const at = path
            .split('/')
            .slice(0, parts.indexOf(part) + 1)
            .join('/');
          throw new TreeError(
            `'${path}' lies under '${at}', which is a symlink to '${next.inode.target}' in the same source: an image cannot hold both; put the file under the link's target instead`,
          );
        }
        // Another non-directory in the way is replaced by a directory, as layer application does.
        next = { inode: { type: 'dir', meta: { ...IMPLIED_DIR } }, children: new Map() };
        dir.children!.set(part, next);
      }
      dir = next;
    }
    return { parent: dir, name };
  }

  /** Emits the manifest: depth-first, names in byte order, hard links after their first path. */
  toManifest(): Manifest {
    const entries: Entry[] = [];
    const firstPath = new Map<Inode, string>();
    const visit = (path: string, node: Node) => {
      const seen = firstPath.get(node.inode);
      if (seen !== undefined && node.inode.type !== 'dir') {
        entries.push({ path, type: 'hardlink', target: seen });
      } else {
        firstPath.set(node.inode, path);
        entries.push(toEntry(path, node.inode));
      }
      if (node.children) {
        const names = [...node.children.keys()].sort(compareBytes);
        for (const name of names) visit(path === '.' ? name : `${path}/${name}`, node.children.get(name)!);
      }
    };
    visit('.', this.root);
    return { format: MANIFEST_FORMAT, entries };
  }
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function toEntry(path: string, inode: Inode): Entry {
  // Key order is fixed (path first) so that equal trees encode to equal bytes.
  const { mode, uid, gid, mtime, xattrs } = inode.meta;
  const meta = { mode, uid, gid, mtime, ...(xattrs && Object.keys(xattrs).length ? { xattrs } : {}) };
  switch (inode.type) {
    case 'dir':
    case 'fifo':
      return { path, type: inode.type, ...meta };
    case 'file':
      return {
        path,
        type: 'file',
        ...meta,
        size: inode.size,
        ...(inode.digest ? { digest: inode.digest } : {}),
        ...(inode.sparse ? { sparse: true as const } : {}),
      };
    case 'symlink':
      return { path, type: 'symlink', ...meta, target: inode.target };
    case 'char':
    case 'block':
      return { path, type: inode.type, ...meta, rdev: inode.rdev };
  }
}
