// The TFTP client against two kinds of peer. dnsmasq, a real server, runs in a network namespace
// this test creates, and the client runs inside it too (a child node under `ip netns exec`), so
// every packet stays on that namespace's loopback. The fake servers below, in this process on
// 127.0.0.1, exist to inject faults a real server does not produce on demand: lost packets, a
// second sender, silence, malformed datagrams, refused or inflated options.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { tftpGet, TftpError, type TftpGetOptions } from './client.ts';
import { decodePacket, encodeData, encodeError, encodeOack, encodeRequest, type TftpPacket } from './packets.ts';

const isRoot = process.getuid?.() === 0;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The TftpError the promise fails with, for the test to look at. */
async function failure(p: Promise<unknown>): Promise<TftpError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TftpError, `expected a TftpError, got ${err}`);
    return err;
  }
  assert.fail('the transfer succeeded');
}

describe('packet codec', () => {
  it('round-trips requests with options, and refuses what it cannot encode', () => {
    const rrq = decodePacket(
      encodeRequest('rrq', 'pxelinux.cfg/default', 'octet', [
        ['BLKSIZE', '1468'],
        ['tsize', '0'],
      ]),
    );
    assert.deepEqual(rrq, {
      op: 'rrq',
      file: 'pxelinux.cfg/default',
      mode: 'octet',
      options: new Map([
        ['blksize', '1468'],
        ['tsize', '0'],
      ]),
    });
    assert.throws(() => encodeRequest('rrq', 'a\0b', 'octet'), /NUL/);
    assert.throws(() => encodeRequest('rrq', 'x'.repeat(600), 'octet'), /over the 512/);
  });

  it('reports malformed datagrams instead of throwing', () => {
    const bad = [
      Buffer.alloc(0),
      Buffer.from([0]),
      Buffer.from([0, 3, 0]),
      Buffer.from([0, 4, 0, 1, 0]),
      Buffer.from([0, 99, 1, 2]),
      Buffer.from('\0\x06blksize\0', 'latin1'),
      Buffer.from('\0\x06blksize\x001468', 'latin1'),
      Buffer.from('\0\x06blksize\x000x10\0', 'latin1'),
      Buffer.from('\0\x06windowsize\x000\0', 'latin1'),
      Buffer.from('\0\x06tsize\x001\0TSIZE\x002\0', 'latin1'),
      Buffer.from([0, 6]),
    ];
    for (const b of bad) assert.equal(decodePacket(b).op, 'malformed', `accepted ${b.toString('hex')}`);
    assert.deepEqual(decodePacket(Buffer.from('\0\x05\0\x01no such file', 'latin1')), {
      op: 'error',
      code: 1,
      message: 'no such file',
    });
  });
});

// ---- dnsmasq in a network namespace ----------------------------------------------------------

const NS = `cradle-tftp-${process.pid}`;
const CLIENT_URL = pathToFileURL(path.join(import.meta.dirname, 'client.ts')).href;
const PACKETS_URL = pathToFileURL(path.join(import.meta.dirname, 'packets.ts')).href;
/** Runs in the namespace: a download (reported as sizes and hashes) or a raw look at the OACK. */
const DRIVER = `
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { tftpGet } from ${JSON.stringify(CLIENT_URL)};
import { decodePacket, encodeError, encodeRequest } from ${JSON.stringify(PACKETS_URL)};
const [mode, file, opts] = JSON.parse(process.argv[1]);
if (mode === 'oack') {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => {
    const p = decodePacket(m);
    console.log(JSON.stringify(p.op === 'oack' ? Object.fromEntries(p.options) : p));
    s.send(encodeError(0, 'probe done'), r.port, r.address, () => s.close());
  });
  s.send(encodeRequest('rrq', file, 'octet', Object.entries(opts)), 69, '127.0.0.1');
} else {
  try {
    const r = await tftpGet('127.0.0.1', file, opts);
    console.log(JSON.stringify({ size: r.data.length, sha256: createHash('sha256').update(r.data).digest('hex'), blksize: r.blksize, windowsize: r.windowsize, retransmits: r.retransmits, malformed: r.malformed }));
  } catch (e) {
    console.log(JSON.stringify({ error: { name: e.name, message: e.message, code: e.code, notFound: e.notFound } }));
  }
}`;

