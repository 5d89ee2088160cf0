// The hostile-input tier: one suite of attacks, run against every Cradle web port (the image
// server, the boot server with all its roles, an installer's port 6978), each a real server
// process. A port added to a target's route list gets every attack for free. After each attack
// the process must still be running and answer an ordinary request, and at the end its memory must
// have come back near where it started.
//
// The attacks are what a new user with curl, a raw socket or a slowloris script can do: bodies over
// and at the limit (declared and chunked), deeply nested and huge JSON, idle and trickling
// connections beyond the caps, a thousand connections at once, malformed request lines and
// headers, and path tricks. Traffic goes only to loopback or to a namespace the test made.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { until } from '../support/wait.ts';

export interface BodyRoute {
  method: 'POST' | 'PUT';
  path: string;
  /** The most this route reads. */
  limit: number;
}

export interface Target {
  /** The server process (its pid is the server itself, not a wrapper). */
  pid: number;
  host: string;
  port: number;
  /** Client addresses this test may connect from, each a different client to the server. */
  sources: string[];
  /** The server's limits, as configured. */
  maxConnections: number;
  maxPerAddress: number;
  requestHeadMs: number;
  /** A request a real client makes: resolves when it got the answer it should. */
  normal: (source: string) => Promise<void>;
  /** Routes that read a body. */
  bodies: BodyRoute[];
  /** Routes to try path tricks on (prefixes such as /v1/objects/). */
  prefixes: string[];
  /** What the server has logged: no programming error may show there. */
  output?: () => string;
  stop: () => Promise<void>;
}

/** Attacks of one server only (its UDP ports, say), run among the others. */
export type ExtraAttacks = Record<string, (t: Target) => Promise<void>>;

const MiB = 1024 * 1024;
/** What the attacks may add to a server's resident memory: bodies in flight, their parsing, V8's slack. */
const MEMORY_ALLOWANCE_MIB = 320;

export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A TCP connection from `source`, open. */
function connect(t: Target, source: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: t.host, port: t.port, localAddress: source }, () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', reject);
  });
}

const closed = (s: net.Socket) => s.destroyed || s.readyState === 'closed';

/** Sends raw bytes, reads until the server closes or `ms` pass: the status line's code, if any. */
async function raw(t: Target, payload: Buffer | string, ms = 10_000): Promise<{ status?: number; text: string }> {
  const s = await connect(t, t.sources[0]);
  let text = '';
  s.on('data', (b: Buffer) => (text += b.toString('latin1')));
  s.write(payload);
  await until(
    `an answer or a close for ${JSON.stringify(String(payload).slice(0, 60))}`,
    () => closed(s) || /\r\n\r\n/.test(text),
    ms,
  ).finally(() => s.destroy());
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return { status: m ? Number(m[1]) : undefined, text };
}

/** A request with a body (a buffer, or `chunked` bytes streamed without a length). */
function send(
  t: Target,
  route: BodyRoute,
  body: Buffer | { chunked: number },
): Promise<{ status?: number; error?: string }> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
    if (Buffer.isBuffer(body)) headers['content-length'] = body.length;
    const req = http.request(
      {
        host: t.host,
        port: t.port,
        method: route.method,
        path: route.path,
        headers,
        localAddress: t.sources[0],
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode }));
        res.on('error', () => resolve({ status: res.statusCode }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')));
    if (Buffer.isBuffer(body)) return void req.end(body);
    let left = body.chunked;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    Readable.from(
      (function* () {
        while (left > 0) {
          left -= chunk.length;
          yield chunk;
        }
      })(),
    )
      .on('error', () => {})
      .pipe(req);
  });
}

/** The process runs and answers an ordinary request from a fresh client address. */
async function healthy(t: Target, source = t.sources.at(-1)!): Promise<void> {
  assert.ok(alive(t.pid), 'the server process is gone');
  const deadline = new Promise<never>((_r, reject) =>
    setTimeout(() => reject(new Error('no answer to an ordinary request within 10 s')), 10_000).unref(),
  );
  await Promise.race([t.normal(source), deadline]);
}

const openIdle = async (t: Target, source: string, n: number) => {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    try {
      sockets.push(await connect(t, source));
    } catch {
      // refused by the server when over its caps: as good as closed
    }
  }
  return sockets;
};

