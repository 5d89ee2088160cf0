// Network namespaces and processes for the DHCP server's integration test and benchmark.
// Every namespace name starts with the caller's prefix, which carries its pid, so namespaces left
// by a killed run can be recognised and removed; devices are created inside namespaces, never on
// the host.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const node = path.resolve(import.meta.dirname, '../../../../node_modules/.bin/node');
export const sh = (...args: string[]): string => execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
export const inNs = (ns: string, ...args: string[]): string => sh('ip', 'netns', 'exec', ns, ...args);

/** Deletes namespaces named `<base>-<pid>-…` whose pid is gone (an earlier run killed mid-way). */
export function removeStaleNamespaces(base: string): void {
  for (const line of sh('ip', 'netns', 'list').split('\n')) {
    const m = new RegExp(`^(${base}-(\\d+)-[\\w-]+)`).exec(line);
    if (m && !fs.existsSync(`/proc/${m[2]}`)) sh('ip', 'netns', 'del', m[1]);
  }
}

export function addNamespace(ns: string): void {
  sh('ip', 'netns', 'add', ns);
  sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
}

/** A veth pair made inside `nsA` (so it never exists on the host), its peer moved to `nsB`. */
export function veth(nsA: string, a: string, nsB: string, b: string, opts: { macA?: string; addrA?: string; addrB?: string; bridgeB?: string } = {}): void {
  sh('ip', '-n', nsA, 'link', 'add', a, ...(opts.macA ? ['address', opts.macA] : []), 'type', 'veth', 'peer', 'name', b, 'netns', nsB);
  if (opts.addrA) sh('ip', '-n', nsA, 'addr', 'add', opts.addrA, 'dev', a);
  if (opts.addrB) sh('ip', '-n', nsB, 'addr', 'add', opts.addrB, 'dev', b);
  if (opts.bridgeB) sh('ip', '-n', nsB, 'link', 'set', b, 'master', opts.bridgeB);
  sh('ip', '-n', nsA, 'link', 'set', a, 'up');
  sh('ip', '-n', nsB, 'link', 'set', b, 'up');
}

export function bridge(ns: string, name: string, addr: string): void {
  sh('ip', '-n', ns, 'link', 'add', name, 'type', 'bridge');
  sh('ip', '-n', ns, 'addr', 'add', addr, 'dev', name);
  sh('ip', '-n', ns, 'link', 'set', name, 'up');
}

export function deleteNamespaces(prefix: string): void {
  for (const line of sh('ip', 'netns', 'list').split('\n')) {
    const name = line.split(' ')[0];
    if (name.startsWith(prefix)) sh('ip', 'netns', 'del', name);
  }
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first output line matching `re` (also ones already printed). */
  waitFor: (re: RegExp, ms?: number) => Promise<string>;
  stop: () => Promise<number | null>;
}

/** Starts a long-running process in a namespace and waits for `ready` in its output. */
export async function startIn(ns: string, argv: string[], ready: RegExp, ms = 15_000): Promise<Proc> {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const line = text.split('\n').find((l) => w.re.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  const onData = (d: Buffer) => {
    text += d;
    check();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitFor = (re: RegExp, limit = 10_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${argv[0]}: no output matching ${re} within ${limit} ms:\n${text.slice(-3000)}`)), limit);
      waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      check();
    });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(guard);
    return code;
  };
  try {
    await Promise.race([waitFor(ready, ms), exited.then((c) => Promise.reject(new Error(`${argv[0]} exited ${c}: ${text}`)))]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, output: () => text, waitFor, stop };
}

/** Runs a program in a namespace to completion (`input` on its stdin): its exit code and output. */
export function runIn(ns: string, argv: string[], limitMs = 30_000, input?: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv]);
  child.stdin.end(input ?? '');
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const guard = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise((resolve) => child.on('close', (code) => (clearTimeout(guard), resolve({ code, out, err }))));
}
