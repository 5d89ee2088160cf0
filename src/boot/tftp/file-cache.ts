// Files kept in memory and shared by every transfer that sends them: fifty machines booting at
// once fetch the same iPXE, kernel and initramfs, and each transfer reading its own copy through
// the thread pool (FileSource) costs a read and a buffer per chunk per transfer. A cached file is
// read once, chunk by chunk as the first transfer needs it, into one buffer the others send from.
//
// A file is known by what fstat says of the descriptor a transfer opened: device, inode, size and
// both change times. A file rewritten in place gets new times and so a new entry; the old one is
// dropped once no transfer uses it and room is needed. The bytes cached are those read from the
// descriptor, as FileSource's are: a file changed while it is first read is sent as read, to the
// transfers that opened it before the change (any later open sees new times: a new entry).
import type { ReadableFile, Source } from './source.ts';

/** What fstat said of an opened file: its identity in the cache. */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** Read unit: the first transfer waits for one of these, not for the whole file. */
const CHUNK = 256 * 1024;

/** One file's bytes, loaded chunk by chunk through whichever descriptor asks first. */
class SharedFile {
  readonly bytes: Buffer;
  /** Transfers sending from it now; an entry in use is never evicted. */
  users = 0;
  private readonly loaded: Uint8Array;
  private readonly loading = new Map<number, Promise<void>>();

  constructor(size: number) {
    this.bytes = Buffer.allocUnsafe(size);
    this.loaded = new Uint8Array(Math.ceil(size / CHUNK));
  }

  isLoaded(i: number): boolean {
    return this.loaded[i] === 1;
  }

  /** Chunk `i`, read through `handle` unless it is loaded or being loaded already. */
  load(i: number, handle: ReadableFile): Promise<void> {
    const pending = this.loading.get(i);
    if (pending) return pending;
    if (this.loaded[i] === 1) return Promise.resolve();
    const start = i * CHUNK;
    const len = Math.min(CHUNK, this.bytes.length - start);
    const p = (async () => {
      for (let got = 0; got < len; ) {
        const { bytesRead } = await handle.read(this.bytes, start + got, len - got, start + got);
        if (bytesRead === 0)
          throw new Error(`file shrank while being sent (to ${start + got} of ${this.bytes.length} bytes)`);
        got += bytesRead;
      }
      this.loaded[i] = 1;
    })();
    this.loading.set(i, p);
    const forget = () => this.loading.delete(i);
    p.then(forget, forget);
    return p;
  }
}

/** A transfer's view of a cached file; its descriptor is used for the chunks it is first to need. */
export class CachedSource implements Source {
  readonly size: number;
  private readonly handle: ReadableFile;
  private readonly file: SharedFile;
  private readonly release: () => void;
  /** Reads started through this descriptor: close() waits for them before closing it. */
  private readonly started = new Set<Promise<void>>();
  /** The chunk the last window lay in, once loaded and the next one asked for (the fast path). */
  private current = -1;
  private closed = false;

  constructor(handle: ReadableFile, file: SharedFile, release: () => void) {
    this.handle = handle;
    this.file = file;
    this.size = file.bytes.length;
    this.release = release;
  }

  prepare(from: number, to: number): Promise<void> | undefined {
    if (to <= from) return undefined;
    const first = Math.floor(from / CHUNK);
    const last = Math.floor((to - 1) / CHUNK);
    if (first === this.current && last === first) return undefined;
    const waits: Promise<void>[] = [];
    for (let i = first; i <= last; i++) if (!this.file.isLoaded(i)) waits.push(this.load(i));
    if ((last + 1) * CHUNK < this.size && !this.file.isLoaded(last + 1)) this.load(last + 1).catch(() => {}); // read-ahead; a failure shows when it is needed
    if (waits.length === 0) {
      if (first === last) this.current = first;
      return undefined;
    }
    return Promise.all(waits).then(() => {});
  }

  private load(i: number): Promise<void> {
    const p = this.file.load(i, this.handle);
    if (!this.started.has(p)) {
      this.started.add(p);
      const forget = () => this.started.delete(p);
      p.then(forget, forget);
    }
    return p;
  }

  slice(from: number, to: number): Buffer {
    return this.file.bytes.subarray(from, to);
  }

  copyTo(target: Buffer, at: number, from: number, to: number): void {
    this.file.bytes.copy(target, at, from, to);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A read in flight through this descriptor would fail with EBADF, or read another file that
    // reused the number: it is waited for (other transfers may be waiting on it too).
    await Promise.allSettled([...this.started]);
    this.release();
    await this.handle.close();
  }
}

/**
 * Cached files up to `maxBytes` in all. A file that does not fit beside the ones in use is not
 * cached (the caller reads it per transfer); unused entries make room, least recently used first.
 */
export class FileCache {
  private readonly maxBytes: number;
  private readonly files = new Map<string, SharedFile>();
  private total = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes held now (in use or not). */
  get bytes(): number {
    return this.total;
  }

  /** A source for the opened file, sharing its bytes, or undefined when it is not to be cached. */
  open(handle: ReadableFile, st: FileIdentity): CachedSource | undefined {
    const size = st.size;
    if (size === 0 || size > this.maxBytes) return undefined;
    const key = `${st.dev}:${st.ino}:${size}:${st.mtimeMs}:${st.ctimeMs}`;
    let file = this.files.get(key);
    if (file) {
      this.files.delete(key); // re-inserted last: most recently used
    } else {
      for (const [k, f] of this.files) {
        if (this.total + size <= this.maxBytes) break;
        if (f.users > 0) continue;
        this.files.delete(k);
        this.total -= f.bytes.length;
      }
      if (this.total + size > this.maxBytes) return undefined;
      file = new SharedFile(size);
      this.total += size;
    }
    this.files.set(key, file);
    file.users++;
    const f = file;
    return new CachedSource(handle, f, () => f.users--);
  }
}