/** Registers the attacks on the target `start` makes (started once, stopped after). */
export function abuseSuite(
  name: string,
  start: () => Promise<Target>,
  opts: { skip?: string | false; extra?: ExtraAttacks } = {},
): void {
  describe(`hostile input: ${name}`, { skip: opts.skip }, () => {
    let t: Target;
    let baseline = 0;
    before(async () => {
      t = await start();
      await healthy(t);
      baseline = rssMiB(t.pid);
    });
    after(async () => {
      await t?.stop();
    });

    test('a body over the limit is refused (413) before it is read, declared or chunked', () => oversizedBodies(t));
    test('a body at the limit is read, and answered without a server error', () => bodiesAtTheLimit(t));
    test('deeply nested and huge JSON: a clear 4xx, never a crash', () => hostileJson(t));
    test('many large bodies at once: each read or turned away (503), memory bounded', () => concurrentBodies(t));

    test("idle connections beyond one client's cap: the others are served, the idle ones closed", async () => {
      const idle = await openIdle(t, t.sources[0], t.maxPerAddress + 16);
      try {
        await healthy(t);
        // Not one of them sent a request: each is closed within the head timeout.
        await until(
          'every idle connection closed by the server',
          () => idle.every(closed),
          t.requestHeadMs * 3 + 10_000,
        );
      } finally {
        for (const s of idle) s.destroy();
      }
      await healthy(t);
    });

    test('the port full of idle connections from many clients still serves a machine', async () => {
      const spread = t.sources.slice(0, -1);
      const perSource = Math.min(t.maxPerAddress, Math.ceil((t.maxConnections + 32) / spread.length));
      assert.ok(
        perSource * spread.length >= t.maxConnections,
        `the target needs more client addresses to fill ${t.maxConnections} connections`,
      );
      const idle = (await Promise.all(spread.map((s) => openIdle(t, s, perSource)))).flat();
      try {
        // While every slot is taken, an ordinary request still gets through: the idlest gives way.
        for (let i = 0; i < 3; i++) await healthy(t);
      } finally {
        for (const s of idle) s.destroy();
      }
      await healthy(t);
    });

    test('slowloris: connections trickling a request head are closed, and the port serves meanwhile', async () => {
      const slow = await openIdle(t, t.sources[1], Math.min(48, t.maxPerAddress));
      const head = `GET / HTTP/1.1\r\nHost: x\r\n${'X-Slow: y\r\n'.repeat(100)}`;
      let i = 0;
      const trickle = setInterval(() => {
        for (const s of slow) if (!closed(s)) s.write(head[i % head.length]);
        i++;
      }, 250);
      try {
        await healthy(t);
        await until(
          'every trickling connection closed by the server',
          () => slow.every(closed),
          t.requestHeadMs * 3 + 10_000,
        );
      } finally {
        clearInterval(trickle);
        for (const s of slow) s.destroy();
      }
      await healthy(t);
    });

    test('a thousand connections at once, each with a request: every one answered or cleanly closed', () =>
      thousandAtOnce(t));

    test('malformed request lines and headers: 4xx or a closed connection, never a crash', async () => {
      const payloads = [
        'GARBAGE\r\n\r\n',
        '\x00\x01\x02\x03\xff\xfe\r\n\r\n',
        'GET / HTTP/9.9\r\n\r\n',
        'GET /\r\n\r\n',
        'GET / HTTP/1.1\r\nNo colon here\r\n\r\n',
        'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n',
        'GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
        'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n',
        'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n',
        `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(200_000)}\r\n\r\n`,
        `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: a\r\n\r\n`,
        `GET / HTTP/1.1\r\n${Array.from({ length: 5000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`,
        'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      ];
      for (const p of payloads) {
        const r = await raw(t, p);
        assert.ok(
          r.status === undefined || (r.status >= 200 && r.status < 500) || r.status === 505,
          `${JSON.stringify(p.slice(0, 60))}: ${r.text.slice(0, 200)}`,
        );
      }
      await healthy(t);
    });

    test('path tricks: nothing outside the routes, a 4xx for each', async () => {
      const tricks = [
        '/../../../../etc/passwd',
        '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
        '//etc/passwd',
        '/%zz',
        '/%00',
        '/\\..\\..\\etc\\passwd',
        '/..%2f..%2f..%2fetc%2fpasswd',
      ];
      for (const prefix of ['', ...t.prefixes]) {
        for (const trick of tricks) {
          const r = await raw(
            t,
            `GET ${prefix}${trick.slice(prefix ? 1 : 0)} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
          );
          assert.ok(
            r.status === undefined ||
              (r.status >= 400 && r.status < 500) ||
              (r.status < 400 && !/root:.*:0:0:/.test(r.text)),
            `${prefix}${trick}: ${r.text.slice(0, 200)}`,
          );
          assert.doesNotMatch(r.text, /root:[^:]*:0:0:/, `${prefix}${trick} served a file of the host`);
        }
      }
      await healthy(t);
    });

    for (const [title, attack] of Object.entries(opts.extra ?? {})) {
      test(title, async () => {
        await attack(t);
        await healthy(t);
      });
    }

    test("nothing the attacks did shows as a programming error in the server's log", () => {
      assert.doesNotMatch(t.output?.() ?? '', /TypeError|RangeError|ReferenceError|uncaught|unhandled/i);
    });

    test('memory stays bounded: three more rounds of the heaviest attacks, and it never passes what the limits allow', async () => {
      // V8 keeps the heap it grew to serve a large request for later ones, and collects lazily on a
      // busy machine, so memory need not fall back to where it started. What must hold: it stays
      // within what the limits allow (64 MiB of bodies in flight, each parsed at most once), round
      // after round, which a leak or an unbounded read would break.
      const bound = baseline + MEMORY_ALLOWANCE_MIB;
      for (let round = 1; round <= 3; round++) {
        await oversizedBodies(t);
        await hostileJson(t);
        await concurrentBodies(t);
        await thousandAtOnce(t);
        await until(
          `resident memory under ${Math.round(bound)} MiB after round ${round} (${Math.round(baseline)} at the start, now ${Math.round(rssMiB(t.pid))})`,
          () => rssMiB(t.pid) < bound,
          30_000,
        );
      }
    });
  });
}

async function oversizedBodies(t: Target): Promise<void> {
  for (const route of t.bodies) {
    const declared = await send(t, route, Buffer.alloc(route.limit + 1, 0x20));
    assert.equal(
      declared.status,
      413,
      `${route.method} ${route.path} with ${route.limit + 1} bytes: ${JSON.stringify(declared)}`,
    );
    const chunked = await send(t, route, { chunked: route.limit + 64 * MiB });
    // The reply may beat the end of the upload: then the client sees the connection end.
    assert.ok(
      chunked.status === 413 || chunked.status === 403 || chunked.error === 'EPIPE' || chunked.error === 'ECONNRESET',
      `${route.method} ${route.path} chunked past the limit: ${JSON.stringify(chunked)}`,
    );
    await healthy(t);
  }
}

async function bodiesAtTheLimit(t: Target): Promise<void> {
  for (const route of t.bodies) {
    const body = Buffer.alloc(route.limit, 0x20);
    body.write('{}', 0);
    const r = await send(t, route, body);
    assert.ok(
      r.status !== undefined && r.status !== 413 && r.status < 500,
      `${route.method} ${route.path} with exactly ${route.limit} bytes: ${JSON.stringify(r)}`,
    );
    await healthy(t);
  }
}

async function hostileJson(t: Target): Promise<void> {
  for (const route of t.bodies) {
    const depth = Math.floor(route.limit / 2) - 8;
    const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const digests = Array.from(
      { length: Math.floor(route.limit / 76) - 1 },
      (_, i) => `"sha256:${String(i).padStart(64, '0')}"`,
    ).join(',');
    const wide = `{"digests":[${digests}],"machine":{"macs":[]},"events":[]}`;
    const deepObject = `${'{"a":'.repeat(depth / 3)}1${'}'.repeat(depth / 3)}`;
    for (const body of [nested, wide, deepObject]) {
      const r = await send(t, route, Buffer.from(body).subarray(0, route.limit));
      assert.ok(
        r.status !== undefined && r.status >= 400 && r.status < 500,
        `${route.method} ${route.path} with ${body.length} bytes of JSON: ${JSON.stringify(r)}`,
      );
    }
    await healthy(t);
  }
}

async function concurrentBodies(t: Target): Promise<void> {
  for (const route of t.bodies) {
    const body = Buffer.alloc(route.limit, 0x20);
    body.write('[]', 0);
    const results = await Promise.all(Array.from({ length: 24 }, () => send(t, route, body)));
    for (const r of results)
      assert.ok(
        r.status !== undefined && r.status < 500 ? r.status !== 413 : r.status === 503,
        `${route.method} ${route.path}, 24 bodies of ${route.limit} bytes at once: ${JSON.stringify(r)}`,
      );
    await healthy(t);
  }
}

async function thousandAtOnce(t: Target): Promise<void> {
  const results = await Promise.all(
    Array.from(
      { length: 1000 },
      (_, i) =>
        new Promise<string>((resolve) => {
          const req = http.get(
            { host: t.host, port: t.port, path: '/', localAddress: t.sources[i % t.sources.length], agent: false },
            (res) => {
              res.resume();
              res.on('end', () => resolve(String(res.statusCode)));
              res.on('error', () => resolve('cut'));
            },
          );
          req.on('error', () => resolve('refused'));
          req.setTimeout(60_000, () => req.destroy());
        }),
    ),
  );
  const answered = results.filter((r) => /^\d+$/.test(r));
  assert.ok(answered.length > 0, `no request answered: ${[...new Set(results)].join(', ')}`);
  assert.ok(
    !answered.some((r) => r.startsWith('5') && r !== '503'),
    `server errors: ${[...new Set(answered)].join(', ')}`,
  );
  await healthy(t);
}
