// The one seam through which Cradle runs programs (mount, mkfs, sfdisk, ...). Failures become one
// error that names the command and carries its stderr, so an operator sees what failed and why.
import { execFile } from 'node:child_process';

export class CommandError extends Error {
  override name = 'CommandError';
  readonly stderr: string;
  readonly exitCode: number | null;
  constructor(command: string, exitCode: number | null, stderr: string) {
    super(`'${command}' failed (exit ${exitCode ?? 'signal'}): ${stderr.trim() || '(no output)'}`);
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  /** Environment; the default is the installer's own. Hook programmes get a documented one. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export function run(program: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const line = [program, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      args,
      { maxBuffer: 64 * 1024 * 1024, env: opts.env, timeout: opts.timeoutMs },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') reject(new CommandError(line, null, `${program} is not installed or not on PATH`));
          else if (err.killed && opts.timeoutMs)
            reject(new CommandError(line, null, `timed out after ${opts.timeoutMs / 1000} s. ${String(stderr)}`));
          else reject(new CommandError(line, (err as { code?: number }).code ?? null, String(stderr)));
        } else resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
    // A program that exits without reading its input must not turn into an EPIPE crash.
    child.stdin?.on('error', () => {});
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