type NsResult = {
  size: number;
  sha256: string;
  blksize: number;
  windowsize: number;
  retransmits: number;
  malformed: number;
  error?: { name: string; message: string; code?: number; notFound: boolean };
};

function inNamespace<T>(mode: 'get' | 'oack', file: string, opts: object = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      ['netns', 'exec', NS, process.execPath, '--input-type=module', '-e', DRIVER, JSON.stringify([mode, file, opts])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 && out.trim()
        ? resolve(JSON.parse(out) as T)
        : reject(new Error(`driver exited ${code}: ${err.trim()}`)),
    );
  });
}

describe('tftpGet against dnsmasq in a network namespace', {
  skip: !isRoot && 'needs root to create a network namespace',
  timeout: 60_000,
}, () => {
  let work = '';
  let log = '';
  let nsCreated = false;
  let dnsmasq: ChildProcess | undefined;
  const files: Record<string, Buffer> = {
    imageserver: Buffer.from('10.0.0.1:6971\n'),
    empty: Buffer.alloc(0),
    'three-blocks': randomBytes(3 * 1468),
    big: randomBytes(3_000_000),
    wrap: randomBytes(65_600 * 8 + 3), // past block 65535 at an 8-byte block size
  };

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-tftp-'));
    fs.chmodSync(work, 0o755); // dnsmasq drops root and serves only what others may read
    const root = path.join(work, 'root');
    fs.mkdirSync(root, { mode: 0o755 });
    for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(root, name), data, { mode: 0o644 });
    log = path.join(work, 'dnsmasq.log');
    execFileSync('ip', ['netns', 'add', NS]);
    nsCreated = true;
    execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    // `ip netns exec` execs dnsmasq in place, so this child's pid is dnsmasq's own.
    dnsmasq = spawn(
      'ip',
      [
        'netns',
        'exec',
        NS,
        '/usr/sbin/dnsmasq',
        '--keep-in-foreground',
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--enable-tftp',
        `--tftp-root=${root}`,
        `--pid-file=${path.join(work, 'dnsmasq.pid')}`,
        `--log-facility=${log}`,
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; !(fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('TFTP root is')); i++) {
      if (dnsmasq.exitCode !== null)
        throw new Error(
          `dnsmasq exited (${dnsmasq.exitCode}): ${fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : 'no log'}`,
        );
      if (i > 100) throw new Error('dnsmasq did not start within 5 s');
      await sleep(50);
    }
  });

  after(async () => {
    if (dnsmasq && dnsmasq.exitCode === null && dnsmasq.signalCode === null) {
      const exited = new Promise((r) => dnsmasq!.once('exit', r));
      dnsmasq.kill('SIGTERM');
      await Promise.race([exited, sleep(3000).then(() => dnsmasq!.kill('SIGKILL'))]);
    }
    if (nsCreated) execFileSync('ip', ['netns', 'del', NS]);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const fetchOk = async (file: string, opts: TftpGetOptions = {}) => {
    const r = await inNamespace<NsResult>('get', file, opts);
    assert.equal(r.error, undefined, r.error?.message ?? '');
    assert.equal(r.size, files[file].length);
    assert.equal(r.sha256, sha256(files[file]));
    return r;
  };

  it('fetches a small file, an empty one and one that is an exact multiple of the block size', async () => {
    const small = await fetchOk('imageserver');
    assert.equal(small.blksize, 1468);
    await fetchOk('empty');
    const exact = await fetchOk('three-blocks'); // ends with an empty DATA block
    assert.equal(exact.blksize, 1468);
  });

  it('fetches a 3 MB random file intact', async () => {
    const r = await fetchOk('big');
    assert.equal(r.retransmits, 0);
  });

  it('says file not found, with the URL, and sets notFound', async () => {
    const r = await inNamespace<NsResult>('get', 'pxelinux.cfg/missing');
    assert.equal(r.error?.name, 'TftpError');
    assert.equal(r.error?.notFound, true);
    assert.equal(r.error?.code, 1);
    assert.match(r.error!.message, /^tftp:\/\/127\.0\.0\.1\/pxelinux\.cfg\/missing: file not found/);
  });

  it('uses the block size and window size dnsmasq agrees to', async (t) => {
    const asked = { blksize: '65464', windowsize: '16', tsize: '0' };
    const oack = await inNamespace<Record<string, string>>('oack', 'big', asked);
    t.diagnostic(`dnsmasq answers ${JSON.stringify(asked)} with OACK ${JSON.stringify(oack)}`);
    assert.equal(oack.tsize, String(files.big.length));
    const r = await fetchOk('big', { blksize: 65464, windowsize: 16 });
    assert.equal(r.blksize, Number(oack.blksize));
    assert.ok(r.blksize > 512 && r.blksize < 65464, 'dnsmasq caps the block size at its packet buffer');
    // dnsmasq 2.90 (Debian 12) leaves windowsize out of its OACK; later versions cap it at 32.
    assert.equal(r.windowsize, oack.windowsize === undefined ? 1 : Number(oack.windowsize));
  });

  it('counts blocks past 65535 (8-byte blocks, the number wraps to 0)', async () => {
    const r = await fetchOk('wrap', { blksize: 8 });
    assert.equal(r.blksize, 8);
  });

  it('refuses a file whose tsize exceeds maxBytes, telling the server with ERROR 8', async () => {
    const r = await inNamespace<NsResult>('get', 'big', { maxBytes: 1_000_000 });
    assert.match(
      r.error!.message,
      /^tftp:\/\/127\.0\.0\.1\/big: file is 3000000 bytes \(tsize\), over the limit of 1000000 bytes/,
    );
    assert.equal(r.error!.code, undefined);
    for (let i = 0; !/error 8 .*received from 127\.0\.0\.1/.test(fs.readFileSync(log, 'utf8')); i++) {
      assert.ok(i < 40, `dnsmasq did not log the client's ERROR 8:\n${fs.readFileSync(log, 'utf8')}`);
      await sleep(50);
    }
  });
});

