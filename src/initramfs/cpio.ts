// The "newc" cpio format the kernel unpacks an initramfs from (Documentation/driver-api/
// early-userspace/buffer-format.rst): per entry a 110-byte ASCII header of hex fields, the name
// with its NUL, padding to 4 bytes, the data, padding to 4 bytes; a "TRAILER!!!" entry ends it.
// Entries are written in the order given, so parents must come before their children.

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char' | 'block'; path: string; major: number; minor: number; mode?: number };

const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000, char: 0o020000, block: 0o060000 } as const;
const DEFAULT_MODE = { dir: 0o755, file: 0o644, symlink: 0o777, char: 0o600, block: 0o600 } as const;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(
  ino: number,
  mode: number,
  nlink: number,
  size: number,
  rdevMajor: number,
  rdevMinor: number,
  nameSize: number,
  mtime: number,
): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return `070701${[ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdevMajor, rdevMinor, nameSize, 0].map(hex8).join('')}`;
}

/** The archive as chunks (no copy of file data); owner root, one fixed mtime for reproducibility. */
export function cpioNewc(entries: CpioEntry[], mtime = 0): Buffer[] {
  const out: Buffer[] = [];
  let ino = 1;
  const push = (hdr: string, name: string, data?: Uint8Array) => {
    const nameBytes = Buffer.from(`${name}\0`);
    const head = Buffer.concat([Buffer.from(hdr, 'ascii'), nameBytes, Buffer.alloc(pad4(110 + nameBytes.length))]);
    out.push(head);
    if (data?.length) {
      out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      const p = pad4(data.length);
      if (p) out.push(Buffer.alloc(p));
    }
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (!name || name.split('/').some((c) => c === '..' || c === ''))
      throw new Error(`cpio: bad entry path '${e.path}'`);
    const nameSize = Buffer.byteLength(name) + 1;
    const perm = (('mode' in e ? e.mode : undefined) ?? DEFAULT_MODE[e.type]) & 0o7777;
    const mode = TYPE_BITS[e.type] | perm;
    if (e.type === 'file') push(header(ino++, mode, 1, e.data.length, 0, 0, nameSize, mtime), name, e.data);
    else if (e.type === 'symlink') {
      const target = Buffer.from(e.target);
      push(header(ino++, mode, 1, target.length, 0, 0, nameSize, mtime), name, target);
    } else if (e.type === 'dir') push(header(ino++, mode, 2, 0, 0, 0, nameSize, mtime), name);
    else push(header(ino++, mode, 1, 0, e.major, e.minor, nameSize, mtime), name);
  }
  push(header(0, 0, 1, 0, 0, 0, 11, 0), 'TRAILER!!!');
  return out;
}
