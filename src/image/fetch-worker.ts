// Downloads objects on a worker thread, so the main thread only writes files. Receiving, zstd
// decompression and SHA-256 verification of every object happen here; verified contents travel
// to the main thread in batches of a few MiB whose memory is transferred, not copied again.
// With two cores this roughly halves an install's wall time (see bench/load-image.ts).
// Flow control: at most MAX_UNACKED batches are in flight, so a slow disk bounds memory use.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CorruptObjectError } from './batch-decoder.ts';
import type { Digest } from './digest.ts';
// A circular import with client.ts, harmless: neither uses the other while loading.
import { ImageServerClient, ImageServerError, type FetchStats } from './client.ts';
import type { WantedObject } from './unpack.ts';

const BATCH_BYTES = 4 * 1024 * 1024;
const MAX_UNACKED = 8;

export interface WorkerJob {
  address: string;
  options: { tls?: { ca?: string; cert?: string; key?: string }; retries?: number; backoffMs?: number };
  objects: WantedObject[];
}

type ToMain =
  | { type: 'batch'; digests: Digest[]; ends: number[]; buffer: ArrayBuffer }
  | { type: 'log'; line: string }
  | { type: 'done'; stats: FetchStats }
  | { type: 'error'; name: string; message: string; status?: number; stats: FetchStats };

/**
 * Runs a fetch on a worker thread; `onObject` runs on the calling thread, in arrival order. The
 * worker's counts are added to `stats`, whether the fetch succeeds or fails.
 */
export function fetchInWorker(job: WorkerJob, onObject: (digest: Digest, content: Buffer) => void, log: (line: string) => void, stats: FetchStats): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: job });
    let settled = false;
    const finish = (err: unknown, counts?: FetchStats) => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      if (counts) {
        stats.objects += counts.objects;
        stats.wireBytes += counts.wireBytes;
        stats.retries += counts.retries;
      }
      if (err) reject(err);
      else resolve();
    };
    worker.on('message', (msg: ToMain) => {
      if (settled) return;
      if (msg.type === 'batch') {
        try {
          const all = Buffer.from(msg.buffer);
          let start = 0;
          msg.digests.forEach((digest, i) => {
            onObject(digest, all.subarray(start, msg.ends[i]));
            start = msg.ends[i];
          });
        } catch (err) {
          finish(err); // the consumer's error (a full disk): stop downloading
          return;
        }
        worker.postMessage('ack');
      } else if (msg.type === 'log') log(msg.line);
      else if (msg.type === 'done') finish(undefined, msg.stats);
      else finish(rebuildError(msg), msg.stats);
    });
    worker.on('error', (err) => finish(err));
    worker.on('exit', (code) => finish(new Error(`object download worker exited (${code}) before finishing`)));
  });
}

function rebuildError(msg: Extract<ToMain, { type: 'error' }>): Error {
  const err = msg.name === 'CorruptObjectError' ? new CorruptObjectError(msg.message) : new ImageServerError(msg.message);
  if (msg.status !== undefined) (err as ImageServerError).status = msg.status;
  return err;
}

async function workerMain(job: WorkerJob): Promise<void> {
  const port = parentPort!;
  const client = new ImageServerClient(job.address, { ...job.options, log: (line) => port.postMessage({ type: 'log', line } satisfies ToMain) });
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
  try {
    await client.fetchObjects(job.objects, async (digest, content) => {
      digests.push(digest);
      parts.push(content);
      bytes += content.length;
      ends.push(bytes);
      if (bytes >= BATCH_BYTES) send();
      while (unacked >= MAX_UNACKED) await new Promise<void>((r) => (wake = r));
    });
    send();
    while (unacked > 0) await new Promise<void>((r) => (wake = r));
    port.postMessage({ type: 'done', stats: client.stats } satisfies ToMain);
  } catch (err) {
    const e = err as Error & { status?: number };
    port.postMessage({ type: 'error', name: e.name, message: e.message, status: e.status, stats: client.stats } satisfies ToMain);
  } finally {
    client.close();
  }
}

if (!isMainThread && (workerData as WorkerJob | undefined)?.objects) void workerMain(workerData as WorkerJob);
