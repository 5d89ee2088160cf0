// A log that writes at most so many lines per window and counts the rest, for the servers' lines
// that a stranger can provoke: the DHCP server's malformed packets and answers, the TFTP server's
// refusals, the TFTP transfer thread's poll errors. Under a flood such a log would otherwise cost
// more than the answers (a synchronous write per line to the journal), and fill the disk.

/** How LimitedLog tells time and waits, given to it by tests. */
export interface LogClock {
  /** Milliseconds. */
  now(): number;
  /** Calls `fn` after `ms`, without keeping the process alive for it. */
  later(fn: () => void, ms: number): void;
}

const realClock: LogClock = {
  now: () => performance.now(),
  later: (fn, ms) => setTimeout(fn, ms).unref(),
};

export class LimitedLog {
  private windowStart = -Infinity;
  private count = 0;
  private readonly log: (line: string) => void;
  private readonly most: number;
  private readonly windowMs: number;
  private readonly overflow: (dropped: number) => string;
  private readonly clock: LogClock;

  /**
   * At most `most` lines per `windowMs`; `overflow(n)` is the line that says n lines of a window
   * were not written, written when that window ends.
   */
  constructor(
    log: (line: string) => void,
    most: number,
    windowMs: number,
    overflow: (dropped: number) => string,
    clock: LogClock = realClock,
  ) {
    this.log = log;
    this.most = most;
    this.windowMs = windowMs;
    this.overflow = overflow;
    this.clock = clock;
  }

  line(text: string): void {
    const now = this.clock.now();
    if (now - this.windowStart >= this.windowMs) {
      this.tellDropped();
      this.windowStart = now;
      this.count = 0;
    }
    this.count++;
    if (this.count <= this.most) this.log(text);
    else if (this.count === this.most + 1) {
      // The first line left out: the count is told when the window ends, even if no line follows.
      const window = this.windowStart;
      this.clock.later(
        () => {
          if (this.windowStart === window) this.tellDropped();
        },
        this.windowMs - (now - window),
      );
    }
  }

  /** Says how many lines of the window were left out, once. */
  private tellDropped(): void {
    if (this.count > this.most) this.log(this.overflow(this.count - this.most));
    this.count = Math.min(this.count, this.most);
  }
}
