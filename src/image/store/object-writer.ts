// Stores contents on every core: a pool of threads (object-writer-worker.ts), one per core, each
// reading, hashing, compressing and publishing objects, while the calling thread walks the source.
// Jobs travel in batches (one message per batch each way) and each thread has at most
// BATCHES_PER_THREAD batches outstanding; the caller waits in room() while the unsent backlog or
// the bytes held by content jobs are at their limits, which bounds memory and lets answers in.
// Idle threads are unref'd, so a pool that is never closed cannot keep a process alive.
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startThread } from '../../util/threads.ts';
import type { Digest } from '../model/digest.ts';
import type { WriterJob, WriterResult, WriterSetup } from './object-writer-worker.ts';
import { makeFanOutDirs, occupiedPrefixes } from './object-files.ts';
import { ZSTD_LEVEL } from './zstd.ts';

export interface StoredObject {
  digest: Digest;
  /** Size of the stored (compressed) object. */
  storedBytes: number;
  /** False when the store had the object already. */
  added: boolean;
}

const BATCH_JOBS = 32;
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCHES_PER_THREAD = 2;
/** Content jobs carry their bytes: at most this many are held, sent or not, at once. */
const HELD_BYTES_LIMIT = 64 * 1024 * 1024;

interface Queued {
  job: WriterJob;
  /** Bytes held in memory until answered (content jobs). */
  bytes: number;
  /** Bytes to process: what batches are sized by. */
  weight: number;
  transfer?: ArrayBuffer;
  resolve: (r: StoredObject) => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  /** Batches sent and not yet answered, oldest first. */
  outstanding: Queued[][];
}

/** One thread per core (at most 16), the calling thread being mostly idle while they work. */
export function defaultWriterThreads(): number {
  return Math.max(1, Math.min(os.availableParallelism(), 16));
}

export class ObjectWriterPool {
  private readonly root: string;
  private readonly level: number;
  private readonly size: number;
  private threads: Thread[] = [];
  private queue: Queued[] = [];
  private queuedWeight = 0;
  private heldBytes = 0;
  private draining = false;
  private nextId = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;
  private closed = false;

  constructor(storeRoot: string, threads = defaultWriterThreads(), level = ZSTD_LEVEL) {
    this.root = storeRoot;
    this.level = level;
    this.size = threads;
  }

  /** Reads `file` (which lstat found `size` bytes long), hashes it and stores it unless present. */
  storeFile(file: string, size: number): Promise<StoredObject> {
    return this.enqueue({ id: this.nextId++, file, size }, 0, size);
  }

  /** Stores `content`, whose digest the caller computed. The pool keeps its own copy. */
  storeContent(content: Uint8Array, digest: Digest): Promise<StoredObject> {
    const copy = new Uint8Array(content);
    return this.enqueue({ id: this.nextId++, content: copy, digest }, copy.length, copy.length, copy.buffer);
  }

  /** Resolves once the pool takes more jobs: the unsent backlog and held bytes are under limits. */
  async room(): Promise<void> {
    while (!this.failure && this.full()) {
      this.pump(true);
      if (!this.full()) break;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure) throw this.failure;
  }

  /** Sends queued jobs as threads take them from now on (the source is read), not in full batches. */
  flush(): void {
    this.draining = true;
    this.pump(true);
  }

  /** Stops the threads; jobs not answered yet fail. */
  async close(): Promise<void> {
    this.closed = true;
    this.fail(new Error('the object writer pool was closed'));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads = [];
  }

  private full(): boolean {
    return this.queue.length >= this.size * BATCH_JOBS || this.heldBytes >= HELD_BYTES_LIMIT;
  }

  private enqueue(job: WriterJob, bytes: number, weight: number, transfer?: ArrayBuffer): Promise<StoredObject> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.threads.length === 0) this.start();
    return new Promise<StoredObject>((resolve, reject) => {
      this.queue.push({ job, bytes, weight, transfer, resolve, reject });
      this.heldBytes += bytes;
      this.queuedWeight += weight;
      this.pump(false);
    });
  }

  /**
   * Starts the threads, telling them which fan-out directories held objects (where they must look
   * before writing), then creates the other fan-out directories while the threads boot.
   */
  private start(): void {
    const objectsDir = path.join(this.root, 'objects', 'sha256');
    const occupied = occupiedPrefixes(objectsDir);
    const setup: WriterSetup = { root: this.root, level: this.level, occupied: [...occupied] };
    for (let i = 0; i < this.size; i++) {
      const worker = startThread(new URL('./object-writer-worker.ts', import.meta.url), setup);
      worker.unref();
      const thread: Thread = { worker, outstanding: [] };
      worker.on('message', (results: WriterResult[]) => this.answer(thread, results));
      worker.on('error', (err: Error) => this.fail(new Error(`an object writer thread failed: ${err.message}`)));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`an object writer thread exited (code ${code})`));
      });
      this.threads.push(thread);
    }
    makeFanOutDirs(objectsDir, occupied);
  }

  /**
   * Sends batches to threads with room. A thread with nothing to do gets whatever is queued; a
   * busy one only full batches, unless `partial` (the caller is about to wait, or is done).
   */
  private pump(partial: boolean): void {
    const anyBatch = partial || this.draining;
    for (const thread of this.threads) {
      while (this.queue.length && thread.outstanding.length < BATCHES_PER_THREAD) {
        const fullBatch = this.queue.length >= BATCH_JOBS || this.queuedWeight >= BATCH_BYTES;
        if (!anyBatch && thread.outstanding.length > 0 && !fullBatch) break;
        this.send(thread);
      }
    }
  }

  private send(thread: Thread): void {
    const batch: Queued[] = [];
    let weight = 0;
    while (this.queue.length && batch.length < BATCH_JOBS && weight < BATCH_BYTES) {
      const q = this.queue.shift()!;
      batch.push(q);
      weight += q.weight;
    }
    this.queuedWeight -= weight;
    if (thread.outstanding.length === 0) thread.worker.ref();
    thread.outstanding.push(batch);
    const transfer = batch.flatMap((q) => (q.transfer ? [q.transfer] : []));
    thread.worker.postMessage(
      batch.map((q) => q.job),
      transfer,
    );
    for (const q of batch) q.transfer = undefined;
  }

  private answer(thread: Thread, results: WriterResult[]): void {
    const batch = thread.outstanding.shift();
    if (!batch) return;
    if (thread.outstanding.length === 0) thread.worker.unref();
    for (let i = 0; i < batch.length; i++) {
      const q = batch[i];
      const r = results[i];
      this.heldBytes -= q.bytes;
      if ('error' in r) {
        const err = new Error(r.error.message) as NodeJS.ErrnoException;
        if (r.error.code) err.code = r.error.code;
        q.reject(err);
      } else {
        q.resolve({ digest: r.digest, storedBytes: r.storedBytes, added: r.added });
      }
    }
    this.pump(false);
    this.wake();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const thread of this.threads) {
      for (const batch of thread.outstanding) for (const q of batch) q.reject(this.failure);
      thread.outstanding = [];
      thread.worker.unref();
    }
    for (const q of this.queue) q.reject(this.failure);
    this.queue = [];
    this.queuedWeight = 0;
    this.heldBytes = 0;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
