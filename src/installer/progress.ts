// Progress of an install, as events (format: docs/installer-events.md): phases starting and
// ending, bytes done of a total with rate and ETA, and the final result. Events go to the log and,
// when a boot server is configured, are POSTed to it in batches. Reporting never slows or fails
// the install: the queue is bounded, sends are retried with back-off, and what cannot be sent is
// dropped (oldest progress first; phase and result events are kept).
import type { InstallerLog } from './log.ts';
import { request, type RequestTls } from '../util/request.ts';

export type InstallerEvent =
  | { type: 'phase'; phase: string; state: 'started' | 'done' | 'failed'; seconds?: number }
  | {
      type: 'progress';
      phase: string;
      bytesDone: number;
      bytesTotal: number;
      bytesPerSecond: number;
      etaSeconds: number | null;
    }
  | {
      type: 'result';
      ok: boolean;
      error?: string;
      phaseSeconds: Record<string, number>;
      image?: string;
      seconds: number;
      objects?: ObjectCounts;
    };

/** Where the image's objects came from. */
export interface ObjectCounts {
  objectsFromCache: number;
  bytesFromCache: number;
  objectsFetched: number;
  bytesFetched: number;
}

export type StampedEvent = InstallerEvent & { seq: number; time: string; uptime: number };

export interface MachineIdentity {
  macs: string[];
  hostname?: string;
  ip?: string;
}

const MAX_QUEUE = 1000;
/** Log lines waiting to be sent (the oldest go first when it is full), and per request. */
const MAX_LOG_QUEUE = 5000;
const LOG_BATCH = 500;

/** A phase as the status page shows it. */
export interface PhaseState {
  name: string;
  state: 'started' | 'done' | 'failed';
  /** Seconds it took (when over), or since it started (updated on read by the status page). */
  seconds?: number;
  startedAt: number;
}

export class Progress {
  readonly phaseSeconds: Record<string, number> = {};
  /** Every phase of this attempt in order, with its state: for the status page and metrics. */
  readonly phases: PhaseState[] = [];
  /** The latest bytes-done event (of the running phase). */
  latest: Extract<InstallerEvent, { type: 'progress' }> | undefined;
  outcome: Extract<InstallerEvent, { type: 'result' }> | undefined;
  private seq = 0;
  private queue: StampedEvent[] = [];
  private reportUrl: string | undefined;
  private tls: RequestTls = {};
  private logQueue: { seq: number; line: string }[] = [];
  private stopLog: (() => void) | undefined;
  private machine: MachineIdentity = { macs: [] };
  private sending: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private readonly log: InstallerLog;
  private readonly phaseStart = new Map<string, number>();
  private lastProgress = new Map<string, { at: number; bytes: number; rate: number }>();

  constructor(log: InstallerLog) {
    this.log = log;
  }

  /**
   * Starts reporting to a boot server (`<url>/api/v1/installer/events`); over https with the
   * installer's certificate, checking the server's against the CA.
   */
  reportTo(url: string, machine: MachineIdentity, tls: RequestTls = {}): void {
    this.reportUrl = `${url.replace(/\/+$/, '')}/api/v1/installer/events`;
    this.machine = machine;
    this.tls = tls;
    this.log.info(`reporting progress to ${this.reportUrl}`);
    // The log goes along, from its first retained line: the boot server shows it per machine.
    const first = this.log.total - this.log.lines.length;
    this.logQueue = this.log.lines.map((line, i) => ({ seq: first + i, line }));
    this.stopLog?.();
    this.stopLog = this.log.onLine((line) => {
      this.logQueue.push({ seq: this.log.total - 1, line });
      if (this.logQueue.length > MAX_LOG_QUEUE) this.logQueue.shift();
      this.schedule();
    });
    this.schedule();
  }

  /** Stops taking log lines (the attempt is over; the next one reports on its own). */
  stop(): void {
    this.stopLog?.();
    this.stopLog = undefined;
    this.reportUrl = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  identify(machine: MachineIdentity): void {
    this.machine = machine;
  }

  async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    this.phaseStart.set(name, started);
    this.emit({ type: 'phase', phase: name, state: 'started' });
    try {
      const result = await work();
      const seconds = (performance.now() - started) / 1000;
      this.phaseSeconds[name] = (this.phaseSeconds[name] ?? 0) + seconds;
      this.emit({ type: 'phase', phase: name, state: 'done', seconds });
      this.log.info(`${name}: done in ${seconds.toFixed(2)} s`);
      return result;
    } catch (err) {
      this.emit({ type: 'phase', phase: name, state: 'failed', seconds: (performance.now() - started) / 1000 });
      throw err;
    }
  }

