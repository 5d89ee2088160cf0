// Our own streaming tar parser. We do not use tar-stream: it decodes pax values as UTF-8, which
// corrupts binary xattr values such as security.capability, and it loses nanosecond mtimes.
// Here pax records are sliced as bytes (their length prefix counts bytes), values stay Buffers
// until a field is known to be text, and every header is checked (checksum, UTF-8 names, sparse
// members we cannot reproduce) so that a bad archive fails loudly instead of giving a wrong image.
// Formats: v7, ustar, GNU (long names 'L'/'K', base-256 numbers) and pax ('x', 'g'). Input is a
// byte stream, or any ByteSource: pack-tar.ts reads uncompressed files by offset through one.
import { Readable } from 'node:stream';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarEntry {
  path: string;
  type: TarEntryType;
  /** The raw type flag ('0', '5', 'V', ...), for messages about 'other' entries. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: { sec: bigint; nsec: number };
  /** Bytes of content that follow the header (0 for links, directories and devices). */
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, Buffer>;
  /** Offsets in the (uncompressed) archive: of the first header of the member, and of its content. */
  headerOffset: number;
  dataOffset: number;
  /** Streams the content; call at most once, before asking for the next entry. */
  content(): Readable;
  /** Reads the whole content into memory; for contents known to be small. */
  readAll(): Promise<Buffer>;
}

export class TarError extends Error {
  override name = 'TarError';
}

const BLOCK = 512;
const CHUNK = 256 * 1024;
const MAX_META_BYTES = 64 * 1024 * 1024; // long names and pax headers are read whole
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads a tar archive from a byte stream (already decompressed). */
export function readTar(source: AsyncIterable<Uint8Array> | Readable): AsyncGenerator<TarEntry> {
  return parseArchive(new StreamSource(source));
}

/** Reads a tar archive from any byte source (pack-tar.ts reads files by offset through one). */
export function readTarSource(src: ByteSource): AsyncGenerator<TarEntry> {
  return parseArchive(src);
}

// ---- byte sources ----------------------------------------------------------------------------

export interface ByteSource {
  /** Bytes consumed so far. */
  readonly position: number;
  /** Up to `max` bytes, or null at the end. */
  read(max: number): Promise<Buffer | null>;
  /** Skips up to `n` bytes; returns how many were there. */
  skip(n: number): Promise<number>;
  close(): Promise<void>;
}

class StreamSource implements ByteSource {
  position = 0;
  private readonly iterator: AsyncIterator<Uint8Array>;
  private leftover: Buffer = Buffer.alloc(0);

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  async read(max: number): Promise<Buffer | null> {
    while (this.leftover.length === 0) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await this.iterator.next();
      } catch (err) {
        if (err instanceof TarError) throw err;
        throw new TarError(
          `could not read the archive at byte ${this.position}: ${(err as Error).message} (is it truncated or corrupt?)`,
        );
      }
      if (next.done) return null;
      const chunk = next.value;
      this.leftover = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    const out = this.leftover.subarray(0, max);
    this.leftover = this.leftover.subarray(out.length);
    this.position += out.length;
    return out;
  }

  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n) {
      const chunk = await this.read(Math.min(n - skipped, CHUNK));
      if (!chunk) break;
      skipped += chunk.length;
    }
    return skipped;
  }

  async close(): Promise<void> {
    await this.iterator.return?.(); // destroys a Readable, closing its file
  }
}

/** Exactly `n` bytes; null if the source ended before the first byte and `eofOk`. */
async function readExact(src: ByteSource, n: number, what: string, eofOk = false): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  let got = 0;
  while (got < n) {
    const chunk = await src.read(n - got);
    if (!chunk) {
      if (got === 0 && eofOk) return null;
      throw truncated(src, what);
    }
    parts.push(chunk);
    got += chunk.length;
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
}

function truncated(src: ByteSource, what: string): TarError {
  return new TarError(
    `the archive is truncated: it ends at byte ${src.position} in the middle of ${what}; fetch or re-create it completely`,
  );
}

