// Shared machinery for the benchmarks in bench/: scratch file systems on loop devices, timed
// commands, servers (ours and nginx) on loopback, result files (measuring itself: measure.ts).
// Every resource is registered with a Cleanup as soon as it exists, so a failing or interrupted
// benchmark still unmounts, detaches and stops everything it started.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { failingInstaller } from '../test/helpers.ts';

export const repoRoot = path.resolve(import.meta.dirname, '..');
export const cradleBin = path.join(repoRoot, 'bin', 'cradle');
export const resultsDir = path.join(import.meta.dirname, 'results');
/** Measured repetitions per side (after one warm-up each); BENCH_RUNS overrides. */
export const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));

/** Undo actions, run last-registered first; one failing does not stop the others. */
export class Cleanup {
  private readonly actions: { what: string; fn: () => unknown }[] = [];
  defer(what: string, fn: () => unknown): void {
    this.actions.push({ what, fn });
  }
  async run(): Promise<void> {
    while (this.actions.length) {
      const { what, fn } = this.actions.pop()!;
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup: ${what} failed: ${(err as Error).message}`);
      }
    }
  }
}

/** The code a benchmark measured: taken at its start (the work tree may change while it runs). */
let startedCode: ReturnType<typeof codeVersion> | undefined;

/** Runs a benchmark body with a Cleanup that runs on success, failure, SIGINT and SIGTERM. */
export async function runBenchmark(name: string, body: (c: Cleanup) => Promise<void>): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error(`${name}: benchmarks mount loop devices and must run as root`);
  const v = (startedCode = codeVersion());
  console.log(
    `${name}: code ${v.commit}${v.modified.length ? ` + uncommitted changes to ${v.modified.map((l) => l.slice(3)).join(', ')}` : ''}`,
  );
  const c = new Cleanup();
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`${name}: ${sig}, cleaning up`);
    void c.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await body(c);
  } catch (err) {
    console.error(`${name} FAILED: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  } finally {
    await c.run();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A temporary directory under /var/tmp (on disk, not tmpfs), removed at cleanup. */
export function tempDir(c: Cleanup, prefix: string): string {
  const dir = fs.mkdtempSync(path.join('/var/tmp', `cradle-bench-${prefix}-`));
  fs.chmodSync(dir, 0o755); // nginx workers run as nobody and must traverse it
  c.defer(`rm -rf ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface CmdResult {
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a program to completion; the time covers process start to exit. Throws on failure. */
export function exec(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) resolve({ stdout, stderr, seconds });
      else reject(new Error(`'${cmd} ${args.join(' ')}' failed (${code ?? signal}): ${stderr.trim().slice(-2000)}`));
    });
  });
}

/** Runs a shell pipeline under bash with pipefail, so a failing stage fails the measurement. */
export function shell(script: string): Promise<CmdResult> {
  return exec('bash', ['-o', 'pipefail', '-c', script]);
}

/** Quotes a path for shell scripts. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A scratch ext4 file system on a loop device. `format()` makes it anew: the root fs here is
 * mounted with `discard`, and mass deletions right before a measurement make the next file
 * creations several times slower, so benchmarks re-mkfs instead of deleting. The backing file is
 * fallocated (not sparse) and mkfs runs with nodiscard and without lazy init, so neither hole
 * punching on the host nor the background inode-table zeroing of ext4lazyinit lands in a timing.
 */
export class LoopFs {
  readonly image: string;
  readonly mnt: string;
  private mounted = false;
  private constructor(image: string, mnt: string) {
    this.image = image;
    this.mnt = mnt;
  }

  static async create(c: Cleanup, parent: string, name: string, sizeMiB: number): Promise<LoopFs> {
    const lfs = new LoopFs(path.join(parent, `${name}.img`), path.join(parent, name));
    fs.mkdirSync(lfs.mnt);
    await exec('fallocate', ['-l', `${sizeMiB}M`, lfs.image]);
    c.defer(`umount ${lfs.mnt}`, () => lfs.unmount());
    await lfs.format();
    return lfs;
  }

  async format(): Promise<void> {
    await this.unmount();
    await exec('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', this.image]);
    await this.mount();
  }

  /** Unmount and mount again: drops this file system's own page cache (not the backing file's). */
  async remount(): Promise<void> {
    await this.unmount();
    await this.mount();
  }

  private async mount(): Promise<void> {
    // -o loop sets autoclear: the loop device goes away with the unmount.
    await exec('mount', ['-o', 'loop', this.image, this.mnt]);
    this.mounted = true;
  }

  async unmount(): Promise<void> {
    if (!this.mounted) return;
    await exec('umount', [this.mnt]);
    this.mounted = false;
  }

  path(...parts: string[]): string {
    return path.join(this.mnt, ...parts);
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Stops a child we started, by its pid: SIGTERM, then SIGKILL if it lingers. */
export function stopChild(child: ChildProcess, what: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      console.error(`${what} did not stop on SIGTERM; killing it`);
      child.kill('SIGKILL');
    }, 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts `cradle imageserver` on a free loopback port as its own process; returns its URL. */
export async function startCradleServer(c: Cleanup, store: string): Promise<{ url: string; pid: number }> {
  const child = spawn(cradleBin, ['imageserver', '--store', store, '--port', '0', '--listen', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  c.defer(`stop imageserver ${child.pid}`, () => stopChild(child, 'imageserver'));
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (b: Buffer) => {
      text += b.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(text); // in its start-up line, plain or JSON log
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`imageserver exited (${code}) before listening: ${text}`)));
  });
  child.stdout!.resume();
  return { url, pid: child.pid! };
}

/**
 * Starts nginx serving `root` as static files on a free loopback port, in the foreground with a
 * private config, pid file and error log (access log off, sendfile on).
 */
export async function startNginx(c: Cleanup, root: string, workDir: string): Promise<{ url: string; pid: number }> {
  const dir = path.join(workDir, 'nginx');
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `daemon off;
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  keepalive_requests 1000000;  # our server never closes an idle-free keep-alive connection either
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`,
  );
  const child = spawn('nginx', ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', conf], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  c.defer(`stop nginx ${child.pid}`, () => stopChild(child, 'nginx'));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}); see ${dir}/error.log`);
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100) throw new Error('nginx did not start listening within 5 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, pid: child.pid! };
}

/**
 * An installer that has failed at once (it refuses a real install on a system that runs from a
 * disk) and waits an hour with its status port open on loopback: the state an operator uses the
 * port in. In a mount namespace of its own; stopped at cleanup. Resolves to the port.
 */
export async function startWaitingInstaller(c: Cleanup, work: string, extra: string[] = []): Promise<number> {
  const argv = failingInstaller(work, { failureWait: 3600, status: true }, extra);
  const installer = spawn(argv[0], argv.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' },
  });
  c.defer('stop the installer', () => stopChild(installer, 'installer'));
  let err = '';
  installer.stderr!.on('data', (b: Buffer) => (err += b));
  const listening = /status page on http:\/\/127\.0\.0\.1:(\d+)\//;
  for (let i = 0; !listening.test(err); i++) {
    if (i > 300) throw new Error(`the installer did not open its status port: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Number(listening.exec(err)![1]);
}

/**
 * CPU seconds (user + system) used so far by the given processes; with `children`, also by the
 * children they have reaped (for commands this process ran and waited for).
 */
export function cpuSeconds(pids: number[], children = false): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 of proc(5)
      ticks += Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
    } catch {
      // gone: counts nothing
    }
  }
  return ticks / 100; // USER_HZ
}

/** A process and its direct children (nginx: the master and its workers). */
export function withChildren(pid: number): number[] {
  const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return [pid, ...(text ? text.split(' ').map(Number) : [])];
}

/** The commit measured, and the source files that differed from it (figures depend on both). */
export function codeVersion(): { commit: string; modified: string[] } {
  const git = (args: string[]) => execFileSync('git', ['-C', repoRoot, ...args], { encoding: 'utf8' }).trimEnd();
  try {
    return {
      commit: git(['rev-parse', '--short', 'HEAD']),
      modified: git(['status', '--porcelain', '--', 'src', 'bin', 'package.json']).split('\n').filter(Boolean),
    };
  } catch {
    return { commit: 'unknown', modified: [] };
  }
}

/** Writes bench/results/<name>.json with the machine's description alongside the figures. */
export function writeResults(name: string, data: Record<string, unknown>): string {
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name}.json`);
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
  };
  fs.writeFileSync(
    file,
    `${JSON.stringify(
      { name, date: new Date().toISOString(), code: startedCode ?? codeVersion(), machine, runs: RUNS, ...data },
      null,
      2,
    )}\n`,
  );
  return file;
}

/** Regular files under a directory and the sum of their sizes, each hard-linked inode once. */
export function treeBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const seen = new Set<number>();
  const walk = (d: string) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile()) {
        const st = fs.lstatSync(p);
        if (st.nlink > 1 && seen.has(st.ino)) continue;
        seen.add(st.ino);
        files++;
        bytes += st.size;
      }
    }
  };
  walk(dir);
  return { files, bytes };
}

