// The installer's log: every line stamped with seconds since start (as Dominator's installer does),
// written to stderr, to a file under the log directory (with a `latest` link, copied onto the new
// system at the end) and kept in memory for the progress reports and, later, the status page.
import fs from 'node:fs';
import path from 'node:path';

export class InstallerLog {
  /** The latest lines (up to 10,000). */
  readonly lines: string[] = [];
  /** Lines written since the start: line n of the whole log has seq n (lines[i] is seq total - lines.length + i). */
  total = 0;
  readonly file: string | undefined;
  private readonly started = performance.now();
  private readonly listeners = new Set<(line: string) => void>();
  private fd: number | undefined;

  constructor(opts: { directory?: string; stderr?: boolean } = {}) {
    this.toStderr = opts.stderr ?? true;
    if (opts.directory) {
      fs.mkdirSync(opts.directory, { recursive: true, mode: 0o755 });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      this.file = path.join(opts.directory, `log-${stamp}-${process.pid}`);
      this.fd = fs.openSync(this.file, 'a', 0o644);
      const latest = path.join(opts.directory, 'latest');
      fs.rmSync(latest, { force: true });
      fs.symlinkSync(path.basename(this.file), latest);
    }
  }

  private readonly toStderr: boolean;

  /** Seconds since the installer started. */
  elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  info(message: string): void {
    const line = `[${this.elapsed().toFixed(3).padStart(7)}] ${message}`;
    this.lines.push(line);
    this.total++;
    if (this.lines.length > 10_000) this.lines.splice(0, this.lines.length - 10_000);
    if (this.toStderr) process.stderr.write(`${line}\n`);
    if (this.fd !== undefined) fs.writeSync(this.fd, `${line}\n`);
    for (const l of this.listeners) l(line);
  }

  onLine(listener: (line: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
