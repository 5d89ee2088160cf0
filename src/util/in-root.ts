// Writing into the new system's root without following its symlinks. The image may hold absolute
// symlinks (etc/fstab -> /etc/fstab) that would resolve against the installer's own file system:
// every parent component must be a real directory (made if missing) and a final symlink is
// replaced, never written through. Nothing else runs in the new root while the installer writes.
import fs from 'node:fs';
import path from 'node:path';

export class UnsafePathError extends Error {
  override name = 'UnsafePathError';
}

/** The absolute path of `rel` under `root`, its parent directories checked (and made, 0755). */
export function pathInRoot(root: string, rel: string): string {
  const parts = rel.split('/').filter(Boolean);
  if (parts.some((p) => p === '..' || p === '.'))
    throw new UnsafePathError(`'${rel}' is not a plain path below the new root`);
  let dir = path.resolve(root);
  for (const part of parts.slice(0, -1)) {
    dir = path.join(dir, part);
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st) fs.mkdirSync(dir, { mode: 0o755 });
    else if (!st.isDirectory())
      throw new UnsafePathError(
        `'${dir}' is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'} in the new root: not writing '${rel}' through it`,
      );
  }
  return path.join(dir, parts.at(-1) ?? '');
}

/** Writes a file in the new root, replacing whatever non-directory is at that path. */
export function writeInRoot(root: string, rel: string, data: string | Uint8Array, mode = 0o644): void {
  const file = pathInRoot(root, rel);
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (st?.isDirectory())
    throw new UnsafePathError(`'${file}' is a directory in the new root: cannot write a file there`);
  if (st) fs.rmSync(file);
  const fd = fs.openSync(
    file,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
    mode,
  );
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fchmodSync(fd, mode); // the umask must not weaken or widen what was asked
  } finally {
    fs.closeSync(fd);
  }
}

/** A directory in the new root (made with its parents if missing). */
export function mkdirInRoot(root: string, rel: string, mode = 0o755): string {
  const dir = pathInRoot(root, rel);
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (!st) fs.mkdirSync(dir, { mode });
  else if (!st.isDirectory())
    throw new UnsafePathError(`'${dir}' is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'} in the new root`);
  return dir;
}

/** Copies a host directory tree (regular files and directories only) into the new root. */
export function copyTreeInRoot(root: string, from: string, toRel: string): void {
  mkdirInRoot(root, toRel);
  for (const ent of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, ent.name);
    const rel = path.posix.join(toRel, ent.name);
    if (ent.isDirectory()) copyTreeInRoot(root, src, rel);
    else if (ent.isFile()) writeInRoot(root, rel, fs.readFileSync(src), 0o644);
  }
}
