// The main thread's handle on the TFTP data plane (data-plane-worker.ts): start it, hand it a
// transfer, learn how it ended, stop it. Transfers go over a MessagePort the thread reads without
// its event loop (it is blocked in epoll_wait), and an eventfd wakes it.
import { MessageChannel, Worker } from 'node:worker_threads';
import { WakeFd } from '../../system/packet-socket.ts';
import type { Control, Job, Report } from './data-plane-worker.ts';
import type { TransferOutcome } from './transfer.ts';

export type DataPlaneJob = Omit<Job, 'id'>;

export class DataPlane {
  private readonly wake: WakeFd;
  private readonly port: MessageChannel['port1'];
  private readonly pending = new Map<number, (o: TransferOutcome) => void>();
  private readonly exited: Promise<void>;
  private nextId = 1;
  private dead: string | undefined;
  private stopping = false;

  private constructor(worker: Worker, wake: WakeFd, port: MessageChannel['port1']) {
    this.wake = wake;
    this.port = port;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  /** Starts the thread; rejects if it cannot (no node:ffi, no epoll, a bundle without its module). */
  static async start(onError: (message: string) => void): Promise<DataPlane> {
    const wake = new WakeFd();
    const { port1, port2 } = new MessageChannel();
    let worker: Worker;
    try {
      worker = new Worker(new URL('./data-plane-worker.ts', import.meta.url), {
        workerData: { port: port2, wakeFd: wake.fd },
        transferList: [port2],
      });
    } catch (err) {
      wake.close();
      port1.close();
      throw err;
    }
    const plane = new DataPlane(worker, wake, port1);
    let ready = false;
    /** After start: the thread has gone, the server is told (before it, start() rejects instead). */
    const stopped = (why: string) => {
      plane.lost(why);
      if (ready) onError(why);
    };
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (r: Report) => {
        if (r.kind === 'ready') {
          ready = true;
          resolve();
        } else if (r.kind === 'done') {
          const settle = plane.pending.get(r.id);
          plane.pending.delete(r.id);
          settle?.(r.outcome);
        } else {
          reject(new Error(r.message));
          stopped(r.message);
        }
      });
      worker.once('error', (err: Error) => {
        reject(err);
        stopped(err.message);
      });
      worker.once('exit', (code) => {
        reject(new Error(`the TFTP data plane exited (${code})`));
        if (plane.stopping) plane.lost('stopped');
        else stopped(`the TFTP data plane exited (${code})`);
      });
    }).catch(async (err) => {
      await plane.stop();
      throw err;
    });
    return plane;
  }

  /** Runs one transfer to its end (the thread closes its socket; the caller closes `fd`). */
  run(job: DataPlaneJob): { id: number; done: Promise<TransferOutcome> } {
    const id = this.nextId++;
    if (this.dead !== undefined) {
      const reason = `the TFTP data plane has stopped: ${this.dead}`;
      return {
        id,
        done: Promise.resolve({ ok: false, reason, bytesSent: 0, bytesAcked: 0, retransmits: 0, seconds: 0 }),
      };
    }
    const done = new Promise<TransferOutcome>((resolve) => this.pending.set(id, resolve));
    // A copy of exactly the bytes, moved to the thread: a view into a larger buffer (a pooled one,
    // or a slice of an image held in memory) would otherwise clone all of it.
    const data = job.data && new Uint8Array(job.data);
    this.send({ kind: 'start', job: { ...job, data, id } }, data ? [data.buffer] : []);
    return { id, done };
  }

  /** Ends a transfer now, telling the client why. */
  abort(id: number, message: string): void {
    this.send({ kind: 'abort', id, message });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.send({ kind: 'stop' });
    await this.exited;
    this.wake.close();
    this.port.close();
  }

  private send(c: Control, transfer: ArrayBuffer[] = []): void {
    if (this.dead !== undefined) return;
    this.port.postMessage(c, transfer);
    this.wake.wake();
  }

  /** The thread is gone: whatever it was running has ended. */
  private lost(why: string): void {
    this.dead ??= why;
    for (const [id, settle] of this.pending) {
      this.pending.delete(id);
      settle({
        ok: false,
        reason: `the TFTP data plane stopped: ${why}`,
        bytesSent: 0,
        bytesAcked: 0,
        retransmits: 0,
        seconds: 0,
      });
    }
  }
}
