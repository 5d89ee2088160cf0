// The main thread's side of the transfer thread (transfer-thread.ts): it starts the thread, hands
// it each transfer the server has accepted, and learns whether the client answered and how the
// transfer ended. A thread that fails ends the transfers it held, never the server.
import { Worker } from 'node:worker_threads';
import type { FromTransferThread, ToTransferThread, TransferThreadData } from './transfer-thread.ts';
import type { TransferOutcome } from './transfer.ts';

export type TransferRequest = Omit<Extract<ToTransferThread, { kind: 'start' }>, 'kind' | 'id'>;

/** How a transfer ended: its outcome, or why it never started. */
export type TransferEnd = { outcome: TransferOutcome; bytesSent: number } | { failed: string };

export interface EngineTransfer {
  /** When it was handed to the thread (performance.now()). */
  readonly started: number;
  /** Whether its client has acknowledged anything yet (Transfer.heard). */
  readonly heard: boolean;
  readonly done: Promise<TransferEnd>;
  /** Ends it now, telling the client `message`. */
  abort(message: string): void;
}

interface Running {
  heard: boolean;
  settle: (end: TransferEnd) => void;
}

export class TransferEngine {
  private readonly worker: Worker;
  private readonly running = new Map<number, Running>();
  private nextId = 1;
  private failure: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(worker: Worker, log: (line: string) => void) {
    this.worker = worker;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromTransferThread) => {
      if (m.kind === 'heard') {
        const r = this.running.get(m.id);
        if (r) r.heard = true;
      } else if (m.kind === 'done') this.end(m.id, { outcome: m.outcome, bytesSent: m.bytesSent });
      else if (m.kind === 'failed') this.end(m.id, { failed: m.message });
    });
    const lost = (why: string) => {
      if (this.failure) return;
      this.failure = why;
      log(`tftp: the transfer thread stopped (${why}); its transfers are lost`);
      for (const id of [...this.running.keys()]) this.end(id, { failed: `the transfer thread stopped: ${why}` });
    };
    worker.on('error', (err: Error) => lost(err.message));
    worker.once('exit', (code) => lost(`exit ${code}`));
  }

  /** Starts the thread; resolves once it is ready for transfers. */
  static async start(data: TransferThreadData, log: (line: string) => void): Promise<TransferEngine> {
    const worker = new Worker(new URL('./transfer-thread.ts', import.meta.url), { workerData: data });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (m: FromTransferThread) =>
        m.kind === 'ready' ? resolve() : reject(new Error('the transfer thread did not start')),
      );
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the transfer thread exited (${code}) before it was ready`)));
    });
    return new TransferEngine(worker, log);
  }

  /** Hands the thread a transfer. */
  transfer(request: TransferRequest): EngineTransfer {
    const id = this.nextId++;
    const started = performance.now();
    let settle!: (end: TransferEnd) => void;
    const done = new Promise<TransferEnd>((resolve) => (settle = resolve));
    const r: Running = { heard: false, settle };
    if (this.failure) settle({ failed: `the transfer thread stopped: ${this.failure}` });
    else {
      this.running.set(id, r);
      this.worker.postMessage({ kind: 'start', id, ...request } satisfies ToTransferThread);
    }
    return {
      started,
      get heard() {
        return r.heard;
      },
      done,
      abort: (message) => {
        if (this.running.has(id)) this.worker.postMessage({ kind: 'abort', id, message } satisfies ToTransferThread);
      },
    };
  }

  /** Stops the thread; transfers still running end as failed. */
  async close(): Promise<void> {
    this.failure ??= 'the server closed';
    for (const id of [...this.running.keys()]) this.end(id, { failed: 'server shutting down' });
    await this.worker.terminate();
    await this.exited;
  }

  private end(id: number, end: TransferEnd): void {
    const r = this.running.get(id);
    if (!r) return;
    this.running.delete(id);
    r.settle(end);
  }
}
