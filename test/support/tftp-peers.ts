// Test helpers for the TFTP server: the real peers (curl, busybox, tftp-hpa) run as child processes
// against 127.0.0.1, a raw client that speaks packets directly (to break the protocol on purpose),
// and a UDP proxy that loses packets. Peers run asynchronously: the server under test lives in the
// test's own event loop, so a synchronous exec would freeze it.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { decodePacket, type Decoded } from '../../src/protocols/tftp/packets.ts';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (b: Buffer) => (stdout += b));
    child.stderr.on('data', (b: Buffer) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The three peers: each fetches `file` into `out`; ok means it says so (tftp-hpa exits 0 on errors). */
export const peers = {
  curl: async (port: number, file: string, out: string, blksize?: number) => {
    const r = await run('curl', [
      '-sS',
      ...(blksize ? ['--tftp-blksize', String(blksize)] : ['--tftp-no-options']),
      '-o',
      out,
      `tftp://127.0.0.1:${port}/${file}`,
    ]);
    return { ok: r.code === 0, detail: `curl exit ${r.code}: ${r.stderr.trim()}` };
  },
  busybox: async (port: number, file: string, out: string, blksize?: number) => {
    const r = await run('busybox', [
      'tftp',
      '-g',
      '-r',
      file,
      '-l',
      out,
      ...(blksize ? ['-b', String(blksize)] : []),
      '127.0.0.1',
      String(port),
    ]);
    return { ok: r.code === 0, detail: `busybox exit ${r.code}: ${r.stderr.trim()}` };
  },
  hpa: async (port: number, file: string, out: string, mode: 'binary' | 'ascii' = 'binary') => {
    const r = await run('tftp', ['127.0.0.1', String(port), '-m', mode, '-c', 'get', file, out]);
    return {
      ok: r.code === 0 && !/Error code|Transfer timed out/.test(r.stderr + r.stdout),
      detail: `tftp-hpa exit ${r.code}: ${(r.stderr + r.stdout).trim()}`,
    };
  },
};

export interface Reply {
  packet: Decoded;
  /** The port it came from: the transfer ID. */
  port: number;
}

/** A UDP socket on 127.0.0.1 that sends whatever it is given and queues what comes back. */
export class RawClient {
  readonly sock = dgram.createSocket('udp4');
  readonly replies: Reply[] = [];
  private waiter: (() => void) | undefined;

  /** A client on `address` (any of 127/8: each is another client to the server). */
  static async open(address = '127.0.0.1'): Promise<RawClient> {
    const c = new RawClient();
    c.sock.on('error', () => {}); // ICMP from a transfer socket already closed: irrelevant here
    c.sock.on('message', (msg, r) => {
      c.replies.push({ packet: decodePacket(msg), port: r.port });
      c.waiter?.();
    });
    await new Promise<void>((r) => c.sock.bind(0, address, r));
    return c;
  }

  get port(): number {
    return this.sock.address().port;
  }

  /** Resolves once the datagram is out (closing the socket before that would drop it). */
  send(msg: Buffer, port: number): Promise<void> {
    return new Promise((resolve) => this.sock.send(msg, port, '127.0.0.1', () => resolve()));
  }

  /** The next reply not yet taken, or undefined after `ms` without one. */
  async next(ms = 1000): Promise<Reply | undefined> {
    const deadline = performance.now() + ms;
    while (this.replies.length === 0) {
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.replies.shift();
  }

  /** Everything that arrives within `ms`. */
  async drain(ms: number): Promise<Reply[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.replies.splice(0);
  }

  close(): void {
    this.sock.close();
  }
}

interface Route {
  up: Promise<dgram.Socket>;
  down?: Promise<dgram.Socket>;
  serverTid?: number;
}

/**
 * A UDP proxy on 127.0.0.1 between clients and a TFTP server that drops every `every`-th datagram
 * in each direction (counted separately). Per client it keeps one socket towards the server and
 * answers the client from one port of its own, so each side sees a consistent transfer ID.
 */
export class LossyProxy {
  readonly dropped = { up: 0, down: 0 };
  port = 0;
  private readonly every: number;
  private readonly target: number;
  private readonly front = dgram.createSocket('udp4');
  private readonly sockets: dgram.Socket[] = [this.front];
  private readonly routes = new Map<number, Route>();
  private count = { up: 0, down: 0 };
  private readonly lost = new Set<string>();

  constructor(target: number, every: number) {
    this.target = target;
    this.every = every;
  }

  async start(): Promise<this> {
    this.front.on('message', (m, r) => void this.fromClient(m, r.port, true));
    await new Promise<void>((r) => this.front.bind(0, '127.0.0.1', r));
    this.port = this.front.address().port;
    return this;
  }

  /**
   * Each distinct datagram is lost at most once: with strictly periodic loss, a resend of exactly
   * `every` packets would lose the same block every time, a livelock no real network produces.
   */
  private lose(dir: 'up' | 'down', m: Buffer, clientPort: number): boolean {
    if (++this.count[dir] % this.every) return false;
    const key = `${dir} ${clientPort} ${m.subarray(0, 4).toString('hex')} ${m.length}`;
    if (this.lost.has(key)) return false;
    this.lost.add(key);
    this.dropped[dir]++;
    return true;
  }

  private async socket(onMessage: (m: Buffer, port: number) => void): Promise<dgram.Socket> {
    const s = dgram.createSocket('udp4');
    this.sockets.push(s);
    s.on('error', () => {});
    s.on('message', (m, r) => onMessage(m, r.port));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return s;
  }

  private async fromClient(m: Buffer, clientPort: number, request: boolean): Promise<void> {
    let route = this.routes.get(clientPort);
    if (!route) {
      const r: Route = { up: this.socket((reply, port) => void this.fromServer(r, reply, port, clientPort)) };
      this.routes.set(clientPort, (route = r));
    }
    if (this.lose('up', m, clientPort)) return;
    const up = await route.up;
    // Requests go to the server's listening port, the rest to the transfer it answered from.
    up.send(m, request || route.serverTid === undefined ? this.target : route.serverTid, '127.0.0.1');
  }

  private async fromServer(route: Route, m: Buffer, port: number, clientPort: number): Promise<void> {
    route.serverTid ??= port;
    route.down ??= this.socket((fromClient) => void this.fromClient(fromClient, clientPort, false));
    if (this.lose('down', m, clientPort)) return;
    (await route.down).send(m, clientPort, '127.0.0.1');
  }

  close(): void {
    for (const s of this.sockets.splice(0)) s.close();
  }
}
