// A log that writes at most so many lines per window and counts the rest, for the servers' lines
// that a stranger can provoke: the DHCP server's malformed packets and answers, the TFTP server's
// refusals, the TFTP transfer thread's poll errors. Under a flood such a log would otherwise cost
// more than the answers (a synchronous write per line to the journal), and fill the disk.

export class LimitedLog {
  private windowStart = -Infinity;
  private count = 0;
  private readonly log: (line: string) => void;
  private readonly most: number;
  private readonly windowMs: number;
  private readonly overflow: (dropped: number) => string;
  private readonly now: () => number;

  /**
   * At most `most` lines per `windowMs`; `overflow(n)` is the line that says n lines of the last
   * window were not written, written with the first line of a later window. `now` is the clock
   * (milliseconds), for tests.
   */
  constructor(
    log: (line: string) => void,
    most: number,
    windowMs: number,
    overflow: (dropped: number) => string,
    now: () => number = () => performance.now(),
  ) {
    this.log = log;
    this.most = most;
    this.windowMs = windowMs;
    this.overflow = overflow;
    this.now = now;
  }

  line(text: string): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.count > this.most) this.log(this.overflow(this.count - this.most));
      this.windowStart = now;
      this.count = 0;
    }
    if (++this.count <= this.most) this.log(text);
  }
}
