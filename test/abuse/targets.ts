// Starting the real server processes the hostile-input tier attacks, each with the client
// addresses its attacks come from, and stopping them again whatever happened.
import { spawn, type ChildProcess } from 'node:child_process';
import { DEFAULT_LIMITS } from '../../src/util/http/connections.ts';
import type { BodyRoute, Target } from './harness.ts';
import { until } from '../support/wait.ts';

/** Loopback addresses, each a distinct client to a server on 127.0.0.1 (all of 127/8 is local). */
export const LOOPBACK_SOURCES = Array.from({ length: 40 }, (_, i) => `127.0.0.${10 + i}`);

export const LIMITS = {
  maxConnections: DEFAULT_LIMITS.maxConnections,
  maxPerAddress: DEFAULT_LIMITS.maxPerAddress,
  requestHeadMs: DEFAULT_LIMITS.requestHeadMs,
};

export interface Started {
  child: ChildProcess;
  /** What the process wrote so far (stdout and stderr). */
  output: () => string;
  stop: () => Promise<void>;
}

/** Spawns `argv` and waits until its output matches `ready`; the match is returned. */
export async function startProcess(
  argv: string[],
  ready: RegExp,
  env: NodeJS.ProcessEnv = {},
): Promise<Started & { match: RegExpExecArray }> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  // Read always: a server blocked on a full pipe would look like a server the attacks stopped.
  child.stdout!.on('data', (b: Buffer) => (out = (out + b).slice(-200_000)));
  child.stderr!.on('data', (b: Buffer) => (out = (out + b).slice(-200_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    await until(`${argv.join(' ')} ready`, () => ready.test(out) || child.exitCode !== null, 30_000);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}; its output:\n${out}`);
  }
  const match = ready.exec(out);
  if (!match) {
    await stop();
    throw new Error(`${argv.join(' ')} exited:\n${out}`);
  }
  return { child, output: () => out, stop, match };
}

/** GET `path` from `source`; resolves when the status is `want`. */
export async function expectGet(host: string, port: number, path: string, source: string, want = 200): Promise<void> {
  const { default: http } = await import('node:http');
  await new Promise<void>((resolve, reject) => {
    const req = http.get({ host, port, path, localAddress: source, agent: false }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === want ? resolve() : reject(new Error(`GET ${path}: ${res.statusCode}, expected ${want}`)),
      );
    });
    req.on('error', reject);
  });
}

/** A server process listening on 127.0.0.1:`port`, attacked from loopback addresses. */
export function loopbackTarget(
  s: Started,
  port: number,
  o: { normalPath: string; bodies: BodyRoute[]; prefixes: string[]; cleanup: () => void },
): Target {
  return {
    pid: s.child.pid!,
    host: '127.0.0.1',
    port,
    sources: LOOPBACK_SOURCES,
    ...LIMITS,
    normal: (source) => expectGet('127.0.0.1', port, o.normalPath, source),
    bodies: o.bodies,
    prefixes: o.prefixes,
    output: s.output,
    stop: async () => {
      await s.stop();
      o.cleanup();
    },
  };
}