/** Bytes a file system has in use (statfs), to compare on-disk footprints including metadata. */
export function usedBytes(mnt: string): number {
  const s = fs.statfsSync(mnt);
  return (s.blocks - s.bfree) * s.bsize;
}

/** GNU tar flags that carry what a Cradle image carries (holes, xattrs incl. capabilities, ACLs, ids). */
export const TAR_CREATE = `--sparse --xattrs --xattrs-include='*' --acls --numeric-owner`;
export const TAR_EXTRACT = `--xattrs --xattrs-include='*' --acls --numeric-owner --same-owner -p`;

/** A network namespace with its loopback up, deleted at cleanup (servers that need port 69 live there). */
export async function benchNamespace(c: Cleanup, ns: string): Promise<void> {
  await exec('ip', ['netns', 'add', ns]);
  c.defer(`ip netns del ${ns}`, () => exec('ip', ['netns', 'del', ns]));
  await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

/** dnsmasq as a TFTP server on 127.0.0.1:69 inside `ns`, serving `root`; stopped at cleanup. */
export async function startDnsmasqTftp(
  c: Cleanup,
  ns: string,
  root: string,
  workDir: string,
  extra: string[] = [],
): Promise<ChildProcess> {
  const log = path.join(workDir, 'dnsmasq.log');
  const dnsmasq = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      '/usr/sbin/dnsmasq',
      '--keep-in-foreground',
      '--no-daemon',
      '--conf-file=/dev/null',
      '--user=root',
      '--port=0',
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--enable-tftp',
      `--tftp-root=${root}`,
      ...extra,
      `--pid-file=${path.join(workDir, 'dnsmasq.pid')}`,
      `--log-facility=${log}`,
    ],
    { stdio: 'ignore' },
  );
  c.defer(`stop dnsmasq ${dnsmasq.pid}`, () => stopChild(dnsmasq, 'dnsmasq'));
  for (let i = 0; !(fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('TFTP root is')); i++) {
    if (dnsmasq.exitCode !== null || i > 200)
      throw new Error(`dnsmasq did not start: ${fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : 'no log'}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return dnsmasq;
}

/** A TFTP root holding `bench.bin` of `bytes` random bytes (world-readable: dnsmasq drops root); its sha256. */
export function tftpBenchRoot(workDir: string, bytes: number): { root: string; digest: string } {
  const root = path.join(workDir, 'root');
  fs.mkdirSync(root, { mode: 0o755 });
  const content = randomBytes(bytes);
  fs.writeFileSync(path.join(root, 'bench.bin'), content, { mode: 0o644 });
  return { root, digest: createHash('sha256').update(content).digest('hex') };
}
