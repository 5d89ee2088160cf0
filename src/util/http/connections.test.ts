// The connection guard's send timeout (as nginx's send_timeout) on real servers over loopback: a
// client that stops taking the answer it asked for is closed, one that takes it slowly is not, for
// node:http's answers, the fast lane's, and over TLS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { loopbackServerTls } from '../../../test/pki-fixtures.ts';
import {
  answerProgress,
  type ConnectionLimits,
  DEFAULT_LIMITS,
  guardConnections,
  HTTP_SERVER_OPTIONS,
} from './connections.ts';
import { addFastLane } from './fast-lane.ts';

const SEND_TIMEOUT_MS = 1_000;
/** One answer, written at once: its write completes only when the client has taken all of it. */
const LARGE = Buffer.alloc(16 * 1024 * 1024, 'l');
/**
 * An answer whose write completes at once (the kernel takes it all) but which a client that reads
 * nothing leaves mostly unsent: the connection is idle, yet owes bytes.
 */
const SMALL = Buffer.alloc(2 * 1024 * 1024, 'm');
/** Chunks of a streamed answer, more than loopback's socket buffers hold. */
const STREAM_CHUNKS = 1024;
const CHUNK = Buffer.alloc(64 * 1024, 's');

interface Served {
  port: number;
  /** Resolves when the server's end of the connection from client port `port` has closed. */
  closedByServer(port: number): Promise<void>;
  /** Requests for `/hold` received. */
  held(): number;
  close(): Promise<void>;
}

/**
 * node:http answers `/small` (SMALL), `/whole` (LARGE in one write), `/stream` (64 MiB in chunks, as a file is
 * piped), `/endless` (chunks until the client goes) and `/hold` (never: a request still being
 * worked on); the fast lane answers `/lane` (LARGE). Head timeout short, so that only the send
 * timeout can be what keeps a busy connection open or closes it.
 */
