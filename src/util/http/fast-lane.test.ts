// The fast lane in front of a real node:http (and node:https) server on loopback, driven by raw
// sockets so that pipelining, split heads, half-closes and slow readers are what the test says.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { loopbackServerTls } from '../../../test/pki-fixtures.ts';
import { type ConnectionLimits, DEFAULT_LIMITS, guardConnections, HTTP_SERVER_OPTIONS } from './connections.ts';
import { addFastLane, type LaneAnswer } from './fast-lane.ts';
import type { RequestRecord } from './listener.ts';
import type { SimpleRequest } from './simple-head.ts';

interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Collects whole responses (each with a Content-Length) from a socket, as they arrive. */
class Reader {
  /** Bytes received and not yet parsed, in the pieces they came in (joined only when needed). */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes the response being received needs in all (head and body), once its head is known. */
  private needed = 0;
  readonly responses: Response[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      this.parse();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }
  private parse() {
    while (this.buffered > 0 && this.buffered >= this.needed) {
      const bytes = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      this.chunks = [bytes];
      const end = bytes.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = bytes.toString('latin1', 0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      const length = Number(headers['content-length'] ?? 0);
      this.needed = end + 4 + length;
      if (bytes.length < this.needed) return;
      const body = bytes.toString('latin1', end + 4, end + 4 + length);
      const rest = bytes.subarray(end + 4 + length);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.needed = 0;
      this.responses.push({ status: Number(statusLine.split(' ')[1]), headers, body });
      this.wake();
    }
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once `n` responses have come, or rejects when the connection closes first. */
  async count(n: number): Promise<Response[]> {
    while (this.responses.length < n) {
      if (this.closed) throw new Error(`connection closed after ${this.responses.length} of ${n} responses`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return this.responses;
  }
  async close(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }
}

const BIG = Buffer.alloc(256 * 1024, 'b');
/** More than loopback's socket buffers hold: a client that does not read leaves most unsent. */
const HUGE = Buffer.alloc(64 * 1024 * 1024, 'h');

interface Served {
  port: number;
  lane: string[];
  /** Answers of `/hold/*` requests, each given when called. */
  held: (() => void)[];
  records: RequestRecord<string>[];
  server: http.Server;
  close(): Promise<void>;
}

/**
 * A server whose lane answers `/lane/*` (now), `/later/*` (after a turn of the event loop) and
 * `/hold/*` (when the test says), `/big` (256 KiB), `/huge` (64 MiB); node:http answers everything else with `node <method> <url>`.
 */
async function serve(limits: Partial<ConnectionLimits> = {}, tlsOptions?: tls.SecureContextOptions): Promise<Served> {
  const handler: http.RequestListener = (req, res) => {
    const body = `node ${req.method} ${req.url}`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const server = tlsOptions
    ? https.createServer({ ...HTTP_SERVER_OPTIONS, ...tlsOptions }, handler)
    : http.createServer(HTTP_SERVER_OPTIONS, handler);
  const guard = guardConnections(server, [server], { ...DEFAULT_LIMITS, ...limits });
  const lane: string[] = [];
  const held: (() => void)[] = [];
  const records: RequestRecord<string>[] = [];
  const answer = (r: SimpleRequest, body: Buffer): LaneAnswer<string> => ({
    headers: { 'x-lane': 'yes', 'content-type': 'text/plain' },
    body,
    result: r.target,
  });
  addFastLane<string>(server, {
    guard,
    onDone: (r) => records.push(r),
    route: (r) => {
      lane.push(`${r.method} ${r.target}`);
      if (r.target === '/big') return answer(r, BIG);
      if (r.target === '/huge') return answer(r, HUGE);
      if (r.target.startsWith('/lane/')) return answer(r, Buffer.from(`lane ${r.target}`));
      if (r.target.startsWith('/later/'))
        return new Promise((resolve) => setImmediate(() => resolve(answer(r, Buffer.from(`later ${r.target}`)))));
      if (r.target.startsWith('/hold/'))
        return new Promise((resolve) => held.push(() => resolve(answer(r, Buffer.from(`held ${r.target}`)))));
      if (r.target === '/throws') throw new Error('a route that fails');
      return undefined;
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    lane,
    held,
    records,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const get = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

async function connect(port: number): Promise<{ socket: net.Socket; reader: Reader }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  return { socket, reader: new Reader(socket) };
}

describe('fast lane', () => {
  let s: Served;
  before(async () => {
    s = await serve();
  });
  after(() => s.close());

  it('answers a simple GET itself, kept alive, with Date and Content-Length, and records it', async () => {
    const { socket, reader } = await connect(s.port);
    socket.write(get('/lane/a'));
    const [r] = await reader.count(1);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'lane /lane/a');
    assert.equal(r.headers['x-lane'], 'yes');
    assert.equal(r.headers.connection, 'keep-alive');
    assert.equal(r.headers['keep-alive'], 'timeout=5');
    assert.ok(Math.abs(Date.parse(r.headers.date) - Date.now()) < 60_000, r.headers.date);
    assert.equal(r.headers['content-length'], '12');
    assert.equal(s.records.at(-1)?.url, '/lane/a');
    assert.equal(s.records.at(-1)?.status, 200);
    assert.equal(s.records.at(-1)?.result, '/lane/a');
    socket.write(`HEAD /lane/b HTTP/1.1\r\nHost: t\r\n\r\n`);
    socket.write(get('/lane/c'));
    // HEAD states the length of what a GET would send, and sends nothing.
    const afterHead = await new Promise<Buffer>((resolve) => {
      let got = Buffer.alloc(0);
      const on = (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.includes('lane /lane/c')) {
          socket.off('data', on);
          resolve(got);
        }
      };
      socket.on('data', on);
    });
    assert.match(afterHead.toString(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*content-length: 12\r\n\r\nHTTP\/1\.1 200 OK/i);
    socket.destroy();
  });

  it('answers pipelined requests in order, handing the connection to node:http at the first it does not answer', async () => {
    const { socket, reader } = await connect(s.port);
    s.lane.length = 0;
    socket.write(
      get('/lane/1') + get('/later/2') + get('/lane/3') + get('/lane/4', 'Range: bytes=0-1\r\n') + get('/lane/5'),
    );
    const rs = await reader.count(5);
    assert.deepEqual(
      rs.map((r) => r.body),
      ['lane /lane/1', 'later /later/2', 'lane /lane/3', 'node GET /lane/4', 'node GET /lane/5'],
    );
    // After the hand-off the lane sees nothing more of the connection.
    assert.deepEqual(s.lane, ['GET /lane/1', 'GET /later/2', 'GET /lane/3']);
    socket.write(get('/lane/6'));
    assert.equal((await reader.count(6))[5].body, 'node GET /lane/6');
    socket.destroy();
  });

  it('leaves to node:http what its route declines or fails on, and what is not a simple request', async () => {
    for (const [request, body] of [
      [get('/declined'), 'node GET /declined'],
      [get('/throws'), 'node GET /throws'],
      [get('/lane/x', 'If-None-Match: "e"\r\n'), 'node GET /lane/x'],
      ['POST /lane/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi', 'node POST /lane/x'],
      ['GET /lane/x HTTP/1.0\r\n\r\n', 'node GET /lane/x'],
    ]) {
      const { socket, reader } = await connect(s.port);
      socket.write(request);
      assert.equal((await reader.count(1))[0].body, body, request);
      socket.destroy();
    }
    // Malformed or oversized: node:http's own refusals.
    for (const [request, status] of [
      [get('/lane/x', 'Bad Header\r\n'), 400],
      ['GET /lane/x HTTP/1.1\r\n\r\n', 400],
      [get('/lane/x', `X-Pad: ${'a'.repeat(20_000)}\r\n`), 431],
    ] as const) {
      const { socket, reader } = await connect(s.port);
      socket.write(request);
      assert.equal((await reader.count(1))[0].status, status, request.slice(0, 60));
      socket.destroy();
    }
  });

  it('answers a head that arrives in a few pieces; one trickling in byte by byte is node:http’s', async () => {
    const pieces = async (text: string, size: number, pauseMs: number) => {
      const { socket, reader } = await connect(s.port);
      socket.setNoDelay(true);
      for (let i = 0; i < text.length; i += size) {
        socket.write(text.slice(i, i + size));
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      const [r] = await reader.count(1);
      socket.destroy();
      return r.body;
    };
    const head = get('/lane/slow', `X-Pad: ${'p'.repeat(200)}\r\n`);
    assert.equal(await pieces(head, Math.ceil(head.length / 3), 20), 'lane /lane/slow');
    // The lane would scan the head again at every piece; node:http's parser reads each byte once.
    assert.equal(await pieces(head, 1, 2), 'node GET /lane/slow');
  });

  it('answers a head its client’s end cut short with node:http’s 400; blank lines before the end, nothing', async () => {
    const { socket, reader } = await connect(s.port);
    socket.end('GET /lane/x HTTP/1.1\r\nHo');
    const [r] = await reader.count(1);
    assert.equal(r.status, 400);
    await reader.close();
    const blank = await connect(s.port);
    blank.socket.end(`${get('/lane/y')}\r\n`);
    await blank.reader.close();
    assert.deepEqual(
      blank.reader.responses.map((x) => x.body),
      ['lane /lane/y'],
    );
  });

  it('answers what came before a client’s end, then ends the connection', async () => {
    const { socket, reader } = await connect(s.port);
    socket.end(get('/lane/a') + get('/later/b'));
    await reader.close();
    assert.deepEqual(
      reader.responses.map((r) => r.body),
      ['lane /lane/a', 'later /later/b'],
    );
  });

  it('a client that ends while its answers wait for it to read gets them, then the end; nothing fails', async () => {
    const errors: Error[] = [];
    const onClientError = (err: Error) => errors.push(err);
    s.server.on('clientError', onClientError);
    // However the connection ends, its socket must have someone listening for errors all along:
    // an error event with no listener stops the process.
    const unheard: string[] = [];
    const watch = (socket: net.Socket) => {
      for (const event of ['finish', 'end', 'close'])
        socket.once(event, () => {
          if (socket.listenerCount('error') === 0) unheard.push(event);
        });
    };
    s.server.on('connection', watch);
    try {
      const { socket, reader } = await connect(s.port);
      socket.pause();
      s.lane.length = 0;
      socket.write(get('/huge'));
      while (!s.lane.includes('GET /huge')) await new Promise((r) => setImmediate(r));
      // The lane waits for the client to read (64 MiB is more than loopback holds); meanwhile a second
      // request, one for node:http, and the end.
      socket.end(get('/huge') + get('/declined'));
      await new Promise((r) => setTimeout(r, 100));
      socket.resume();
      await reader.close();
      const bodies = reader.responses.map((r) => (r.body.length === HUGE.length ? 'huge' : r.body));
      // node:http answers the third only if it had it before the end (it ends a connection whose
      // client has ended, as the lane does): either way, in order and whole.
      assert.deepEqual(bodies.slice(0, 2), ['huge', 'huge']);
      assert.ok(bodies.length === 2 || bodies[2] === 'node GET /declined', JSON.stringify(bodies));
      assert.deepEqual(errors, []);
      assert.deepEqual(unheard, [], 'the socket had no error listener at these events');
    } finally {
      s.server.off('clientError', onClientError);
      s.server.off('connection', watch);
    }
  });

  it('stops reading while a client takes none of its answers, and answers all once it reads', async () => {
    const { socket, reader } = await connect(s.port);
    socket.pause(); // the client reads nothing
    s.lane.length = 0;
    const n = 400; // 100 MiB of answers
    socket.write(get('/big').repeat(n));
    // Wait until the lane has stopped asking its route (it answers no more until the client reads).
    let seen = -1;
    while (seen !== s.lane.length) {
      seen = s.lane.length;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(s.lane.length < n / 4, `the lane answered ${s.lane.length} of ${n} requests nobody read`);
    socket.resume();
    const rs = await reader.count(n);
    assert.ok(rs.every((r) => r.body.length === BIG.length));
    assert.equal(s.lane.length, n);
    socket.destroy();
  });
});

describe('fast lane, with the connection guard and the server’s close', () => {
  it('a request it answers gives the connection a new head timeout; an idle one is closed', async () => {
    const s = await serve({ requestHeadMs: 1_000 });
    try {
      const { socket, reader } = await connect(s.port);
      // Five requests 300 ms apart: longer than one head timeout from the accept, so the
      // connection lives only if each answer re-arms it.
      for (let i = 1; i <= 5; i++) {
        socket.write(get(`/lane/${i}`));
        await reader.count(i);
        await new Promise((r) => setTimeout(r, 300));
      }
      await reader.close(); // then, idle, the guard closes it
      assert.equal(reader.responses.length, 5);
    } finally {
      await s.close();
    }
  });

  it('a client reading an answer slowly is not timed out, nor evicted for a new connection', async () => {
    const s = await serve({ requestHeadMs: 500, maxConnections: 2 });
    try {
      const slow = await connect(s.port);
      slow.socket.pause(); // reads nothing for now
      slow.socket.write(get('/huge'));
      while (!s.lane.includes('GET /huge')) await new Promise((r) => setImmediate(r));
      // Longer than a head timeout, and two more connections for a server that holds two: the
      // second evicts the first, idle one, never the download.
      const others = [await connect(s.port), await connect(s.port)];
      await others[0].reader.close();
      await new Promise((r) => setTimeout(r, 1_500));
      slow.socket.resume();
      const [r] = await slow.reader.count(1);
      assert.equal(r.body.length, HUGE.length);
      for (const o of others) o.socket.destroy();
      slow.socket.destroy();
    } finally {
      await s.close();
    }
  });

  it('close() ends the lane’s idle connections at once, and a busy one after its answer', {
    timeout: 20_000,
  }, async () => {
    // A head timeout longer than the test's: what closes the connections is close() alone.
    const s = await serve({ requestHeadMs: 60_000 });
    try {
      const idle = await connect(s.port);
      idle.socket.write(get('/lane/a'));
      await idle.reader.count(1);
      const busy = await connect(s.port);
      busy.socket.write(get('/hold/b') + get('/lane/c'));
      while (!s.lane.includes('GET /hold/b')) await new Promise((r) => setImmediate(r));
      const closed = new Promise<void>((r) => s.server.close(() => r()));
      await idle.reader.close();
      assert.equal(busy.reader.closed, false);
      s.held[0]();
      await busy.reader.close();
      assert.deepEqual(
        busy.reader.responses.map((r) => r.body),
        ['held /hold/b'],
      );
      assert.equal(busy.reader.responses[0].headers.connection, 'close');
      // What the client asked after the answer that closed the connection is neither sent nor recorded.
      assert.deepEqual(
        s.records.map((r) => r.url),
        ['/lane/a', '/hold/b'],
      );
      await closed;
    } finally {
      s.server.closeAllConnections();
    }
  });
});

describe('fast lane over TLS', () => {
  let dir: string;
  let s: Served;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-fast-lane-'));
    s = await serve({}, await loopbackServerTls(dir));
  });
  after(async () => {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers after the handshake, with HSTS, and hands the TLS connection to node:https', async () => {
    const socket = tls.connect({ port: s.port, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise((r) => socket.once('secureConnect', r));
    const reader = new Reader(socket as unknown as net.Socket);
    socket.write(get('/lane/a') + get('/declined') + get('/lane/b'));
    const rs = await reader.count(3);
    assert.deepEqual(
      rs.map((r) => r.body),
      ['lane /lane/a', 'node GET /declined', 'node GET /lane/b'],
    );
    assert.equal(rs[0].headers['strict-transport-security'], 'max-age=31536000');
    socket.destroy();
  });
});
