// The tools root: where the partitioning, encryption and file-system programs run from. As in
// Dominator's installer (its parted, cryptsetup and mkfs run `chroot tmpRoot`), our sfdisk and
// partx (for its parted), cryptsetup and mkfs.* run chrooted in the tools
// image unpacked at --tmp-root, or in the image being installed when no tools-imagename names
// another, so the file systems get exactly the features that image's tools make. A program the
// root lacks runs from the installer's own system instead, and the log says so. blkdiscard and the
// read-only probes (blockdev, blkid) always run on the installer, as Dominator's blkdiscard does.
import fs from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../image/model/manifest.ts';
import type { Executor } from '../system/executor.ts';
import type { RunOptions, RunResult } from '../system/run.ts';
import type { StoragePlan } from './plan.ts';

/** What one path inside a root is, without following a final symlink (an lstat). */
export type RootNode =
  | { kind: 'dir' }
  | { kind: 'file'; executable: boolean }
  | { kind: 'symlink'; target: string }
  | { kind: 'other' };

/** Looks up one absolute path inside the root, whose parents are real directories. */
export type RootLstat = (absPath: string) => RootNode | undefined;

const MAX_SYMLINKS = 40; // the kernel's limit

/**
 * What `absPath` is once resolved the way the kernel resolves it after chroot: every symlink,
 * absolute ones included, stays inside the root. Undefined when it does not exist (or loops).
 */
export function resolveInRoot(lstat: RootLstat, absPath: string): RootNode | undefined {
  let done: string[] = [];
  let todo = absPath.split('/').filter(Boolean);
  let node: RootNode = { kind: 'dir' };
  let hops = 0;
  while (todo.length) {
    const name = todo.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      done.pop();
      node = { kind: 'dir' };
      continue;
    }
    if (node.kind !== 'dir') return undefined;
    const next = lstat(`/${[...done, name].join('/')}`);
    if (!next) return undefined;
    if (next.kind === 'symlink') {
      if (++hops > MAX_SYMLINKS) return undefined;
      if (next.target.startsWith('/')) done = [];
      todo = [...next.target.split('/').filter(Boolean), ...todo];
      node = { kind: 'dir' }; // the link's directory, where a relative target continues
      continue;
    }
    done.push(name);
    node = next;
  }
  return node;
}

/** The installer's PATH (its absolute directories), where programs are looked for in a root. */
export function searchPath(env: string | undefined = process.env.PATH): string[] {
  const dirs = (env ?? '').split(':').filter((d) => d.startsWith('/'));
  return dirs.length ? dirs : ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
}

/** `program`'s path inside a root: the first PATH directory where it resolves to an executable file. */
export function findProgram(lstat: RootLstat, program: string, dirs: string[] = searchPath()): string | undefined {
  return dirs
    .map((d) => path.posix.join(d, program))
    .find((p) => {
      const node = resolveInRoot(lstat, p);
      return node?.kind === 'file' && node.executable;
    });
}

/** lstat inside a directory on this machine. */
export function directoryLstat(root: string): RootLstat {
  return (p) => {
    const full = path.join(root, p);
    const st = fs.lstatSync(full, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (st.isSymbolicLink()) return { kind: 'symlink', target: fs.readlinkSync(full) };
    if (st.isDirectory()) return { kind: 'dir' };
    if (st.isFile()) return { kind: 'file', executable: (st.mode & 0o111) !== 0 };
    return { kind: 'other' };
  };
}

/** lstat inside an image not unpacked yet, from its manifest (for a dry run). */
export function manifestLstat(manifest: Manifest): RootLstat {
  const byPath = new Map(manifest.entries.map((e) => [`/${e.path}`, e]));
  return (p) => {
    let e = byPath.get(p);
    if (e?.type === 'hardlink') e = byPath.get(`/${e.target}`);
    if (!e || e.type === 'hardlink') return undefined;
    if (e.type === 'symlink') return { kind: 'symlink', target: e.target };
    if (e.type === 'dir') return { kind: 'dir' };
    if (e.type === 'file') return { kind: 'file', executable: (e.mode & 0o111) !== 0 };
    return { kind: 'other' };
  };
}

/** Where the storage programs run from. */
export interface ToolsRoot {
  /** The directory chrooted into, with /dev, /proc, /sys and /tmp bound in. */
  dir: string;
  /** What it holds, for the log: "tools image debian/tools" or "image debian/v1". */
  what: string;
  /** The program's path inside `dir`, or undefined when the root lacks it. */
  find(program: string): string | undefined;
}

/**
 * A tools root whose programs are looked up with `lstat`; `onMissing` is told, once per program,
 * that the root lacks it and the installer's own runs instead.
 */
export function toolsRoot(
  dir: string,
  what: string,
  lstat: RootLstat,
  onMissing: (program: string, line: string) => void = () => {},
  dirs: string[] = searchPath(),
): ToolsRoot {
  const found = new Map<string, string | undefined>();
  return {
    dir: path.resolve(dir),
    what,
    find(program) {
      if (found.has(program)) return found.get(program);
      const p = findProgram(lstat, program, dirs);
      found.set(program, p);
      if (!p) onMissing(program, `${what} at ${dir} has no ${program}: running the installer's own ${program}`);
      return p;
    },
  };
}

/**
 * Runs `program` chrooted in the tools root when it carries it, else the installer's own. An
 * argument naming a file inside the root (the key file) is given as its path inside the root.
 */
export async function runTool(
  exec: Executor,
  tools: ToolsRoot | undefined,
  program: string,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const inRoot = tools?.find(program);
  if (!tools || !inRoot) return exec.change(program, args, opts);
  const prefix = `${tools.dir}/`;
  const mapped = args.map((a) => (a.startsWith(prefix) ? `/${a.slice(prefix.length)}` : a));
  return exec.changeIn(tools.dir, inRoot, mapped, opts);
}

/** The programs a storage plan runs from the tools root. */
export function toolPrograms(plan: StoragePlan): string[] {
  return [
    'sfdisk',
    'partx',
    ...(plan.encrypt ? ['cryptsetup'] : []),
    ...new Set(plan.fileSystems.map((f) => `mkfs.${f.type}`)),
  ];
}
