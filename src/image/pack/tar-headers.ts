// The fields of tar headers, decoded strictly: ustar, GNU and pax headers, octal and base-256
// numbers, names as bytes (UTF-8 when valid), pax times to the nanosecond and xattrs as the raw
// bytes they are (tar-reader.ts reads the archive; this reads what one header says).

const BLOCK = 512;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export class TarError extends Error {
  override name = 'TarError';
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  D: 'dir',
  '6': 'fifo',
};

export function entryType(typeflag: string, path: string): TarEntryType {
  const type = TYPES[typeflag] ?? 'other';
  return type === 'file' && path.endsWith('/') ? 'dir' : type; // v7 archives mark directories by a trailing slash
}

/** The content of the current member: read by the consumer, or skipped when it moves on. */
export function parseHeader(block: Buffer, offset: number) {
  verifyChecksum(block, offset);
  const magic = block.toString('latin1', 257, 263);
  const field = (start: number, len: number, name: string) =>
    parseNumber(block.subarray(start, start + len), name, offset);
  let name = cString(block.subarray(0, 100));
  // Only POSIX ustar has a name prefix; GNU keeps times there instead.
  if (magic === 'ustar\0' && block[345] !== 0)
    name = Buffer.concat([cString(block.subarray(345, 500)), Buffer.from('/'), name]);
  const ustar = magic.startsWith('ustar');
  return {
    offset,
    name,
    linkname: cString(block.subarray(157, 257)),
    typeflag: String.fromCharCode(block[156]),
    mode: field(100, 8, 'mode'),
    uid: field(108, 8, 'uid'),
    gid: field(116, 8, 'gid'),
    size: field(124, 12, 'size'),
    mtime: field(136, 12, 'mtime'),
    devmajor: ustar ? field(329, 8, 'devmajor') : 0n,
    devminor: ustar ? field(337, 8, 'devminor') : 0n,
  };
}

export function verifyChecksum(block: Buffer, offset: number): void {
  const text = block
    .toString('latin1', 148, 156)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  const stored = /^[0-7]+$/.test(text) ? BigInt(`0o${text}`) : -1n;
  let unsigned = 0;
  let signed = 0; // some old tars summed signed chars
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== BigInt(unsigned) && stored !== BigInt(signed)) {
    const shown = stored < 0n ? JSON.stringify(text) : String(stored);
    throw new TarError(
      `bad tar header checksum at byte ${offset} (stored ${shown}, computed ${unsigned}): the archive is corrupt or not a tar archive`,
    );
  }
}

/** An octal field, or a GNU base-256 one (first byte's high bit set, two's complement). */
export function parseNumber(field: Buffer, name: string, offset: number): bigint {
  if (field[0] & 0x80) {
    let value = BigInt(field[0] & 0x7f) - (field[0] & 0x40 ? 0x80n : 0n);
    for (let i = 1; i < field.length; i++) value = (value << 8n) | BigInt(field[i]);
    return value;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0n;
  if (!/^[0-7]+$/.test(text))
    throw new TarError(
      `tar header at byte ${offset} has an invalid ${name} field ${JSON.stringify(text)}: the archive is corrupt`,
    );
  return BigInt(`0o${text}`);
}

export function toSafeNumber(value: bigint, field: string, path: string): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new TarError(`tar member '${path}' has an out-of-range ${field} ${value}`);
  return Number(value);
}

export function cString(bytes: Buffer): Buffer {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

export function decodeName(bytes: Buffer, offset: number, what: string, memberName: Buffer): string {
  if (bytes.includes(0)) {
    throw new TarError(
      `tar member ${JSON.stringify(memberName.toString('utf8'))} (header at byte ${offset}) has a NUL byte in its ${what}: the archive is corrupt`,
    );
  }
  try {
    return utf8.decode(bytes);
  } catch {
    const shown = JSON.stringify(memberName.toString('utf8')); // lossy, for the message only
    throw new TarError(
      `tar member ${shown} (header at byte ${offset}) has a ${what} that is not valid UTF-8: rename it to UTF-8 (e.g. with convmv) and re-create the archive`,
    );
  }
}

// ---- pax -------------------------------------------------------------------------------------------

/** Records are "LEN KEY=VALUE\n" with LEN counting bytes, so values are sliced, never decoded. */
export function parsePax(data: Buffer, offset: number): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  const bad = (why: string) =>
    new TarError(`pax header at byte ${offset} is malformed: ${why}; the archive is corrupt`);
  while (pos < data.length && data[pos] !== 0) {
    const space = data.indexOf(0x20, pos);
    const lenText = space < 0 ? '' : data.toString('latin1', pos, space);
    if (!/^\d+$/.test(lenText)) throw bad(`record at ${pos} has no length`);
    const len = Number(lenText);
    if (pos + len > data.length || data[pos + len - 1] !== 0x0a || len <= space - pos + 1)
      throw bad(`record at ${pos} has a wrong length ${len}`);
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw bad(`record at ${pos} has no key`);
    records.set(decodeName(record.subarray(0, eq), offset, 'pax key', record.subarray(0, eq)), record.subarray(eq + 1));
    pos += len;
  }
  return records;
}

export function paxInteger(value: Buffer, key: string, path: string): bigint {
  const text = value.toString('latin1');
  if (!/^\d+$/.test(text)) throw new TarError(`tar member '${path}' has an invalid pax ${key} ${JSON.stringify(text)}`);
  return BigInt(text);
}

/** "S[.F]" with up to nanosecond (or finer, truncated) precision; negative times normalised like timespec. */
export function paxTime(value: Buffer, path: string): { sec: bigint; nsec: number } {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value.toString('latin1'));
  if (!m)
    throw new TarError(`tar member '${path}' has an invalid pax mtime ${JSON.stringify(value.toString('latin1'))}`);
  const whole = BigInt(m[2]);
  const frac = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  if (m[1] !== '-') return { sec: whole, nsec: frac };
  return frac === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1n, nsec: 1_000_000_000 - frac };
}

/** SCHILY.xattr.NAME carries raw bytes; LIBARCHIVE.xattr.NAME a %-encoded name and base64 value. */
export function paxXattrs(pax: Map<string, Buffer>, path: string): Record<string, Buffer> {
  const xattrs: Record<string, Buffer> = {};
  for (const [key, value] of pax) {
    if (key.startsWith('SCHILY.xattr.')) {
      xattrs[key.slice('SCHILY.xattr.'.length)] = Buffer.from(value);
    } else if (key.startsWith('LIBARCHIVE.xattr.')) {
      const encoded = key.slice('LIBARCHIVE.xattr.'.length);
      const nameBytes = Buffer.from(
        encoded.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
        'latin1',
      );
      const name = decodeName(nameBytes, 0, `xattr name in member '${path}'`, nameBytes);
      xattrs[name] = Buffer.from(value.toString('latin1'), 'base64');
    }
  }
  return xattrs;
}
