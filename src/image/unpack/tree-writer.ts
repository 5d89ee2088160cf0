// Writes an image's files on every core: a pool of threads (tree-writer-thread.ts), one per core,
// each decompressing, verifying and writing the objects it is sent, while the calling thread
// receives them (or finds them) and hands them on. Jobs travel in batches, one message each way;
// a batch's objects share one transferred buffer. Each thread has at most BATCHES_PER_THREAD
// batches outstanding and one full batch may wait beside them: the caller waits in room(), which
// bounds memory and, for a download, pushes back on the connection.
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Digest } from '../model/digest.ts';
import type { InodeEntry } from '../model/manifest.ts';
import { CorruptObjectError } from '../model/objects.ts';
import { startThread } from '../../util/threads.ts';
import type { FileTarget } from './file-ops.ts';
import type { WriteAnswer, WriteBatch, WriteJob } from './tree-writer-thread.ts';

const BATCH_WEIGHT = 1024 * 1024;
const BATCH_JOBS = 64;
/** What a file costs beyond its bytes (create, chown, chmod, times, close), in bytes of weight. */
const TARGET_WEIGHT = 8 * 1024;
const BATCHES_PER_THREAD = 2;
/**
 * A batch's buffer: allocated at this size and handed back and forth, so a download does not
 * allocate a new one per batch (each new one counts against V8's external memory and brings on
 * full garbage collections of the thread holding the manifest). Larger batches get their own.
 */
const BUFFER_BYTES = 2 * 1024 * 1024;

/** One thread per core (at most 16). */
export function defaultTreeWriterThreads(): number {
  return Math.max(1, Math.min(os.availableParallelism(), 16));
}

interface Batch {
  jobs: WriteJob[];
  parts: Uint8Array[];
  bufferBytes: number;
  weight: number;
  /** Called with whether a `file` job's file was usable; undefined for other jobs. */
  onFile: ((found: boolean) => void)[];
}

interface Thread {
  worker: Worker;
  outstanding: Batch[];
}

const emptyBatch = (): Batch => ({ jobs: [], parts: [], bufferBytes: 0, weight: 0, onFile: [] });

export class TreeWriterPool {
  /** Bytes written so far (each target counted), as answers arrive. */
  bytesWritten = 0;
  onProgress: (bytesWritten: number) => void = () => {};
  private readonly size: number;
  private readonly origin: string;
  private threads: Thread[] = [];
  private current = emptyBatch();
  private ready: Batch[] = [];
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;
  private flushScheduled = false;
  private spareBuffers: ArrayBuffer[] = [];
  private closed = false;

  constructor(opts: { threads?: number; origin?: string } = {}) {
    this.size = opts.threads ?? defaultTreeWriterThreads();
    this.origin = opts.origin ?? 'the image server';
  }

