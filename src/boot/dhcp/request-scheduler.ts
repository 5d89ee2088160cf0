// When the DHCP server answers each request it has received: through the bounded, prioritized
// receive queue (receive-queue.ts), at most `concurrency` at once, and a client's requests in the
// order they came (a retransmitted DISCOVER must not race its REQUEST). Most of a request's time is
// spent waiting for its lease's commit (lease-batch.ts), so many run at once and share commits.
import { TurnsByKey } from '../../util/turns-by-key.ts';
import { type Lane, ReceiveQueue } from './receive-queue.ts';

export interface SchedulerOptions<J> {
  capacity: number;
  maxAgeMs: number;
  concurrency: number;
  handle(job: J): Promise<void>;
  /** A handler that threw (it is counted and logged by the caller). */
  failed(job: J, err: Error): void;
  log(line: string): void;
}

/** How often, at most, the log says requests are being shed. */
const SHED_LOG_MS = 10_000;

export class RequestScheduler<J extends { mac: string }> {
  /** Requests dropped unanswered: the queue was full, or they waited too long. */
  shed = 0;
  private readonly queue: ReceiveQueue<J>;
  private readonly o: SchedulerOptions<J>;
  private readonly inFlight = new Set<Promise<void>>();
  /** A client's requests one at a time, in the order they came. */
  private readonly perMac = new TurnsByKey();
  private active = 0;
  private closed = false;
  private lastShedLog = -Infinity;

  constructor(o: SchedulerOptions<J>) {
    this.o = o;
    this.queue = new ReceiveQueue<J>(o.capacity, o.maxAgeMs);
  }

  /** Queues a request in its lane (LANE in receive-queue.ts) and starts what may start. */
  offer(job: J, lane: Lane): void {
    if (this.closed) return;
    if (this.queue.push(job, lane, performance.now())) this.noteShed(1);
    this.pump();
  }

  /** Drops what is queued and waits for the requests being answered. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private noteShed(n: number): void {
    this.shed += n;
    const now = performance.now();
    if (now - this.lastShedLog < SHED_LOG_MS) return;
    this.lastShedLog = now;
    this.o.log(`overloaded: ${this.shed} requests dropped so far (unknown MACs' first); clients retransmit`);
  }

  private pump(): void {
    while (this.active < this.o.concurrency && this.queue.size && !this.closed) {
      const { item, stale } = this.queue.shift(performance.now());
      if (stale.length) this.noteShed(stale.length);
      if (!item) break;
      this.begin(item);
    }
  }

  private begin(job: J): void {
    this.active++;
    const run = this.perMac.run(job.mac, () => this.o.handle(job)).catch((err) => this.o.failed(job, err as Error));
    this.inFlight.add(run);
    void run.finally(() => {
      this.inFlight.delete(run);
      this.active--;
      this.pump();
    });
  }
}
