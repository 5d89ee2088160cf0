// File names from TFTP requests, and opening them inside the server's root. A request is
// unauthenticated input from anyone on the network, so a name is normalised and checked before it
// reaches the file system or the virtual-file hook, and what is finally opened is checked again
// after every symlink has been resolved: the name alone cannot be trusted to stay in the root when
// the root itself holds symlinks.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODE } from '../../protocols/tftp/packets.ts';

/** A request refused with a TFTP error code; the message goes to the client and the log. */
export class TftpRefusal extends Error {
  override name = 'TftpRefusal';
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

const denied = (why: string) => new TftpRefusal(ERROR_CODE.accessViolation, why);
const notFound = () => new TftpRefusal(ERROR_CODE.fileNotFound, 'file not found');

/**
 * The name relative to the root, or a refusal. Backslashes count as separators (Windows-built
 * boot loaders send them, and dnsmasq treats them so too); a leading '/' is stripped, as tftp-hpa
 * does with -s, because PXE configurations and GRUB routinely ask for "/boot/..." meaning the
 * TFTP root; '.' and empty components are dropped; '..' anywhere is refused outright rather than
 * resolved, so no spelling of a name climbs out of the root.
 */
export function normaliseName(raw: string): string {
  // The decoder turns bytes that are not UTF-8 into U+FFFD: such a name cannot be the one asked for.
  if (raw.includes('\uFFFD')) throw denied('file name is not valid UTF-8');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\x00-\x1f\x7f]/.test(raw)) throw denied('file name contains control characters');
  const parts = raw
    .replaceAll('\\', '/')
    .split('/')
    .filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw denied("file name has a '..' component");
  if (parts.length === 0) throw denied('file name names the root directory');
  return parts.join('/');
}

function inside(real: string, root: string): boolean {
  return root === '/' || real === root || real.startsWith(`${root}/`);
}

/** Errors that mean "there is no such file here" rather than "you may not have it". */
const MISSING = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP']);

function refusalFor(err: unknown): TftpRefusal {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (MISSING.has(code)) return notFound();
  if (code === 'EACCES' || code === 'EPERM') return denied('permission denied');
  return new TftpRefusal(ERROR_CODE.notDefined, `cannot open the file (${code || (err as Error).message})`);
}

export interface OpenedFile {
  handle: fsp.FileHandle;
  size: number;
  /** What fstat said of the descriptor (its identity for the file cache). */
  stat: fs.Stats;
  /** The path opened, every symlink resolved. */
  real: string;
}

/**
 * Opens `file` for reading, a regular file only. With `root`, the file must resolve (symlinks
 * followed) to a path inside it and be readable by everyone, as tftp-hpa and dnsmasq require: the
 * server runs as root, and a 0600 file that lands in the TFTP directory by mistake (a key, a
 * password hash) must not be handed to whoever asks. Without `root` (a path the trusted virtual-file
 * hook returned) only the regular-file check applies.
 */
export async function openFile(file: string, root?: string): Promise<OpenedFile> {
  let real: string;
  let st: fs.Stats;
  try {
    real = await fsp.realpath(file);
    if (root !== undefined && !inside(real, root)) throw denied('file resolves outside the TFTP root');
    st = await fsp.stat(real);
  } catch (err) {
    throw err instanceof TftpRefusal ? err : refusalFor(err);
  }
  // Checked before open: opening a FIFO blocks and opening a device can have side effects.
  if (!st.isFile()) throw denied('not a regular file');
  if (root !== undefined && !(st.mode & 0o004)) throw denied('file is not world-readable');
  let handle: fsp.FileHandle;
  try {
    // O_NOFOLLOW and O_NONBLOCK: if the last component was swapped for a symlink or a FIFO since
    // the checks above, the open fails or returns at once instead of following or hanging.
    const c = fs.constants;
    handle = await fsp.open(real, c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK | c.O_NOCTTY);
  } catch (err) {
    throw refusalFor(err);
  }
  try {
    const fst = await handle.stat();
    if (!fst.isFile() || fst.ino !== st.ino || fst.dev !== st.dev) throw denied('file changed while being opened');
    if (root !== undefined) {
      // A directory component swapped for a symlink after realpath() would have been followed by
      // open(): the kernel's own name for the descriptor says where it really is.
      const actual = await fsp.readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
      if (actual !== undefined && !inside(actual, root)) throw denied('file resolves outside the TFTP root');
    }
    return { handle, size: fst.size, stat: fst, real };
  } catch (err) {
    await handle.close();
    throw err instanceof TftpRefusal ? err : refusalFor(err);
  }
}

/** `name` (already normalised) under the root, opened with every check of openFile. */
export function openInRoot(root: string, name: string): Promise<OpenedFile> {
  return openFile(path.join(root, name), root);
}
