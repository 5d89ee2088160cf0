// Puts file contents into the store while a source is being read. Hashing happens on the reading
// thread; zstd compression too for small contents (a call through libuv's pool costs more than
// compressing them, see store.ts), on the pool for large ones, with a bounded number in flight.
// Very large contents stream through hash and compressor to a temporary file instead.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { digestOf, hasherDigest, newHasher, type Digest } from '../model/digest.ts';
import { ZSTD_LEVEL, type ImageStore } from './store.ts';

/** Contents at most this large are read whole; larger ones are streamed. */
export const WHOLE_READ_LIMIT = 32 * 1024 * 1024;
const MAX_IN_FLIGHT = 16;

export interface IngestStats {
  /** Objects this add wrote to the store. */
  objectsAdded: number;
  /** Objects the store had already, from other images. */
  objectsReused: number;
  /** Contents met more than once in this source (identical files), stored once. */
  duplicates: number;
  storedBytes: number;
}

export class Ingest {
  readonly stats: IngestStats = { objectsAdded: 0, objectsReused: 0, duplicates: 0, storedBytes: 0 };
  private readonly seen = new Set<Digest>();
  private readonly inFlight = new Set<Promise<void>>();
  private firstError: unknown;
  private readonly store: ImageStore;

  constructor(store: ImageStore) {
    this.store = store;
  }

  /** Queues a content for storing and returns its digest at once. */
  async addBuffer(content: Buffer): Promise<Digest> {
    const digest = digestOf(content);
    if (this.seen.has(digest)) {
      this.stats.duplicates++;
      return digest;
    }
    this.seen.add(digest);
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const job = this.store.putObject(content, digest).then(
      (r) => this.count(r.added, r.storedBytes),
      (err) => {
        this.firstError ??= err;
      },
    );
    const tracked = job.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    return digest;
  }

  /** Streams a content of any size into the store; resolves when it is stored. */
  async addStream(source: Readable): Promise<{ digest: Digest; size: number }> {
    const hasher = newHasher();
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hasher.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const tmp = this.store.tempPath('stream');
    const compressor = zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
    // (size unknown up front, so no pledged size: this path is for large contents only)
    try {
      await pipeline(source, tap, compressor, fs.createWriteStream(tmp, { mode: 0o444 }));
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    const digest = hasherDigest(hasher);
    if (this.seen.has(digest)) {
      this.stats.duplicates++;
      fs.rmSync(tmp, { force: true });
      return { digest, size };
    }
    this.seen.add(digest);
    const storedBytes = fs.statSync(tmp).size;
    this.count(this.store.adoptTemp(tmp, digest), storedBytes);
    return { digest, size };
  }

  private count(added: boolean, storedBytes: number): void {
    if (added) {
      this.stats.objectsAdded++;
      this.stats.storedBytes += storedBytes;
    } else {
      this.stats.objectsReused++;
    }
  }

  private throwIfFailed(): void {
    if (this.firstError) throw this.firstError;
  }

  /** Waits for every queued object; throws the first storing error. */
  async finish(): Promise<IngestStats> {
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    return this.stats;
  }
}