  /** Bytes done of a total in a phase; throttled to about one event a second. */
  bytes(phase: string, bytesDone: number, bytesTotal: number): void {
    const now = performance.now();
    const last = this.lastProgress.get(phase);
    if (last && now - last.at < 1000 && bytesDone < bytesTotal) return;
    const start = this.phaseStart.get(phase) ?? now;
    const rate = last
      ? (bytesDone - last.bytes) / ((now - last.at) / 1000)
      : bytesDone / Math.max((now - start) / 1000, 0.001);
    const smoothed = last ? 0.7 * last.rate + 0.3 * rate : rate;
    this.lastProgress.set(phase, { at: now, bytes: bytesDone, rate: smoothed });
    const eta = smoothed > 0 ? (bytesTotal - bytesDone) / smoothed : null;
    this.emit({
      type: 'progress',
      phase,
      bytesDone,
      bytesTotal,
      bytesPerSecond: Math.round(smoothed),
      etaSeconds: eta === null ? null : Math.round(eta),
    });
  }

  result(ok: boolean, seconds: number, details: { error?: string; image?: string; objects?: ObjectCounts }): void {
    this.emit({ type: 'result', ok, seconds, phaseSeconds: this.phaseSeconds, ...details });
  }

  emit(event: InstallerEvent): void {
    this.remember(event);
    const stamped = {
      ...event,
      seq: this.seq++,
      time: new Date().toISOString(),
      uptime: Number(this.log.elapsed().toFixed(3)),
    } as StampedEvent;
    this.queue.push(stamped);
    if (this.queue.length > MAX_QUEUE) {
      const i = this.queue.findIndex((e) => e.type === 'progress');
      this.queue.splice(Math.max(i, 0), 1);
    }
    this.schedule();
  }

  private remember(event: InstallerEvent): void {
    if (event.type === 'progress') this.latest = event;
    else if (event.type === 'result') this.outcome = event;
    else if (event.state === 'started') {
      this.phases.push({ name: event.phase, state: 'started', startedAt: performance.now() });
      this.latest = undefined;
    } else {
      const p = this.phases.findLast((x) => x.name === event.phase);
      if (p) Object.assign(p, { state: event.state, seconds: event.seconds });
    }
  }

  private schedule(): void {
    if (!this.reportUrl || this.timer || this.sending) return;
    const delay = this.failures ? Math.min(30_000, 500 * 2 ** this.failures) : 250;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.send().finally(() => {
        this.sending = undefined;
        if (this.queue.length || this.logQueue.length) this.schedule();
      });
    }, delay);
    this.timer.unref();
  }

  private async send(): Promise<void> {
    const batch = this.queue.slice(0, 200);
    const lines = this.logQueue.slice(0, LOG_BATCH);
    if ((!batch.length && !lines.length) || !this.reportUrl) return;
    const log = lines.length ? { from: lines[0].seq, lines: lines.map((l) => l.line) } : undefined;
    try {
      const res = await request(this.reportUrl, {
        method: 'POST',
        body: JSON.stringify({ machine: this.machine, events: batch, ...(log ? { log } : {}) }),
        tls: this.tls,
        timeoutMs: 10_000,
      });
      if (res.status >= 300) throw new Error(`HTTP ${res.status}: ${res.text.slice(0, 300)}`);
      this.queue.splice(0, batch.length);
      // Lines may have been dropped from the front meanwhile: remove what was sent, by seq.
      if (log) this.logQueue = this.logQueue.filter((l) => l.seq > log.from + log.lines.length - 1);
      this.failures = 0;
    } catch (err) {
      if (this.failures++ === 0)
        this.log.info(`cannot report progress to ${this.reportUrl}: ${(err as Error).message} (retrying)`);
    }
  }

  /** Sends what is queued, giving up after `timeoutMs` (before rebooting). */
  async flush(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.reportUrl && (this.queue.length || this.logQueue.length) && Date.now() < deadline) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      await (this.sending ?? (this.sending = this.send().finally(() => (this.sending = undefined))));
      if ((this.queue.length || this.logQueue.length) && this.failures)
        await new Promise((r) => setTimeout(r, Math.min(1000, deadline - Date.now())));
    }
  }

  /** Queued events (for tests and the status page). */
  pending(): readonly StampedEvent[] {
    return this.queue;
  }
}
