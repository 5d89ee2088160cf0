// Puts file contents into the store while a source is being read. Storing runs on a pool of
// threads, one per core (object-writer.ts): files of a directory are read, hashed, compressed and
// published there; contents already in memory (archive members) are hashed here, so their digest
// is known at once, and compressed and published there. Very large contents stream through hash
// and compressor to a temporary file instead.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { digestOf, hasherDigest, newHasher, type Digest } from '../model/digest.ts';
import type { ImageStore } from './store.ts';
import { ObjectWriterPool, type StoredObject } from './object-writer.ts';
import { ZSTD_LEVEL } from './zstd.ts';

/** Contents at most this large are read whole; larger ones are streamed. */
export const WHOLE_READ_LIMIT = 32 * 1024 * 1024;

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
  /** Files' objects counted as already in the store (see countFile). */
  private readonly reusedFiles = new Set<Digest>();
  private readonly inFlight = new Set<Promise<void>>();
  private firstError: unknown;
  private readonly store: ImageStore;
  private readonly pool: ObjectWriterPool;

  constructor(store: ImageStore, threads?: number) {
    this.store = store;
    this.pool = new ObjectWriterPool(store.root, threads);
  }

  /** Queues a content for storing and returns its digest at once. */
  async addBuffer(content: Buffer): Promise<Digest> {
    const digest = digestOf(content);
    if (this.seen.has(digest)) {
      this.stats.duplicates++;
      return digest;
    }
    this.seen.add(digest);
    await this.room();
    this.track(this.pool.storeContent(content, digest).then((r) => this.count(r.added, r.storedBytes)));
    return digest;
  }

  /**
   * Queues the file at `file`, which lstat found `size` bytes long (at most WHOLE_READ_LIMIT), to be
   * read, hashed and stored; `onStored` gets its digest once it is stored. A file whose size differs
   * when read fails the add.
   */
  async addFile(file: string, size: number, onStored: (digest: Digest) => void): Promise<void> {
    await this.room();
    this.track(
      this.pool.storeFile(file, size).then((r) => {
        this.countFile(r);
        onStored(r.digest);
      }),
    );
  }

  private async room(): Promise<void> {
    this.throwIfFailed();
    await this.pool.room();
    this.throwIfFailed();
  }

  private track(job: Promise<void>): void {
    const tracked: Promise<void> = job
      .catch((err: unknown) => {
        this.firstError ??= err;
      })
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /**
   * Counts a file stored by the pool. Identical files on two threads at once can both be written,
   * or the second find the first's object before the first's answer arrives: that object was
   * this add's, not reused, whichever answer comes first.
   */
  private countFile(r: StoredObject): void {
    if (!this.seen.has(r.digest)) {
      this.seen.add(r.digest);
      if (!r.added) this.reusedFiles.add(r.digest);
      this.count(r.added, r.storedBytes);
      return;
    }
    this.stats.duplicates++;
    if (r.added && this.reusedFiles.delete(r.digest)) {
      this.stats.objectsReused--;
      this.stats.objectsAdded++;
      this.stats.storedBytes += r.storedBytes;
    }
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

  /** Waits for every queued object and stops the threads; throws the first storing error. */
  async finish(): Promise<IngestStats> {
    this.pool.flush();
    try {
      while (this.inFlight.size) await Promise.all(this.inFlight);
    } finally {
      await this.pool.close();
    }
    this.throwIfFailed();
    return this.stats;
  }

  /** Stops the threads without waiting for queued objects (an add that failed part way). */
  async close(): Promise<void> {
    await this.pool.close();
  }
}
