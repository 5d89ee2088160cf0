// Our own streaming tar parser. We do not use tar-stream: it decodes pax values as UTF-8, which
// corrupts binary xattr values such as security.capability, and it loses nanosecond mtimes.
// Here pax records are sliced as bytes (their length prefix counts bytes), values stay Buffers
// until a field is known to be text, and every header is checked (checksum, UTF-8 names, sparse
// members we cannot reproduce) so that a bad archive fails loudly instead of giving a wrong image.
// Formats: v7, ustar, GNU (long names 'L'/'K', base-256 numbers) and pax ('x', 'g'). Input is a
// byte stream, or any ByteSource: pack-tar.ts reads uncompressed files by offset through one.
import { Readable } from 'node:stream';
import {
  cString,
  decodeName,
  entryType,
  parseHeader,
  parsePax,
  paxInteger,
  paxTime,
  paxXattrs,
  TarError,
  type TarEntryType,
  toSafeNumber,
} from './tar-headers.ts';

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

const BLOCK = 512;
const CHUNK = 256 * 1024;
const MAX_META_BYTES = 64 * 1024 * 1024; // long names and pax headers are read whole

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
