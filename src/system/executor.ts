// The installer's seam to the machine: every program it runs and every change it makes goes
// through one Executor. Reads always happen (a plan needs facts); changes are only recorded when
// the executor is a dry run, so `--dry-run` shows exactly what a real run would do.
import { run, type RunOptions, type RunResult } from './run.ts';

export interface ExecutorOptions {
  dryRun: boolean;
  log: (line: string) => void;
  /** Debug lines: level 1 the programs that only read, level 2 every program's output. */
  debug?: (level: number, line: string) => void;
}

export class Executor {
  readonly dryRun: boolean;
  /** What a dry run skipped, in order: commands and described actions. */
  readonly skipped: string[] = [];
  private readonly log: (line: string) => void;
  private readonly debug: (level: number, line: string) => void;

  constructor(opts: ExecutorOptions) {
    this.dryRun = opts.dryRun;
    this.log = opts.log;
    this.debug = opts.debug ?? (() => {});
  }

  /** Runs a program that only reads the system: runs in a dry run too. */
  async read(program: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    this.debug(1, `reading ${[program, ...args].join(' ')}`);
    return this.output(program, await run(program, args, opts));
  }

  private output(program: string, r: RunResult): RunResult {
    for (const [name, text] of [
      ['stdout', r.stdout],
      ['stderr', r.stderr],
    ] as const)
      if (text.trim()) this.debug(2, `${program} ${name}: ${text.trimEnd().slice(0, 4096)}`);
    return r;
  }

  /** Runs a program that changes the system; a dry run records it instead. */
  async change(program: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const line = [program, ...args].join(' ');
    if (this.dryRun) {
      this.skipped.push(line);
      return { stdout: '', stderr: '' };
    }
    const started = performance.now();
    const result = await run(program, args, opts);
    this.log(`ran ${line} (${((performance.now() - started) / 1000).toFixed(2)} s)`);
    return this.output(program, result);
  }

  /** Runs a program inside a root directory (the tools image or the new system). */
  async changeIn(root: string, program: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.change('chroot', [root, program, ...args], opts);
  }

  /** An in-process change (writing a file, a system call), described for a dry run. */
  async act<T>(description: string, work: () => T | Promise<T>): Promise<T | undefined> {
    if (this.dryRun) {
      this.skipped.push(description);
      return undefined;
    }
    return work();
  }
}
