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
import { answerProgress, DEFAULT_LIMITS, guardConnections, HTTP_SERVER_OPTIONS } from './connections.ts';
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
  close(): Promise<void>;
}

/**
 * node:http answers `/small` (SMALL), `/whole` (LARGE in one write) and `/stream` (64 MiB in chunks, as a file is
 * piped); the fast lane answers `/lane` (LARGE). Head timeout short, so that only the send timeout
 * can be what keeps a busy connection open or closes it.
 */
async function serve(tlsOptions?: tls.SecureContextOptions): Promise<Served> {
  const handler: http.RequestListener = (req, res) => {
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
