// The installer's log: every line stamped with seconds since start (as Dominator's installer does),
// written to stderr, to a file under the log directory (with a `latest` link, copied onto the new
// system at the end) and kept in memory for the progress reports and the status page. The file's
// bounds are Dominator's logbuf's: a file is closed and a new one started past a size, the
// directory is pruned oldest first to a quota, and an idle log can be marked.
import fs from 'node:fs';
import path from 'node:path';

export interface LogOptions {
  /** Lines kept in memory for the status page and a new shell's history (-logbufLines). */
  bufferLines: number;
  /** A log file is closed and a new one started past this size (-logFileMaxSize). */
  fileMaxBytes: number;
  /** The log directory's files are pruned, oldest first, to this total (-logQuota). */
  quotaBytes: number;
  /** Debug lines up to this level are logged; -1 logs none (-logDebugLevel). */
  debugLevel: number;
  /** Each line also goes to stderr, the console (-alsoLogToStderr). */
  alsoToStderr: boolean;
  /** After this long without a line, a MARK line goes to the log file; 0: never (-idleMarkTimeout). */
  idleMarkSeconds: number;
}

export const DEFAULT_LOG_OPTIONS: LogOptions = {
  bufferLines: 10_000,
  fileMaxBytes: 10 << 20,
  quotaBytes: 100 << 20,
  debugLevel: -1,
  alsoToStderr: true,
  idleMarkSeconds: 0,
};

/** Dominator's logbuf's floors: smaller values are raised to these. */
const MIN = { bufferLines: 100, fileMaxBytes: 16 << 10, quotaBytes: 64 << 10 };

export class InstallerLog {
  /** The latest lines (up to the buffer's size). */
  readonly lines: string[] = [];
  /** Lines written since the start: line n of the whole log has seq n (lines[i] is seq total - lines.length + i). */
  total = 0;
  private readonly started = performance.now();
  private readonly listeners = new Set<(line: string) => void>();
  private readonly opts: LogOptions;
  private readonly directory: string | undefined;
  /** This run's files, oldest first (the quota may have removed the first ones). */
  private readonly runFiles: string[] = [];
  private fd: number | undefined;
  private fileBytes = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(opts: { directory?: string; stderr?: boolean; bounds?: Partial<LogOptions> } = {}) {
    const o = { ...DEFAULT_LOG_OPTIONS, ...opts.bounds };
    this.opts = {
      ...o,
      alsoToStderr: opts.stderr ?? o.alsoToStderr,
      bufferLines: Math.max(o.bufferLines, MIN.bufferLines),
      fileMaxBytes: Math.max(o.fileMaxBytes, MIN.fileMaxBytes),
      quotaBytes: Math.max(o.quotaBytes, MIN.quotaBytes),
    };
    this.directory = opts.directory;
    if (this.directory) {
      fs.mkdirSync(this.directory, { recursive: true, mode: 0o755 });
      this.openNewFile();
      this.armIdleMark();
    }
  }

  /** The file being written now (undefined without a log directory). */
  get file(): string | undefined {
    return this.runFiles.at(-1);
  }

  /** This run's files still on disk, oldest first: together they are the run's whole log. */
  get files(): string[] {
    return this.runFiles.filter((f) => fs.existsSync(f));
  }

  /** Seconds since the installer started. */
  elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  info(message: string): void {
    const line = `[${this.elapsed().toFixed(3).padStart(7)}] ${message}`;
    this.lines.push(line);
    this.total++;
    if (this.lines.length > this.opts.bufferLines) this.lines.splice(0, this.lines.length - this.opts.bufferLines);
    if (this.opts.alsoToStderr) process.stderr.write(`${line}\n`);
    this.writeToFile(`${line}\n`);
    this.armIdleMark();
    for (const l of this.listeners) l(line);
  }

  /** A line for debugging, logged only when --log-debug-level is `level` or more. */
  debug(level: number, message: string): void {
    if (level <= this.opts.debugLevel) this.info(message);
  }

  onLine(listener: (line: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    clearTimeout(this.idleTimer);
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private writeToFile(text: string): void {
    if (this.fd === undefined) return;
    fs.writeSync(this.fd, text);
    this.fileBytes += Buffer.byteLength(text);
    if (this.fileBytes > this.opts.fileMaxBytes) {
      fs.writeSync(this.fd, `${wallClock()} closing this file, the log goes on in a new one\n`);
      fs.closeSync(this.fd);
      this.openNewFile();
    }
  }

  private openNewFile(): void {
    const dir = this.directory!;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = path.join(dir, `log-${stamp}-${process.pid}-${this.runFiles.length}`);
    this.fd = fs.openSync(file, 'a', 0o644);
    this.fileBytes = 0;
    this.runFiles.push(file);
    // The link is replaced in one rename: a reader never finds it missing.
    const latest = path.join(dir, 'latest');
    fs.rmSync(`${latest}~`, { force: true });
    fs.symlinkSync(path.basename(file), `${latest}~`);
    fs.renameSync(`${latest}~`, latest);
    this.enforceQuota();
  }

  /**
   * Removes the oldest log files until the directory's logs fit the quota, never the file being
   * written. Other runs' files count too: a machine that netboots the installer again and again
   * must not fill its memory with logs.
   */
  private enforceQuota(): void {
    const dir = this.directory!;
    const logs = fs
      .readdirSync(dir)
      .filter((n) => n.startsWith('log-'))
      .map((n) => {
        const st = fs.statSync(path.join(dir, n), { throwIfNoEntry: false });
        return { file: path.join(dir, n), bytes: st?.isFile() ? st.size : 0, mtime: st?.mtimeMs ?? 0 };
      })
      .sort((a, b) => b.mtime - a.mtime || b.file.localeCompare(a.file));
    let used = 0;
    let removed = 0;
    let removedBytes = 0;
    for (const l of logs) {
      if (l.file === this.file || used + l.bytes <= this.opts.quotaBytes) used += l.bytes;
      else {
        fs.rmSync(l.file, { force: true });
        removed++;
        removedBytes += l.bytes;
      }
    }
    if (removed && this.fd !== undefined)
      this.writeToFile(
        `${wallClock()} removed ${removed} old log files (${removedBytes} bytes) to keep to the quota\n`,
      );
  }

  /** Dominator's idle mark: a line in the file after a quiet while, so a reader knows it was still alive. */
  private armIdleMark(): void {
    if (this.opts.idleMarkSeconds <= 0 || this.fd === undefined) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.writeToFile(`${wallClock()} MARK\n`);
      this.armIdleMark();
    }, this.opts.idleMarkSeconds * 1000);
    this.idleTimer.unref();
  }
}

function wallClock(): string {
  return new Date().toISOString().replace('T', ' ').slice(0, 19);
}