// ---- fake servers --------------------------------------------------------------------------

interface Script {
  content: Buffer;
  /** true: negotiate like a full RFC 2347 server; false: a plain RFC 1350 server that ignores options; 'reject': ERROR 8 to any option; a list: this OACK, whatever was asked. */
  options: boolean | 'reject' | [string, string][];
  silent?: boolean;
  /** Resend after this long without an ACK (default 150 ms). */
  timeoutMs?: number;
  /** Drop the n-th DATA datagram (counted from 1, retransmissions included). */
  dropData?: (n: number) => boolean;
  /** Called before block `abs` (0: before the first answer) is first sent, with a way to send from the transfer's port. */
  inject?: (abs: number, send: (b: Buffer) => void) => void;
}

/** A TFTP server with scripted faults, on 127.0.0.1 (one transfer at a time). */
class FakeServer {
  readonly requests: TftpPacket[] = [];
  /** What the client sent to a transfer socket other than ACKs. */
  readonly errors: TftpPacket[] = [];
  port = 0;
  /** Where the last request came from: the client's transfer ID. */
  client: dgram.RemoteInfo | undefined;
  private readonly sockets: dgram.Socket[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly script: Script;
  constructor(script: Script) {
    this.script = script;
  }

  async start(): Promise<this> {
    const listener = await this.socket();
    this.port = listener.address().port;
    listener.on('message', (m, r) => {
      const p = decodePacket(m);
      if (p.op !== 'rrq') return;
      this.requests.push(p);
      this.client = r;
      if (!this.script.silent) void this.transfer(p, r);
    });
    return this;
  }

  async socket(): Promise<dgram.Socket> {
    const s = dgram.createSocket('udp4');
    this.sockets.push(s);
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return s;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.close();
  }

  private async transfer(rrq: Extract<TftpPacket, { op: 'rrq' | 'wrq' }>, client: dgram.RemoteInfo): Promise<void> {
    const { content, options, dropData, inject } = this.script;
    const t = await this.socket();
    const send = (b: Buffer) => t.send(b, client.port, client.address);
    const injected = new Set<number>();
    const hook = (abs: number) => {
      if (!injected.has(abs)) inject?.(abs, send);
      injected.add(abs);
    };
    hook(0);
    if (options === 'reject' && rrq.options.size) return send(encodeError(8, 'options are not supported'));
    let blksize = 512;
    let windowsize = 1;
    let oack: Buffer | undefined;
    if (Array.isArray(options)) oack = encodeOack(options);
    else if (options === true && rrq.options.size) {
      blksize = Math.min(Number(rrq.options.get('blksize') ?? 512), 65464);
      windowsize = Math.min(Number(rrq.options.get('windowsize') ?? 1), 64);
      oack = encodeOack(
        [...rrq.options.keys()].map((k): [string, string] => [
          k,
          String(k === 'blksize' ? blksize : k === 'windowsize' ? windowsize : content.length),
        ]),
      );
    }
    const total = Math.floor(content.length / blksize) + 1;
    let base = oack ? 0 : 1; // first block not yet acknowledged; block 0 is the OACK
    let sentUpTo = 0;
    let dataSent = 0;
    const sendWindow = () => {
      timer.refresh();
      if (base === 0) return send(oack!);
      for (let b = base; b < base + windowsize && b <= total; b++) {
        hook(b);
        sentUpTo = Math.max(sentUpTo, b);
        if (dropData?.(++dataSent)) continue;
        send(encodeData(b & 0xffff, content.subarray((b - 1) * blksize, b * blksize)));
      }
    };
    const timer = setTimeout(() => base <= total && sendWindow(), this.script.timeoutMs ?? 150);
    this.timers.push(timer);
    t.on('message', (m) => {
      const p = decodePacket(m);
      if (p.op !== 'ack') return void this.errors.push(p as TftpPacket);
      // The absolute block is the one at or after base-1 whose low 16 bits match.
      const abs = base - 1 + ((p.block - ((base - 1) & 0xffff)) & 0xffff);
      if (abs > sentUpTo) return;
      base = abs + 1;
      if (base <= total) sendWindow();
    });
    sendWindow();
  }
}

async function withFake(script: Script, body: (server: FakeServer) => Promise<void>): Promise<void> {
  const server = await new FakeServer(script).start();
  try {
    await body(server);
  } finally {
    server.close();
  }
}

describe('tftpGet against fake servers on 127.0.0.1', { timeout: 60_000 }, () => {
  const content = randomBytes(20_000);
  const fast = { timeoutMs: 200, retries: 3 };

  it('works with a server that ignores options (plain RFC 1350: 512-byte blocks, one at a time)', () =>
    withFake({ content, options: false }, async (s) => {
      const r = await tftpGet(`127.0.0.1:${s.port}`, 'cfg', fast);
      assert.ok(r.data.equals(content));
      assert.deepEqual([r.blksize, r.windowsize, r.retransmits, r.malformed], [512, 1, 0, 0]);
      assert.deepEqual(Object.fromEntries((s.requests[0] as { options: Map<string, string> }).options), {
        blksize: '1468',
        windowsize: '8',
        tsize: '0',
      });
    }));

  it('asks again without options when the server refuses them with ERROR 8', () =>
    withFake({ content, options: 'reject' }, async (s) => {
      const r = await tftpGet(`127.0.0.1:${s.port}`, 'cfg', fast);
      assert.ok(r.data.equals(content));
      assert.equal(r.blksize, 512);
      assert.deepEqual(
        s.requests.map((q) => (q as { options: Map<string, string> }).options.size),
        [3, 0],
      );
    }));

  for (const windowsize of [1, 4]) {
    // The server waits longer than the client, so recovery is the client's doing.
    it(`completes when every 3rd DATA packet is lost (windowsize ${windowsize})`, (t) =>
      withFake({ content, options: true, dropData: (n) => n % 3 === 0, timeoutMs: 5000 }, async (s) => {
        const r = await tftpGet(`127.0.0.1:${s.port}`, 'cfg', { timeoutMs: 50, windowsize, blksize: 512 });
        assert.ok(r.data.equals(content));
        assert.equal(r.windowsize, windowsize);
        assert.ok(r.retransmits > 0, 'retransmissions are counted');
        t.diagnostic(
          `${Math.ceil(content.length / 512)} blocks, ${r.retransmits} retransmissions, ${r.seconds.toFixed(2)} s`,
        );
      }));
  }

  it('answers a second sender with ERROR 5 and keeps its data out', () => {
    const strays: TftpPacket[] = [];
    let server: FakeServer;
    // The block the client expects next, with the wrong bytes, from another port of the server.
    const inject = (abs: number) =>
      abs === 3 &&
      void server.socket().then((stray) => {
        stray.on('message', (m) => strays.push(decodePacket(m) as TftpPacket));
        stray.send(encodeData(3, Buffer.alloc(512, 0xee)), server.client!.port, '127.0.0.1');
      });
    return withFake({ content, options: true, inject }, async (s) => {
      server = s;
      const r = await tftpGet(`127.0.0.1:${s.port}`, 'cfg', {
        ...fast,
        blksize: 512,
        windowsize: 1,
        localAddress: '127.0.0.1',
      });
      assert.ok(r.data.equals(content));
      for (let i = 0; strays.length === 0 && i < 20; i++) await sleep(10);
      assert.deepEqual(strays, [{ op: 'error', code: 5, message: 'Unknown transfer ID' }]);
    });
  });

  it('fails after its retries when the server is silent, naming server and file, in (retries+1) x timeout', () =>
    withFake({ content, options: true, silent: true }, async (s) => {
      const started = performance.now();
      const err = await failure(tftpGet(`127.0.0.1:${s.port}`, 'pxelinux.cfg/default', { timeoutMs: 150, retries: 2 }));
      const ms = performance.now() - started;
      assert.match(
        err.message,
        new RegExp(
          `^tftp://127\\.0\\.0\\.1:${s.port}/pxelinux\\.cfg/default: no answer to the read request: server 127\\.0\\.0\\.1:${s.port} silent for 0\\.45 s \\(2 retransmissions\\)$`,
        ),
      );
      assert.equal(err.code, undefined);
      assert.equal(s.requests.length, 3);
      assert.ok(ms >= 440 && ms < 1000, `took ${ms} ms`);
    }));

  it('ignores and counts malformed packets without losing the transfer', () => {
    const junk = [
      Buffer.from([0, 3, 0]),
      Buffer.from([0, 99, 0, 1]),
      Buffer.from('\0\x06blksize\0lots\0', 'latin1'),
      Buffer.from('\0\x06tsize', 'latin1'),
      Buffer.from([7]),
    ];
    return withFake(
      { content, options: true, inject: (abs, send) => (abs === 0 || abs === 5) && junk.forEach(send) },
      async (s) => {
        const r = await tftpGet(`127.0.0.1:${s.port}`, 'cfg', { ...fast, blksize: 512 });
        assert.ok(r.data.equals(content));
        assert.equal(r.malformed, 2 * junk.length);
      },
    );
  });

  it('refuses an OACK that raises the block size, with ERROR 8 to the server', () =>
    withFake({ content, options: [['blksize', '4000']] }, async (s) => {
      const err = await failure(tftpGet(`127.0.0.1:${s.port}`, 'cfg', fast));
      assert.match(err.message, /option acknowledgement has blksize 4000, larger than the 1468 requested: refused/);
      await sleep(20);
      assert.equal((s.errors[0] as { code: number }).code, 8);
    }));

  it('aborts at maxBytes when the server gives no tsize, with ERROR 3 to the server', () =>
    withFake({ content, options: false }, async (s) => {
      const err = await failure(tftpGet(`127.0.0.1:${s.port}`, 'cfg', { ...fast, maxBytes: 4000 }));
      assert.match(err.message, /cfg: file exceeds the limit of 4000 bytes: transfer aborted$/);
      await sleep(20);
      assert.equal((s.errors[0] as { code: number }).code, 3);
    }));

  it('counts blocks past 65535 (16-byte blocks, window of 4)', () => {
    const large = randomBytes(65_536 * 16 + 100);
    return withFake({ content: large, options: true }, async (s) => {
      const r = await tftpGet(`127.0.0.1:${s.port}`, 'big', { ...fast, blksize: 16, windowsize: 4 });
      assert.equal(sha256(r.data), sha256(large));
    });
  });

  it('refuses file names with NUL or a .. component before sending anything', () =>
    withFake({ content, options: true }, async (s) => {
      for (const name of ['/../etc/shadow', 'a\0b', 'pxe\\..\\..\\x', ''])
        await failure(tftpGet(`127.0.0.1:${s.port}`, name, fast));
      assert.equal(s.requests.length, 0);
    }));

  it('stops when its signal aborts', () =>
    withFake({ content, options: true, silent: true }, async (s) => {
      const err = await failure(tftpGet(`127.0.0.1:${s.port}`, 'cfg', { signal: AbortSignal.timeout(100) }));
      assert.match(err.message, /cfg: aborted$/);
    }));
});
