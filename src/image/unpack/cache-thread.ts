// Runs the old disk's object cache (local-cache.ts: reading and hashing candidate files) on a
// worker thread, so the calling thread is free to write. Verified contents travel to the calling thread in batches of a
// few MiB, in one transferred buffer each. Flow control: at most MAX_UNACKED batches are in
// flight, and a consumer that returns a promise holds back the next, so a slow disk bounds memory
// use. The image server needs no such thread: the unpacker takes its objects as stored
// (ImageServerClient.fetchStored) and its writer threads decompress and verify them
// (unpack/tree-writer.ts).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Digest } from '../model/digest.ts';
import type { ObjectFinder } from '../model/objects.ts';
import { type CacheStats, LocalObjectCache, newCacheStats } from './local-cache.ts';
import { startThread } from '../../util/threads.ts';

const BATCH_BYTES = 4 * 1024 * 1024;
const MAX_UNACKED = 8;

type CacheJob = { kind: 'cache'; roots: string[]; wanted: [Digest, { size: number; paths: string[] }][] };

/** Counters a source keeps (FetchStats, CacheStats); the worker's are added to the caller's. */
type Counts = Record<string, number>;

type ToMain =
  | { type: 'batch'; digests: Digest[]; ends: number[]; buffer: ArrayBuffer }
  | { type: 'done'; stats: Counts }
  | { type: 'error'; name: string; message: string; stats: Counts };

/** The local object cache of `roots`, searched on a worker thread while this thread writes. */
export function cacheInWorker(roots: string[]): ObjectFinder & { stats: CacheStats } {
  const stats = newCacheStats();
  return {
    stats,
    find: (wanted, onObject) =>
      roots.length ? runInWorker({ kind: 'cache', roots, wanted: [...wanted] }, onObject, stats) : Promise.resolve(),
  };
}

/**
 * Runs the cache on a worker thread; `onObject` runs on the calling thread, in arrival order. The
 * worker's counts are added to `stats`, whether it succeeds or fails.
 */
function runInWorker(
  job: CacheJob,
  onObject: (digest: Digest, content: Buffer) => void | Promise<void>,
  stats: CacheStats,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = startThread(new URL('./cache-thread.ts', import.meta.url), job);
    let settled = false;
    const finish = (err: unknown, counts?: Counts) => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      const target = stats as unknown as Counts;
      for (const [key, n] of Object.entries(counts ?? {})) target[key] = (target[key] ?? 0) + n;
      if (err) reject(err);
      else resolve();
    };
    // Batches are delivered one after another: a consumer that returns a promise (it waits for
    // room to write) holds back the next batch and the ack, which holds back the worker.
    let delivering = Promise.resolve();
    const deliver = async (msg: Extract<ToMain, { type: 'batch' }>) => {
      if (settled) return;
      try {
        const all = Buffer.from(msg.buffer);
        let start = 0;
        for (let i = 0; i < msg.digests.length; i++) {
          const r = onObject(msg.digests[i], all.subarray(start, msg.ends[i])) as unknown;
          if (r instanceof Promise) await r;
          start = msg.ends[i];
        }
      } catch (err) {
        finish(err); // the consumer's error (a full disk): stop downloading
        return;
      }
      if (!settled) worker.postMessage('ack');
    };
    worker.on('message', (msg: ToMain) => {
      if (settled) return;
      if (msg.type === 'batch') {
        delivering = delivering.then(() => deliver(msg));
      } else if (msg.type === 'done') void delivering.then(() => finish(undefined, msg.stats));
      else void delivering.then(() => finish(rebuildError(msg), msg.stats));
    });
    worker.on('error', (err) => finish(err));
    worker.on('exit', (code) => finish(new Error(`object cache worker exited (${code}) before finishing`)));
  });
}

/** The worker's error (a file system's, such as EIO), with its name and message. */
function rebuildError(msg: Extract<ToMain, { type: 'error' }>): Error {
  const err = new Error(msg.message);
  err.name = msg.name;
  return err;
}

async function workerMain(job: CacheJob): Promise<void> {
  const port = parentPort!;
  let unacked = 0;
  let wake: (() => void) | undefined;
  port.on('message', () => {
    unacked--;
    wake?.();
  });
  let digests: Digest[] = [];
  let ends: number[] = [];
  let parts: Buffer[] = [];
  let bytes = 0;
  const send = () => {
    if (!digests.length) return;
    const buffer = new ArrayBuffer(bytes);
    const view = Buffer.from(buffer);
    let at = 0;
    for (const part of parts) {
      part.copy(view, at);
      at += part.length;
    }
    port.postMessage({ type: 'batch', digests, ends, buffer } satisfies ToMain, [buffer]);
    unacked++;
    digests = [];
    ends = [];
    parts = [];
    bytes = 0;
  };
  const onObject = async (digest: Digest, content: Buffer) => {
    digests.push(digest);
    parts.push(content);
    bytes += content.length;
    ends.push(bytes);
    if (bytes >= BATCH_BYTES) send();
    while (unacked >= MAX_UNACKED) await new Promise<void>((r) => (wake = r));
  };
  let stats: Counts = {};
  try {
    const cache = new LocalObjectCache(job.roots);
    stats = cache.stats as unknown as Counts;
    await cache.find(new Map(job.wanted), onObject);
    send();
    while (unacked > 0) await new Promise<void>((r) => (wake = r));
    port.postMessage({ type: 'done', stats } satisfies ToMain);
  } catch (err) {
    const e = err as Error;
    port.postMessage({ type: 'error', name: e.name, message: e.message, stats } satisfies ToMain);
  }
}

// Started as a thread (util/threads.ts: this file, or its own bundle), with a job. The calling
// thread imports this module too, and runs nothing of it here.
const started = workerData as CacheJob | undefined;
if (!isMainThread && started?.kind === 'cache') void workerMain(started);