  /** Starts the threads now (they take ~50 ms), so they are ready when the first objects come. */
  start(): this {
    if (this.threads.length || this.closed) return this;
    for (let i = 0; i < this.size; i++) {
      const worker = startThread(new URL('./tree-writer-thread.ts', import.meta.url), {
        kind: 'tree-writer',
      });
      worker.unref();
      const thread: Thread = { worker, outstanding: [] };
      worker.on('message', (answer: WriteAnswer) => this.answer(thread, answer));
      worker.on('error', (err: Error) => this.fail(new Error(`a file writer thread failed: ${err.message}`)));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`a file writer thread exited (code ${code})`));
      });
      this.threads.push(thread);
    }
    return this;
  }

  /** A zstd frame as stored, not yet verified: the thread verifies it against `digest` first. */
  addStored(digest: Digest, stored: Uint8Array, size: number, targets: FileTarget[]): void {
    this.add({ kind: 'stored', digest, start: 0, end: 0, size, targets }, stored, size, targets.length);
  }

  /** Verified content. */
  addContent(content: Uint8Array, targets: FileTarget[]): void {
    const size = content.length;
    this.add({ kind: 'content', start: 0, end: 0, size, targets }, content, size, targets.length);
  }

  /** A file trusted to hold the object if it is a regular file of `size` bytes; `onResult` says if it was. */
  addFile(file: string, size: number, targets: FileTarget[], onResult: (found: boolean) => void): void {
    this.add({ kind: 'file', file, size, targets }, undefined, size, targets.length, onResult);
  }

  /** A symlink, device node, FIFO or empty file; its parent directory must exist already. */
  addNode(path: string, entry: InodeEntry): void {
    this.add({ kind: 'node', path, entry }, undefined, 0, 1);
  }

  /** Whether a full batch is waiting for a thread: the caller should wait in room() (or write itself). */
  full(): boolean {
    return this.ready.length > 0;
  }

  /** Resolves once no full batch waits for a thread; rejects with the pool's failure. */
  async room(): Promise<void> {
    while (!this.failure && this.full()) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure) throw this.failure;
  }

  /** Sends everything and waits until all of it is written; rejects with the pool's failure. */
  async drain(): Promise<void> {
    this.seal();
    this.pump();
    while (!this.failure && (this.ready.length || this.threads.some((t) => t.outstanding.length)))
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.fail(new Error('the file writer pool was closed'));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads = [];
  }

  private add(
    job: WriteJob,
    bytes: Uint8Array | undefined,
    size: number,
    targets: number,
    onFile?: (found: boolean) => void,
  ): void {
    if (this.failure) throw this.failure;
    this.start();
    const b = this.current;
    if (bytes && (job.kind === 'stored' || job.kind === 'content')) {
      job.start = b.bufferBytes;
      job.end = b.bufferBytes + bytes.length;
      b.parts.push(bytes);
      b.bufferBytes += bytes.length;
    }
    b.jobs.push(job);
    b.onFile.push(onFile ?? (() => {}));
    b.weight += size + TARGET_WEIGHT * Math.max(1, targets);
    if (b.weight >= BATCH_WEIGHT || b.jobs.length >= BATCH_JOBS) {
      this.seal();
      this.pump();
    } else if (!this.flushScheduled) {
      // Once what has arrived so far is handed on, a thread with nothing to do takes the partial batch.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (this.threads.some((t) => t.outstanding.length === 0)) {
          this.seal();
          this.pump();
        }
      });
    }
  }

  private seal(): void {
    if (!this.current.jobs.length) return;
    this.ready.push(this.current);
    this.current = emptyBatch();
  }

  private pump(): void {
    while (this.ready.length && !this.failure) {
      let best: Thread | undefined;
      for (const t of this.threads)
        if (t.outstanding.length < BATCHES_PER_THREAD && (!best || t.outstanding.length < best.outstanding.length))
          best = t;
      if (!best) return;
      this.send(best, this.ready.shift()!);
    }
  }

  private send(thread: Thread, batch: Batch): void {
    let buffer: ArrayBuffer | undefined;
    if (batch.bufferBytes) {
      buffer =
        batch.bufferBytes <= BUFFER_BYTES
          ? (this.spareBuffers.pop() ?? new ArrayBuffer(BUFFER_BYTES))
          : new ArrayBuffer(batch.bufferBytes);
      const view = new Uint8Array(buffer);
      let at = 0;
      for (const part of batch.parts) {
        view.set(part, at);
        at += part.length;
      }
    }
    batch.parts = [];
    if (thread.outstanding.length === 0) thread.worker.ref();
    thread.outstanding.push(batch);
    const message: WriteBatch = { jobs: batch.jobs, buffer, origin: this.origin };
    thread.worker.postMessage(message, buffer ? [buffer] : []);
  }

  private answer(thread: Thread, answer: WriteAnswer): void {
    const batch = thread.outstanding.shift();
    if (!batch) return;
    if (thread.outstanding.length === 0) thread.worker.unref();
    if (answer.buffer?.byteLength === BUFFER_BYTES) this.spareBuffers.push(answer.buffer);
    this.bytesWritten += answer.bytes;
    if (answer.error) {
      this.fail(rebuildError(answer.error));
      return;
    }
    const missing = new Set(answer.missing);
    batch.onFile.forEach((f, i) => {
      if (batch.jobs[i].kind === 'file') f(!missing.has(i));
    });
    this.onProgress(this.bytesWritten);
    this.pump();
    this.wake();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const t of this.threads) {
      t.outstanding = [];
      t.worker.unref();
    }
    this.ready = [];
    this.current = emptyBatch();
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** The thread's error as the caller would have seen it on its own thread. */
function rebuildError(e: NonNullable<WriteAnswer['error']>): Error {
  if (e.name === 'CorruptObjectError') return new CorruptObjectError(e.message);
  const err = new Error(e.message) as NodeJS.ErrnoException;
  err.name = e.name;
  if (e.code) err.code = e.code;
  if (e.path) err.path = e.path;
  return err;
}
