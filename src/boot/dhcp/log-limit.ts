// A log that writes at most so many lines per window and counts the rest. Under a flood the DHCP
// server's log would otherwise cost more than its answers (a synchronous write per line to the
// journal), and a stream of malformed packets must not fill the disk.

export class LimitedLog {
  private window = { start: -Infinity, count: 0 };
  private readonly log: (line: string) => void;
  private readonly most: number;
  private readonly windowMs: number;
  private readonly overflow: (dropped: number) => string;

  /** `overflow(n)` is the line that says n lines of the last window were not written. */
  constructor(log: (line: string) => void, most: number, windowMs: number, overflow: (dropped: number) => string) {
    this.log = log;
    this.most = most;
    this.windowMs = windowMs;
    this.overflow = overflow;
  }

  line(text: string): void {
    const now = performance.now();
    if (now - this.window.start > this.windowMs) {
      if (this.window.count > this.most) this.log(this.overflow(this.window.count - this.most));
      this.window = { start: now, count: 0 };
    }
    if (++this.window.count <= this.most) this.log(text);
  }
}
