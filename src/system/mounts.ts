// What is mounted where, from /proc/self/mounts (whose paths escape space, tab, newline and
// backslash as octal, e.g. "\040").
import fs from 'node:fs';
import path from 'node:path';
import type { Executor } from './executor.ts';

export function mountPoints(): string[] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) =>
      line.split(' ')[1].replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))),
    );
}

/** Mount points strictly below `dir`, outermost first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return mountPoints().filter((m) => m.startsWith(prefix));
}

/** What a chroot into an unpacked image needs of the host. */
export const CHROOT_MOUNTS = ['dev', 'proc', 'sys', 'tmp'];

/**
 * Bind-mounts the host's /dev, /proc, /sys and /tmp into `root` (skipping ones already mounted),
 * through the Executor (a dry run shows them). A mount point must be a real directory: an image
 * whose `tmp` is a symlink to `/etc` must not get the host's /tmp mounted over the host's /etc.
 */
export async function bindMounts(
  exec: Executor,
  root: string,
  onMounted: (dir: string) => void = () => {},
): Promise<void> {
  const mounted = new Set(mountPoints());
  for (const name of CHROOT_MOUNTS) {
    const target = path.join(path.resolve(root), name);
    if (mounted.has(target)) continue;
    const st = fs.lstatSync(target, { throwIfNoEntry: false });
    if (!st) await exec.act(`make the directory ${target}`, () => fs.mkdirSync(target));
    else if (!st.isDirectory())
      throw new Error(
        `not bind-mounting /${name}: '${target}' is a ${st.isSymbolicLink() ? 'symlink' : 'non-directory'} in the image; use --no-mounts`,
      );
    await exec.change('mount', ['--bind', `/${name}`, target]);
    if (!exec.dryRun) onMounted(target);
  }
}

/** Undoes bindMounts (lazily, so a shell still inside does not block it). */
export async function unbindMounts(exec: Executor, root: string): Promise<void> {
  const mounted = new Set(mountPoints());
  for (const name of [...CHROOT_MOUNTS].reverse()) {
    const target = path.join(path.resolve(root), name);
    if (mounted.has(target)) await exec.change('umount', ['-l', target]);
  }
}