async function skipExact(src: ByteSource, n: number, what: string): Promise<void> {
  if ((await src.skip(n)) < n) throw truncated(src, what);
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

// ---- archive structure -------------------------------------------------------------------------

async function* parseArchive(src: ByteSource): AsyncGenerator<TarEntry> {
  const globalPax = new Map<string, Buffer>();
  try {
    for (;;) {
      const member = await readMember(src, globalPax);
      if (!member) return;
      yield member.entry;
      await member.finish();
    }
  } finally {
    await src.close();
  }
}

type RawHeader = ReturnType<typeof parseHeader>;

/** Reads headers up to and including the next real member; null at the end of the archive. */
async function readMember(
  src: ByteSource,
  globalPax: Map<string, Buffer>,
): Promise<{ entry: TarEntry; finish(): Promise<void> } | null> {
  const headerOffset = src.position;
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  let pax = new Map<string, Buffer>();
  for (;;) {
    const offset = src.position;
    const block = await readExact(src, BLOCK, 'a header', offset === headerOffset);
    if (!block && offset === 0) throw new TarError('the archive is empty: expected at least the end-of-archive marker');
    // Without the two zero blocks we cannot tell a complete archive from one cut at a member boundary.
    if (!block)
      throw new TarError(
        `the archive is truncated: it ends at byte ${offset} without the end-of-archive marker; fetch or re-create it completely`,
      );
    if (block.every((b) => b === 0)) {
      await readExact(src, BLOCK, 'the end-of-archive marker', true); // the second zero block, if any
      return null;
    }
    const h = parseHeader(block, offset);
    switch (h.typeflag) {
      case 'L':
        longName = await readMeta(src, h, 'GNU long name');
        continue;
      case 'K':
        longLink = await readMeta(src, h, 'GNU long link name');
        continue;
      case 'x':
        pax = parsePax(await readMeta(src, h, 'pax header'), offset);
        continue;
      case 'g':
        for (const [key, value] of parsePax(await readMeta(src, h, 'pax global header'), offset)) {
          if (value.length) globalPax.set(key, value);
          else globalPax.delete(key);
        }
        continue;
    }
    const merged = new Map(globalPax);
    for (const [key, value] of pax) {
      if (value.length) merged.set(key, value);
      else merged.delete(key); // an empty value undoes a global one
    }
    return buildMember(src, h, headerOffset, merged, longName, longLink);
  }
}

async function readMeta(src: ByteSource, h: RawHeader, what: string): Promise<Buffer> {
  if (h.size > BigInt(MAX_META_BYTES))
    throw new TarError(
      `the ${what} at byte ${h.offset} claims ${h.size} bytes, more than the ${MAX_META_BYTES} we accept`,
    );
  const size = Number(h.size);
  const data = (await readExact(src, size, `a ${what}`))!;
  await skipExact(src, padding(size), `a ${what}`);
  return data;
}

function buildMember(
  src: ByteSource,
  h: RawHeader,
  headerOffset: number,
  pax: Map<string, Buffer>,
  longName?: Buffer,
  longLink?: Buffer,
) {
  const rawPath = pax.get('path') ?? (longName ? cString(longName) : h.name);
  const path = decodeName(rawPath, headerOffset, 'name', rawPath);
  if (h.typeflag === 'S' || [...pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) {
    const shown = pax.has('GNU.sparse.name')
      ? decodeName(pax.get('GNU.sparse.name')!, headerOffset, 'name', rawPath)
      : path;
    throw new TarError(
      `tar member '${shown}' is a GNU sparse file, which is not supported yet: re-create the archive without --sparse`,
    );
  }
  const rawLink = pax.get('linkpath') ?? (longLink ? cString(longLink) : h.linkname);
  const linkname = decodeName(rawLink, headerOffset, 'link target', rawPath);
  const num = (key: string, fallback: bigint) => (pax.has(key) ? paxInteger(pax.get(key)!, key, path) : fallback);
  const type = entryType(h.typeflag, path);
  const headerOnly = '123456'.includes(h.typeflag); // no content follows these, whatever size says
  const size = headerOnly ? 0 : toSafeNumber(num('size', h.size), 'size', path);
  const body = memberBody(src, size, path);
  const entry: TarEntry = {
    path,
    type,
    typeflag: h.typeflag,
    mode: Number(h.mode & 0o7777n), // old archives also carry the S_IF* type bits
    uid: toSafeNumber(num('uid', h.uid), 'uid', path),
    gid: toSafeNumber(num('gid', h.gid), 'gid', path),
    mtime: pax.has('mtime') ? paxTime(pax.get('mtime')!, path) : { sec: h.mtime, nsec: 0 },
    size,
    linkname,
    devmajor: toSafeNumber(num('SCHILY.devmajor', h.devmajor), 'devmajor', path),
    devminor: toSafeNumber(num('SCHILY.devminor', h.devminor), 'devminor', path),
    xattrs: paxXattrs(pax, path),
    headerOffset,
    dataOffset: src.position,
    content: () => body.stream(),
    readAll: () => body.readAll(),
  };
  return { entry, finish: () => body.finish() };
}

// '7' is a contiguous file, 'D' a GNU dumpdir (a directory whose content, skipped, lists its names).
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

function entryType(typeflag: string, path: string): TarEntryType {
  const type = TYPES[typeflag] ?? 'other';
  return type === 'file' && path.endsWith('/') ? 'dir' : type; // v7 archives mark directories by a trailing slash
}

/** The content of the current member: read by the consumer, or skipped when it moves on. */
function memberBody(src: ByteSource, size: number, path: string) {
  let remaining = size;
  let pending: Promise<unknown> | null = null;
  let taken = false;
  let done = false;
  let stream: Readable | undefined;
  const what = `the content of '${path}'`;
  const take = () => {
    if (taken) throw new TarError(`the content of tar member '${path}' was already read`);
    if (done) throw new TarError(`the content of tar member '${path}' was requested after moving to the next member`);
    taken = true;
  };
  // One chunk; the count is updated inside the same promise, so `finish` can wait for it.
  const chunk = async (): Promise<Buffer> => {
    const data = await src.read(Math.min(remaining, CHUNK));
    if (!data) throw truncated(src, what);
    remaining -= data.length;
    return data;
  };
  async function* chunks() {
    while (remaining > 0) {
      if (done)
        throw new TarError(
          `the content of tar member '${path}' was still being read when the next member was requested`,
        );
      pending = chunk();
      yield await pending;
    }
  }
  return {
    stream(): Readable {
      take();
      stream = Readable.from(chunks(), { objectMode: false, highWaterMark: CHUNK });
      return stream;
    },
    async readAll(): Promise<Buffer> {
      take();
      const data = (await readExact(src, remaining, what))!;
      remaining = 0;
      return data;
    },
    async finish(): Promise<void> {
      done = true;
      // An abandoned stream must stop pulling; destroying it without an error cannot crash anyone,
      // while a consumer still reading sees a premature close.
      stream?.destroy();
      if (pending) await pending.catch(() => undefined); // a failure resurfaces in the skip below
      await skipExact(src, remaining + padding(size), what);
      remaining = 0;
    },
  };
}

// ---- header fields -------------------------------------------------------------------------------

function parseHeader(block: Buffer, offset: number) {
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

function verifyChecksum(block: Buffer, offset: number): void {
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
function parseNumber(field: Buffer, name: string, offset: number): bigint {
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

function toSafeNumber(value: bigint, field: string, path: string): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new TarError(`tar member '${path}' has an out-of-range ${field} ${value}`);
  return Number(value);
}

function cString(bytes: Buffer): Buffer {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

function decodeName(bytes: Buffer, offset: number, what: string, memberName: Buffer): string {
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
function parsePax(data: Buffer, offset: number): Map<string, Buffer> {
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

function paxInteger(value: Buffer, key: string, path: string): bigint {
  const text = value.toString('latin1');
  if (!/^\d+$/.test(text)) throw new TarError(`tar member '${path}' has an invalid pax ${key} ${JSON.stringify(text)}`);
  return BigInt(text);
}

/** "S[.F]" with up to nanosecond (or finer, truncated) precision; negative times normalised like timespec. */
function paxTime(value: Buffer, path: string): { sec: bigint; nsec: number } {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value.toString('latin1'));
  if (!m)
    throw new TarError(`tar member '${path}' has an invalid pax mtime ${JSON.stringify(value.toString('latin1'))}`);
  const whole = BigInt(m[2]);
  const frac = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  if (m[1] !== '-') return { sec: whole, nsec: frac };
  return frac === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1n, nsec: 1_000_000_000 - frac };
}

/** SCHILY.xattr.NAME carries raw bytes; LIBARCHIVE.xattr.NAME a %-encoded name and base64 value. */
function paxXattrs(pax: Map<string, Buffer>, path: string): Record<string, Buffer> {
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
