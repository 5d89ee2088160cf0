// The main thread's side of the transfer thread (transfer-thread.ts): it starts the thread, hands
// it each transfer the server has accepted, and learns whether the client answered and how the
// transfer ended. A thread that dies ends the transfers it held, never the server: the next
// transfer starts a new one, and the sockets the dead thread left open are closed here: the thread
// keeps their descriptors in a table shared with this side (TransferThreadData.sockets).
import fs from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { startThread } from '../../util/threads.ts';
import type { FromTransferThread, ToTransferThread, TransferThreadData } from './transfer-thread.ts';
import type { TransferOutcome } from './transfer.ts';

/** What the engine is started with: the thread's settings, and how many transfers it may hold. */
export interface EngineSettings {
  cacheBytes: number;
  /** The server's cap on transfers at once: the thread's table of sockets has room for more. */
  maxTransfers: number;
}

export type TransferRequest = Omit<Extract<ToTransferThread, { kind: 'start' }>, 'kind' | 'id'>;

/** How a transfer ended: its outcome, or why it never started. */
export type TransferEnd = { outcome: TransferOutcome; bytesSent: number } | { failed: string };

export interface EngineTransfer {
  /** When it was handed to the thread (performance.now()). */
  readonly started: number;
  /** Its wait for an ACK before resending: the server's, or the client's `timeout` option. */
  readonly timeoutMs: number;
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
  private worker: Worker | undefined;
  /** The running transfers of the thread now started, by id. */
  private running = new Map<number, Running>();
  private nextId = 1;
  private closed = false;
  private readonly settings: EngineSettings;
  private readonly log: (line: string) => void;

  private constructor(settings: EngineSettings, log: (line: string) => void) {
    this.settings = settings;
    this.log = log;
  }

  /** Starts the thread; resolves once it is ready for transfers. */
  static async start(settings: EngineSettings, log: (line: string) => void): Promise<TransferEngine> {
    const engine = new TransferEngine(settings, log);
    await engine.spawn();
    return engine;
  }

  /** Hands the thread a transfer (starting a thread if the last one died). */
  transfer(request: TransferRequest): EngineTransfer {
    const id = this.nextId++;
    const started = performance.now();
    let settle!: (end: TransferEnd) => void;
    const done = new Promise<TransferEnd>((resolve) => (settle = resolve));
    const r: Running = { heard: false, settle };
    if (this.closed) settle({ failed: 'server shutting down' });
    else {
      if (!this.worker) void this.spawn().catch(() => {}); // its failure ends the transfer below
      this.running.set(id, r);
      const { source } = request;
      // Bytes go as an exact copy whose memory moves to the thread: a view posted as it is would
      // carry the whole buffer it views (a pooled Buffer's 8 KiB, or all of a hook's large one).
      const copy = source.kind === 'bytes' ? new Uint8Array(source.data) : undefined;
      const message: ToTransferThread = {
        kind: 'start',
        id,
        ...request,
        ...(copy && { source: { kind: 'bytes', data: copy } }),
      };
      this.worker!.postMessage(message, copy ? [copy.buffer] : []);
    }
    return {
      started,
      timeoutMs: request.timeoutMs,
      get heard() {
        return r.heard;
      },
      done,
      abort: (message) => {
        if (this.running.has(id)) this.worker?.postMessage({ kind: 'abort', id, message } satisfies ToTransferThread);
      },
    };
  }

  /** Stops the thread; transfers still running end as failed once it has. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    if (!w) return;
    const exited = new Promise((resolve) => w.once('exit', resolve));
    await w.terminate();
    await exited;
  }

  private spawn(): Promise<void> {
    // Room for the transfers the server allows, and for aborted ones still closing their sockets.
    const sockets = new SharedArrayBuffer(4 * (this.settings.maxTransfers + 64));
    new Int32Array(sockets).fill(-1);
    const data: TransferThreadData = { cacheBytes: this.settings.cacheBytes, sockets };
    const w = startThread(new URL('./transfer-thread.ts', import.meta.url), data, {
      // A thread inherits the process's flags, and a process run as `node --input-type=module -e`
      // (as bench/tftp-server.ts runs the server) has one a thread from a file refuses. Flags
      // given explicitly must all be a thread's, so in that case the thread gets none.
      ...(process.execArgv.some((a) => a.startsWith('--input-type')) && { execArgv: [] }),
    });
    this.worker = w;
    const running = new Map<number, Running>();
    this.running = running;
    let error: string | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      w.on('message', (m: FromTransferThread) => {
        if (m.kind === 'ready') resolve();
        else if (m.kind === 'heard') {
          const r = running.get(m.id);
          if (r) r.heard = true;
        } else if (m.kind === 'done') end(running, m.id, { outcome: m.outcome, bytesSent: m.bytesSent });
        else if (m.kind === 'failed') end(running, m.id, { failed: m.message });
        else this.log(`tftp: transfer thread: ${m.message}`);
      });
      w.on('error', (err: Error) => {
        error = err.message;
        reject(err);
      });
      // Only once it has exited are its transfers ended: until then it may still be reading the
      // files lent to it, which the main thread closes when a transfer ends.
      w.once('exit', (code) => {
        reject(new Error(`the transfer thread exited (${code}) before it was ready`));
        if (this.worker === w) this.worker = undefined;
        // No code runs on the thread now: what its table still holds is open, and only its own.
        let closedSockets = 0;
        for (const fd of new Int32Array(sockets))
          if (fd >= 0) {
            try {
              fs.closeSync(fd);
              closedSockets++;
            } catch (err) {
              this.log(`tftp: a socket the transfer thread held could not be closed: ${(err as Error).message}`);
            }
          }
        const why = this.closed ? 'server shutting down' : `the transfer thread stopped (${error ?? `exit ${code}`})`;
        if (!this.closed)
          this.log(
            `tftp: ${why}; its ${running.size} transfer(s) are lost (${closedSockets} socket(s) closed), the next starts a new one`,
          );
        for (const id of [...running.keys()]) end(running, id, { failed: why });
      });
    });
    return ready;
  }
}

function end(running: Map<number, Running>, id: number, how: TransferEnd): void {
  const r = running.get(id);
  if (!r) return;
  running.delete(id);
  r.settle(how);
}
