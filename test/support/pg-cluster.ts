// A throwaway PostgreSQL server for tests: initdb into a temporary directory, listening on
// 127.0.0.1 at a free port and on a unix socket in that directory, durability off (the data dies
// with the test). The PostgreSQL half of the inventory suite runs against it, so the store is
// tested against a real server rather than a mock. Needs Debian's postgresql package.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface PgCluster {
  /** A URL of a new, empty database on the server (over TCP). */
  createDatabase(name: string): Promise<string>;
  /** The same database, reached through the unix socket. */
  socketUrl(name: string): string;
  /** Its unix socket directory and port, as a local client (psql -h DIR -p PORT) reaches it. */
  socketDir: string;
  port: number;
  /** How long initdb and the start took, in milliseconds. */
  startupMs: number;
  stop(): void;
}

/** The bin directory of the newest PostgreSQL installed, or undefined. */
export function findPgBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  const bin = versions
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => path.join(root, v, 'bin'))
    .find((b) => fs.existsSync(path.join(b, 'initdb')) && fs.existsSync(path.join(b, 'pg_ctl')));
  return bin;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startPgCluster(bin: string): Promise<PgCluster> {
  const started = performance.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-pg-'));
  const data = path.join(dir, 'data');
  // PostgreSQL refuses to run as root: as root, run it as the postgres user, which owns the directory.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    fs.chownSync(dir, uid, gid);
  }
  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]]
      : [path.join(bin, tool), args];
    return execFileSync(cmd, argv, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  let running = false;
  const stop = () => {
    if (running) {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone
      }
      running = false;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    process.removeListener('exit', stop);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
  // pg_ctl detaches the server: a test run that ends early (exit, Ctrl-C, a runner's timeout)
  // must still stop it. Only SIGKILL can leave one behind.
  const onSignal = (signal: NodeJS.Signals) => {
    stop();
    process.kill(process.pid, signal);
  };
  process.once('exit', stop);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
    const port = await freePort();
    const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    running = true;
    run('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-o', opts, 'start']);
    const tcp = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
    const startupMs = performance.now() - started;
    return {
      startupMs,
      socketDir: dir,
      port,
      socketUrl: (db) => `postgres://postgres@/${db}?host=${encodeURIComponent(dir)}&port=${port}`,
      async createDatabase(name) {
        const client = new pg.Client({ connectionString: tcp('postgres') });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
        } finally {
          await client.end();
        }
        return tcp(name);
      },
      stop,
    };
  } catch (err) {
    const log = fs.existsSync(path.join(dir, 'server.log'))
      ? fs.readFileSync(path.join(dir, 'server.log'), 'utf8')
      : '';
    stop();
    throw new Error(`could not start a test PostgreSQL server: ${(err as Error).message}\n${log}`);
  }
}
