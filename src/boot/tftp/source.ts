// What a transfer sends: bytes from memory (a virtual file, or a file converted to netascii) or
// from an open file, read ahead in chunks. The size is fixed when the source is made: it is what
// tsize announced, and a file that changes underneath a transfer must not make it send more, or
// silently send less.
/** What a file source reads through: node:fs/promises' FileHandle, or a descriptor lent to a thread. */
export interface ReadableFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

export interface Source {
  readonly size: number;
  /**
   * Makes bytes [from, to) available to slice(): undefined when they already are (the common case,
   * so a window goes out without a trip through the event loop), else a promise.
   */
  prepare(from: number, to: number): Promise<void> | undefined;
  /** Bytes [from, to), prepared before; never spanning a chunk (see FileSource.setChunk). */
  slice(from: number, to: number): Buffer;
  /** Copies bytes [from, to), prepared before and within one chunk, into `target` at `at`. */
  copyTo(target: Buffer, at: number, from: number, to: number): void;
  close(): Promise<void>;
}

export class MemorySource implements Source {
  readonly size: number;
  private readonly data: Buffer;
  constructor(data: Buffer) {
    this.data = data;
    this.size = data.length;
  }
  prepare(): undefined {
    return undefined;
  }
  slice(from: number, to: number): Buffer {
    return this.data.subarray(from, to);
  }
  copyTo(target: Buffer, at: number, from: number, to: number): void {
    this.data.copy(target, at, from, to);
  }
  async close(): Promise<void> {}
}

/**
 * An open file read in chunks of many blocks, the next chunk fetched while the current window is
 * on the wire: one read per window would add a thread-pool round trip to every window's latency,
 * and lock-step TFTP is all latency. Chunks behind the acknowledged point are dropped (a transfer
 * never goes back past it), so a transfer holds two or three chunks at most.
 */
export class FileSource implements Source {
  readonly size: number;
  private readonly handle: ReadableFile;
  private chunk = 256 * 1024;
  private readonly chunks = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<void>>();
  /**
   * The chunk the last window came from, once it is loaded and the one after it asked for: a
   * window inside it (nearly every window) is ready without a look at the maps or a promise.
   */
  private current = -1;
  private currentBytes: Buffer | undefined;

  constructor(handle: ReadableFile, size: number) {
    this.handle = handle;
    this.size = size;
  }

  /** Chunk size: a multiple of the block size, so that no block spans two chunks. */
  setChunk(blksize: number, windowsize: number): void {
    this.chunk = blksize * Math.max(windowsize, Math.ceil((256 * 1024) / blksize));
  }

  prepare(from: number, to: number): Promise<void> | undefined {
    if (to <= from) return undefined;
    const first = Math.floor(from / this.chunk);
    const last = Math.floor((to - 1) / this.chunk);
    if (first === this.current && last === first) return undefined;
    for (const k of this.chunks.keys()) if (k < first) this.chunks.delete(k);
    const waits: Promise<void>[] = [];
    for (let i = first; i <= last; i++) if (!this.chunks.has(i)) waits.push(this.load(i));
    if ((last + 1) * this.chunk < this.size) this.load(last + 1).catch(() => {}); // read-ahead; a failure shows when it is needed
    if (waits.length === 0) {
      if (first === last) {
        this.current = first;
        this.currentBytes = this.chunks.get(first);
      }
      return undefined;
    }
    return Promise.all(waits).then(() => {});
  }

  private load(i: number): Promise<void> {
    const pending = this.loading.get(i);
    if (pending) return pending;
    if (this.chunks.has(i)) return Promise.resolve();
    const start = i * this.chunk;
    const len = Math.min(this.chunk, this.size - start);
    const p = (async () => {
      const buf = Buffer.allocUnsafe(len);
      for (let got = 0; got < len; ) {
        const { bytesRead } = await this.handle.read(buf, got, len - got, start + got);
        if (bytesRead === 0) throw new Error(`file shrank while being sent (to ${start + got} of ${this.size} bytes)`);
        got += bytesRead;
      }
      this.chunks.set(i, buf);
    })();
    this.loading.set(i, p);
    const forget = () => this.loading.delete(i);
    p.then(forget, forget);
    return p;
  }

  slice(from: number, to: number): Buffer {
    if (to <= from) return Buffer.alloc(0);
    const i = Math.floor(from / this.chunk);
    const buf = this.chunks.get(i);
    if (!buf) throw new Error(`bytes ${from}..${to} were not prepared`);
    return buf.subarray(from - i * this.chunk, to - i * this.chunk);
  }

  copyTo(target: Buffer, at: number, from: number, to: number): void {
    if (to <= from) return;
    const i = Math.floor(from / this.chunk);
    const buf = i === this.current ? this.currentBytes : this.chunks.get(i);
    if (!buf) throw new Error(`bytes ${from}..${to} were not prepared`);
    buf.copy(target, at, from - i * this.chunk, to - i * this.chunk);
  }

  async close(): Promise<void> {
    // A read still in flight would fail with EBADF on a closed descriptor, or worse read another
    // file that reused the number: wait for it.
    await Promise.allSettled([...this.loading.values()]);
    this.chunks.clear();
    this.current = -1;
    this.currentBytes = undefined;
    await this.handle.close();
  }
}

/**
 * RFC 1350's netascii from a Unix file: LF becomes CR LF and a bare CR becomes CR NUL (RFC 764),
 * so the client's conversion back restores the file byte for byte.
 */
export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 0x0a || data[i] === 0x0d) extra++;
  if (extra === 0) return data;
  const out = Buffer.allocUnsafe(data.length + extra);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (b === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else out[o++] = b;
  }
  return out;
}