async function serve(tlsOptions?: tls.SecureContextOptions, limits?: Partial<ConnectionLimits>): Promise<Served> {
  let held = 0;
  const handler: http.RequestListener = (req, res) => {
    if (req.url === '/hold') return void held++;
    if (req.url === '/endless') {
      res.writeHead(200);
      Readable.from(
        (function* () {
          for (;;) yield CHUNK;
        })(),
      ).pipe(res);
      return;
    }
    if (req.url === '/small') {
      res.writeHead(200, { 'content-length': SMALL.length });
      res.end(SMALL);
      return;
    }
    if (req.url === '/whole') {
      res.writeHead(200, { 'content-length': LARGE.length });
      res.end(LARGE);
      return;
    }
    res.writeHead(200, { 'content-length': STREAM_CHUNKS * CHUNK.length });
    Readable.from(
      (function* () {
        for (let i = 0; i < STREAM_CHUNKS; i++) yield CHUNK;
      })(),
    ).pipe(res);
  };
  const server = tlsOptions
    ? https.createServer({ ...HTTP_SERVER_OPTIONS, ...tlsOptions }, handler)
    : http.createServer(HTTP_SERVER_OPTIONS, handler);
  const guard = guardConnections(server, [server], {
    ...DEFAULT_LIMITS,
    requestHeadMs: 200,
    sendTimeoutMs: SEND_TIMEOUT_MS,
    ...limits,
  });
  addFastLane<string>(server, {
    guard,
    onDone: () => {},
    route: (r) =>
      r.target === '/lane' ? { headers: { 'content-type': 'text/plain' }, body: LARGE, result: '' } : undefined,
  });
  const closed = new Map<number, Promise<void>>();
  server.on('connection', (socket: net.Socket) => {
    closed.set(socket.remotePort!, new Promise((r) => socket.once('close', () => r())));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    held: () => held,
    closedByServer: async (port) => {
      while (!closed.has(port)) await new Promise((r) => setImmediate(r));
      await closed.get(port);
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function connect(port: number, secure: boolean): Promise<net.Socket> {
  if (!secure) {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    return socket;
  }
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  await new Promise((r) => socket.once('secureConnect', r));
  return socket;
}

const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`;

/**
 * Asks for `target` and takes nothing of the answer until the server has closed the connection:
 * resolves with the time that took, and what the client then received.
 */
async function stall(
  s: Served,
  secure: boolean,
  target: string,
): Promise<{ ms: number; received: number; error?: string }> {
  const socket = await connect(s.port, secure);
  socket.pause();
  let error: string | undefined;
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
  const start = performance.now();
  socket.write(get(target));
  await s.closedByServer(socket.localPort!);
  const ms = performance.now() - start;
  // Only now does the client read: what the kernel held for it, then the reset.
  let received = 0;
  socket.on('data', (d: Buffer) => (received += d.length));
  await new Promise<void>((r) => {
    socket.once('close', () => r());
    socket.resume();
  });
  return { ms, received, error };
}

/**
 * Asks for `target` and reads its answer at most `perTick` bytes every 15 ms, until `bodyLength`
 * bytes of its body have come: resolves with the head, the body's length and the time it took, or
 * rejects if the connection closes first.
 */
async function readSlowly(port: number, secure: boolean, target: string, bodyLength: number, perTick: number) {
  const socket = await connect(port, secure);
  socket.pause();
  let closed = false;
  socket.once('close', () => (closed = true));
  const start = performance.now();
  socket.write(get(target));
  /** The head as it arrives, then (once whole) the body's length: only its length is kept. */
  let head = Buffer.alloc(0);
  let headDone = false;
  let body = 0;
  try {
    while (!headDone || body < bodyLength) {
      if (closed) throw new Error(`closed by the server after ${body} bytes of the body`);
      // This tick's share: no more than `perTick`, and what is buffered (read(n) waits for n).
      const want = Math.min(perTick, socket.readableLength);
      const piece = want > 0 ? (socket.read(want) as Buffer | null) : (socket.read() as Buffer | null);
      if (piece && headDone) body += piece.length;
      else if (piece) {
        head = Buffer.concat([head, piece]);
        const end = head.indexOf('\r\n\r\n');
        if (end !== -1) {
          headDone = true;
          body = head.length - end - 4;
          head = head.subarray(0, end + 4);
        }
      }
      await new Promise((r) => setTimeout(r, 15));
    }
  } finally {
    socket.destroy();
  }
  return { head: head.toString('latin1'), body, ms: performance.now() - start };
}

for (const secure of [false, true]) {
  describe(`send timeout${secure ? ', over TLS' : ''}`, () => {
    let dir: string;
    let s: Served;
    before(async () => {
      if (!secure) return void (s = await serve());
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-connections-'));
      s = await serve(await loopbackServerTls(dir));
    });
    after(async () => {
      await s?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    for (const target of ['/stream', '/whole', '/lane', '/small']) {
      it(`resets a client that takes none of its answer (${target})`, { timeout: 30_000 }, async () => {
        const { ms, received, error } = await stall(s, secure, target);
        assert.ok(ms >= SEND_TIMEOUT_MS, `closed after ${Math.round(ms)} ms, before the send timeout`);
        assert.equal(error, 'ECONNRESET', 'reset, so that the kernel holds nothing more for it');
        assert.ok(received < (target === '/small' ? SMALL : LARGE).length, `received all ${received} bytes`);
      });
    }

    for (const target of ['/whole', '/lane']) {
      it(`lets a client read one large write for longer than the send timeout (${target})`, {
        timeout: 60_000,
      }, async () => {
        const r = await readSlowly(s.port, secure, target, LARGE.length, 64 * 1024);
        assert.match(r.head, /^HTTP\/1\.1 200 /);
        assert.equal(r.body, LARGE.length);
        // What makes this test mean something: the one write took longer than the timeout.
        assert.ok(r.ms > SEND_TIMEOUT_MS, `read in ${Math.round(r.ms)} ms; the test must read slower`);
      });
    }
  });
}

/**
 * A client that asks for `/endless` and takes it from the kernel at `bytesPerSecond` at most, in
 * the pieces the kernel hands over, until stopped: `stop()` resolves with what it read and how its
 * connection ended. (Reading a buffer Node filled ahead would leave the kernel's untouched, and
 * the connection stalled, for as long as that buffer lasts.)
 */
async function reader(port: number, bytesPerSecond: number) {
  const socket = await connect(port, false);
  let received = 0;
  let error: string | undefined;
  let closed = false;
  let resumeTimer: NodeJS.Timeout | undefined;
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
  socket.once('close', () => {
    closed = true;
    clearTimeout(resumeTimer);
  });
  const start = performance.now();
  let answered: () => void;
  const firstData = new Promise<void>((r) => (answered = r));
  socket.on('data', (d: Buffer) => {
    received += d.length;
    answered();
    const ahead = received / bytesPerSecond - (performance.now() - start) / 1000;
    if (ahead > 0) {
      socket.pause();
      resumeTimer = setTimeout(() => socket.resume(), ahead * 1000);
    }
  });
  socket.write(get('/endless'));
  // Answered, so busy: until then the connection is idle, and the first to give way.
  await firstData;
  return {
    get closed() {
      return closed;
    },
    stop: () => {
      clearTimeout(resumeTimer);
      socket.destroy();
      return { received, closedByServer: closed, error };
    },
  };
}

/** Whether a new connection is answered: it asks for `/small` and reads all of it. */
async function answered(port: number): Promise<boolean> {
  const socket = await connect(port, false);
  let received = 0;
  socket.on('error', () => {});
  socket.on('data', (d: Buffer) => (received += d.length));
  socket.write(get('/small'));
  await new Promise((r) => socket.once('close', r).once('end', r));
  socket.destroy();
  return received > SMALL.length;
}

describe('a full server', () => {
  // Three connections at most; a client must take at least 4 MiB/s of its answer to keep its
  // connection when they are all taken, measured over each SEND_TIMEOUT_MS.
  const limits = { maxConnections: 3, maxPerAddress: 3, minRateWhenFull: 4 * 1024 * 1024 };
  let s: Served;
  before(async () => (s = await serve(undefined, limits)));
  after(() => s?.close());

  it('resets the client taking its answer slowest, below the floor, to let a new one in', {
    timeout: 60_000,
  }, async () => {
    // 1 MB/s: a trickle for this floor, yet its acknowledgements move (in the steps its receive
    // window opens by, a few hundred kB on loopback) well within the send timeout, so only the
    // floor can be what resets one.
    const trickles = await Promise.all([0, 1, 2].map(() => reader(s.port, 1_000_000)));
    try {
      // Refused while the trickles are unmeasured, then answered once one is judged slow.
      let tries = 0;
      while (!(await answered(s.port))) {
        tries++;
        await new Promise((r) => setTimeout(r, 100));
      }
      // The reset reaches a reader only once it has read what its buffers hold.
      while (!trickles.some((t) => t.closed)) await new Promise((r) => setTimeout(r, 50));
      const ended = trickles.map((t) => t.stop());
      const reset = ended.filter((e) => e.closedByServer);
      assert.equal(reset.length, 1, 'one slow reader gave way, the others kept their connections');
      assert.equal(reset[0].error, 'ECONNRESET', 'reset: the kernel holds nothing more for it');
      assert.ok(tries > 0, 'the new connection got in at once: the trickles were not yet judged');
    } finally {
      for (const t of trickles) t.stop();
    }
  });

  it('keeps clients reading above the floor, and requests still being worked on', { timeout: 60_000 }, async () => {
    // As fast as the machine allows: far above the floor even on a busy machine.
    const fast = await Promise.all([0, 1].map(() => reader(s.port, Infinity)));
    const hold = await connect(s.port, false);
    hold.on('error', () => {});
    hold.write(get('/hold'));
    try {
      // The held request is busy once node:http has taken its head: until then it is idle.
      while (s.held() === 0) await new Promise((r) => setTimeout(r, 10));
      // Four measurements of the readers' rate: a new connection is refused throughout.
      const until = performance.now() + 4 * SEND_TIMEOUT_MS;
      while (performance.now() < until) {
        assert.equal(await answered(s.port), false, 'a new connection displaced one reading fast, or a held request');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(hold.destroyed || hold.readableEnded, false, 'the held request lost its connection');
      for (const f of fast) assert.equal(f.closed, false, 'a fast reader lost its connection');
    } finally {
      hold.destroy();
      for (const f of fast) f.stop();
    }
  });
});

describe('answerProgress', () => {
  it('counts what the client acknowledged: it moves as the client reads, while the kernel takes no more', {
    timeout: 60_000,
  }, async () => {
    let sender: net.Socket | undefined;
    const server = net.createServer((socket) => {
      sender = socket;
      socket.on('error', () => {});
      socket.write(LARGE);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.pause();
    const poll = () => new Promise((r) => setTimeout(r, 20));
    try {
      while (!sender) await poll();
      const s = sender;
      const queued = () => (s as unknown as { _handle: { writeQueueSize: number } })._handle.writeQueueSize;
      /** What the kernel has taken of the write: it moves only when its send buffer has room for a third more. */
      const kernelTook = () => (s as unknown as { _bytesDispatched: number })._bytesDispatched - queued();
      // Wait for the client's buffers to fill: progress flat for five looks in a row.
      let last = -1;
      for (let flat = 0; flat < 5; ) {
        const now = answerProgress(s);
        assert.notEqual(now, undefined, 'bytes wait on the client');
        flat = now === last ? flat + 1 : 0;
        last = now!;
        await poll();
      }
      assert.ok(queued() > 0, 'the kernel holds all it will take');
      const kernelBefore = kernelTook();
      // The client reads 256 KiB: far less than the third of a send buffer the kernel waits for.
      for (let read = 0; read < 256 * 1024; ) {
        const piece = client.read() as Buffer | null;
        if (piece) read += piece.length;
        else await poll();
      }
      while (answerProgress(s) === last) await poll();
      assert.ok(answerProgress(s)! > last);
      assert.equal(kernelTook(), kernelBefore, 'the kernel took more: the test read too much');
    } finally {
      client.destroy();
      server.close();
    }
  });
});
