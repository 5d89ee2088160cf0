// The TFTP server against real peers (curl, busybox tftp, tftp-hpa's tftp, and our own client with
// windows), all on 127.0.0.1 at a free port, plus a raw client for what peers will not do on
// demand: repeated and partial ACKs, vanishing, escapes. Malformed packets: server-malformed.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tftpGet } from '../../protocols/tftp/client.ts';
import { encodeAck, encodeError, encodeRequest, MAX_BLKSIZE } from '../../protocols/tftp/packets.ts';
import { createTftpServer, type TftpClient, type TftpServerOptions, unicastSource } from './server.ts';
import { LossyProxy, peers, RawClient } from '../../../test/support/tftp-peers.ts';
import { until } from '../../../test/support/wait.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-tftpd-'));
const root = path.join(work, 'root');
const files: Record<string, Buffer> = {
  small: Buffer.from('10.0.0.1:6971\n'),
  empty: Buffer.alloc(0),
  exact: randomBytes(1468 * 512), // a multiple of 512 and of 1468: ends with an empty block either way
  // Over 65535 blocks of 512 bytes: the block number rolls over for every 512-byte client.
  big: randomBytes(34_000_000),
  mid: randomBytes(1_500_000),
  wrap: randomBytes(600_000), // over 65535 blocks of 8 bytes
  lossy: randomBytes(200_000),
  'sub/file': Buffer.from('in a subdirectory\n'),
  text: Buffer.from('line one\nline two\r\nbare\rcarriage return\n'),
};

async function startServer(extra: Partial<TftpServerOptions> = {}) {
  const lines: string[] = [];
  const server = createTftpServer({ root, address: '127.0.0.1', port: 0, log: (l) => lines.push(l), ...extra });
  const { port } = await server.listen();
  return { server, port, lines };
}

before(() => {
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true, mode: 0o755 });
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(root, name), data, { mode: 0o644 });
  fs.writeFileSync(path.join(work, 'outside'), 'secret outside the root\n', { mode: 0o644 });
  fs.symlinkSync('../outside', path.join(root, 'escape'));
  fs.symlinkSync(path.join(work, 'outside'), path.join(root, 'escape-abs'));
  fs.symlinkSync('sub/file', path.join(root, 'link-in'));
  fs.symlinkSync('..', path.join(root, 'sub', 'top')); // the root itself: fine
  fs.symlinkSync('../..', path.join(root, 'sub', 'up'));
  fs.writeFileSync(path.join(root, 'private'), 'root only\n', { mode: 0o600 });
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

describe('TFTP server with real peers', { timeout: 120_000 }, () => {
  let s: Awaited<ReturnType<typeof startServer>>;
  // Every peer here is on 127.0.0.1: one address, so the per-client cap is lifted for them.
  before(async () => (s = await startServer({ maxTransfersPerClient: 100 })));
  after(() => s.server.close());

  const fetched = (out: string, name: string) => {
    const got = fs.readFileSync(out);
    assert.equal(got.length, files[name].length, `${name}: size`);
    assert.equal(sha256(got), sha256(files[name]), `${name}: content`);
    fs.rmSync(out);
  };
  const lastLine = (name: string) => s.lines.findLast((l) => l.includes(`RRQ "${name}"`)) ?? '';

  for (const peer of ['curl', 'busybox'] as const) {
    it(`${peer}: small, empty, exact multiple of the block size, 34 MB (sha256), at 1468-byte blocks`, async () => {
      for (const name of ['small', 'empty', 'exact', 'big']) {
        const out = path.join(work, `${peer}-${name}`);
        const r = await peers[peer](s.port, name, out, 1468);
        assert.ok(r.ok, `${r.detail}\n${s.lines.join('\n')}`);
        fetched(out, name);
        await until(`the log of ${name}`, () => /: sent /.test(lastLine(name)), 5000);
        assert.match(lastLine(name), /blksize 1468, windowsize 1, 0 retransmits$/);
      }
    });
  }

  it('curl without options: plain RFC 1350, 512-byte blocks', async () => {
    const out = path.join(work, 'curl-plain');
    assert.ok((await peers.curl(s.port, 'exact', out)).ok);
    fetched(out, 'exact');
    await until('the log', () => /blksize 512, windowsize 1/.test(lastLine('exact')), 5000);
  });

  it('curl at 8-byte blocks: block numbers roll over past 65535', async () => {
    const out = path.join(work, 'curl-wrap');
    assert.ok((await peers.curl(s.port, 'wrap', out, 8)).ok);
    fetched(out, 'wrap');
  });

  it('tftp-hpa: small, empty, exact, 34 MB at 512-byte blocks (rolls over), netascii', async () => {
    for (const name of ['small', 'empty', 'exact', 'big', 'text']) {
      const out = path.join(work, `hpa-${name}`);
      const r = await peers.hpa(s.port, name, out, name === 'text' ? 'ascii' : 'binary');
      assert.ok(r.ok, r.detail);
      fetched(out, name); // netascii included: the client's conversion undoes the server's exactly
    }
  });

  it('our client with windows: 34 MB intact, options clamped, tsize answered', async () => {
    const r = await tftpGet(`127.0.0.1:${s.port}`, 'big', { windowsize: 64, blksize: MAX_BLKSIZE, timeoutMs: 500 });
    assert.equal(sha256(r.data), sha256(files.big));
    assert.deepEqual([r.blksize, r.windowsize], [1468, 16]); // the server's limits
    const w = await tftpGet(`127.0.0.1:${s.port}`, 'wrap', { blksize: 8, windowsize: 16 });
    assert.equal(sha256(w.data), sha256(files.wrap));
  });

  it('missing file: ERROR 1 to every peer', async () => {
    const out = path.join(work, 'missing');
    for (const peer of ['curl', 'busybox', 'hpa'] as const) {
      const r = await peers[peer](s.port, 'nope/missing', out);
      assert.ok(!r.ok, `${peer} got a file`);
      if (peer === 'hpa') assert.match(r.detail, /Error code 1: file not found/);
    }
    await assert.rejects(tftpGet(`127.0.0.1:${s.port}`, 'missing'), (e: { notFound: boolean }) => e.notFound);
  });

  it('50 transfers at once with our client (windowsize 16)', async () => {
    const before = s.server.stats.transfers;
    const results = await Promise.all(
      Array.from({ length: 50 }, () => tftpGet(`127.0.0.1:${s.port}`, 'mid', { windowsize: 16, timeoutMs: 2000 })),
    );
    for (const r of results) assert.equal(sha256(r.data), sha256(files.mid));
    assert.equal(s.server.stats.transfers - before, 50);
    await until('every transfer to end', () => s.server.stats.active === 0, 5000);
  });
});

/** The first reply to a request from a raw client. */
async function ask(
  port: number,
  file: string,
  opts: { op?: 'rrq' | 'wrq'; mode?: string; options?: [string, string][] } = {},
) {
  const c = await RawClient.open();
  try {
    c.send(encodeRequest(opts.op ?? 'rrq', file, opts.mode ?? 'octet', opts.options ?? []), port);
    const r = await c.next(2000);
    // Tell the transfer to stop, so it does not retransmit into a closed port.
    if (r && r.packet.op !== 'error') await c.send(encodeError(0, 'enough'), r.port);
    return r?.packet;
  } finally {
    c.close();
  }
}

describe('TFTP server: names, refusals and virtual files', { timeout: 60_000 }, () => {
  let s: Awaited<ReturnType<typeof startServer>>;
  const seen: { file: string; client: TftpClient }[] = [];
  before(async () => {
    s = await startServer({
      resolve: async (file, client) => {
        seen.push({ file, client });
        if (file === 'config.json') return Buffer.from(JSON.stringify({ ip: client.address }));
        if (file === 'imagename') return new TextEncoder().encode('debian/2026-11-22\n'); // any Uint8Array
        if (file === 'alias') return 'sub/file';
        if (file === 'trusted') return path.join(work, 'outside');
        if (file === 'broken') throw new Error('database down');
        return undefined;
      },
    });
  });
  after(() => s.server.close());

  const code = async (file: string, opts?: Parameters<typeof ask>[2]) => {
    const p = await ask(s.port, file, opts);
    return p?.op === 'error' ? p.code : p?.op;
  };

  it('refuses escapes from the root: .., backslashed .., symlinks out, non-regular and private files', async () => {
    for (const name of [
      '../outside',
      'sub/../../outside',
      '..\\outside',
      'sub\\..\\small',
      'escape',
      'escape-abs',
      'sub/up/outside',
      'fifo',
      'sub',
      'private',
      '/',
    ])
      assert.equal(await code(name), 2, name);
    // A leading '/' means the root (as tftp-hpa -s does): the host's /etc/passwd is not reachable.
    assert.equal(await code('/etc/passwd'), 1);
    assert.equal(await code('bad\x01name'), 2);
    const r = await peers.busybox(s.port, '../outside', path.join(work, 'bb-escape'));
    assert.ok(!r.ok, 'busybox fetched ../outside');
  });

  it('serves normalised names: leading /, backslashes, ./, symlinks inside the root', async () => {
    for (const name of ['/small', '//sub//file', 'sub\\file', './sub/./file', 'link-in', 'sub/top/small'])
      assert.equal(await code(name), 'data', name);
  });

  it('a size probe (an ERROR right after the OACK, as PXE ROMs send) is not counted as an error', async () => {
    await until('earlier transfers to end', () => s.server.stats.active === 0, 5000);
    const errors = s.server.stats.errors;
    const c = await RawClient.open();
    await c.send(encodeRequest('rrq', 'small', 'octet', [['tsize', '0']]), s.port);
    const r = await c.next();
    assert.ok(r?.packet.op === 'oack');
    assert.equal(r.packet.options.get('tsize'), String(files.small.length));
    await c.send(encodeError(0, 'just the size'), r.port);
    c.close();
    await until('the probe to end', () => s.server.stats.active === 0, 5000);
    assert.match(s.lines.at(-1)!, /RRQ "small" octet: size probe: the client sent ERROR 0 \(just the size\)/);
    assert.equal(s.server.stats.errors, errors);
  });

  it('refuses WRQ with ERROR 2 and unknown modes with ERROR 4', async () => {
    assert.equal(await code('upload', { op: 'wrq' }), 2);
    assert.equal(await code('small', { mode: 'mail' }), 4);
    const local = path.join(work, 'to-upload');
    fs.writeFileSync(local, 'x');
    assert.notEqual(
      (
        await (
          await import('../../../test/support/tftp-peers.ts')
        ).run('busybox', ['tftp', '-p', '-l', local, '-r', 'up', '127.0.0.1', String(s.port)])
      ).code,
      0,
    );
    assert.ok(!fs.existsSync(path.join(root, 'up')));
  });

  it('virtual files: the hook sees the normalised name and the client, before the root', async () => {
    const c = await RawClient.open();
    c.send(encodeRequest('rrq', '/config.json', 'octet'), s.port);
    const r = await c.next(2000);
    assert.ok(r?.packet.op === 'data');
    assert.equal(r.packet.data.toString(), JSON.stringify({ ip: '127.0.0.1' }));
    await c.send(encodeAck(1), r.port);
    assert.deepEqual(seen.find((x) => x.file === 'config.json')?.client, { address: '127.0.0.1', port: c.port });
    c.close();
    const got = async (name: string) => (await tftpGet(`127.0.0.1:${s.port}`, name)).data.toString();
    assert.equal(await got('imagename'), 'debian/2026-11-22\n');
    assert.equal(await got('alias'), 'in a subdirectory\n');
    assert.equal(await got('trusted'), 'secret outside the root\n'); // an absolute path from the hook is trusted
    assert.equal(await got('small'), files.small.toString()); // undefined: the root
    assert.equal(await code('broken'), 0);
    assert.ok(!seen.some((x) => x.file.includes('..')), 'the hook never sees a ".." name');
    await until('every transfer to end', () => s.server.stats.active === 0, 5000);
  });
});

describe('TFTP server: retransmission, windows and lost peers', { timeout: 60_000 }, () => {
  it('completes over a path that loses every 7th packet each way', async () => {
    // The server resends after 150 ms, later than busybox (100 ms): busybox ignores repeated DATA
    // (its guard against the Sorcerer's Apprentice) and only resends its ACK when the line is quiet
    // for its own timeout, so a server resending faster would keep it waiting forever.
    const s = await startServer({ timeoutMs: 150, retries: 10, maxBlksize: 8192 });
    const proxy = await new LossyProxy(s.port, 7).start();
    try {
      for (const windowsize of [1, 8]) {
        const r = await tftpGet(`127.0.0.1:${proxy.port}`, 'lossy', {
          windowsize,
          timeoutMs: 50,
          retries: 10,
          blksize: 8192,
        });
        assert.equal(sha256(r.data), sha256(files.lossy));
      }
      const out = path.join(work, 'lossy-busybox');
      const b = await peers.busybox(proxy.port, 'lossy', out, 8192);
      assert.ok(b.ok, b.detail);
      assert.equal(sha256(fs.readFileSync(out)), sha256(files.lossy));
      assert.ok(proxy.dropped.up > 0 && proxy.dropped.down > 0);
      // Busybox exits on sending its final ACK: if the proxy loses that one, the server cannot
      // know the transfer succeeded and resends until busybox's port is unreachable.
      proxy.close();
      await until('every transfer to end', () => s.server.stats.active === 0, 5000);
      const sent = s.lines.filter((l) => /: sent 200000 bytes .* [1-9][0-9]* retransmits$/.test(l));
      assert.ok(sent.length >= 2, s.lines.join('\n'));
    } finally {
      proxy.close();
      await s.server.close();
    }
  });

  it('gives up on a silent client after its retries, and frees the transfer', async () => {
    const s = await startServer({ timeoutMs: 100, retries: 3 });
    const c = await RawClient.open();
    try {
      c.send(encodeRequest('rrq', 'mid', 'octet', [['blksize', '1024']]), s.port);
      await until('the transfer to start', () => s.server.stats.active === 1, 5000);
      await until('the transfer to be abandoned', () => s.server.stats.active === 0, 2000);
      const got = c.replies.map((r) => r.packet.op);
      assert.deepEqual(got, ['oack', 'oack', 'oack', 'oack', 'error'], 'the OACK, 3 resends, then ERROR');
      assert.match(s.lines.at(-1)!, /failed after 0 of 1500000 bytes .* 3 retransmits: timed out/);
      assert.equal(s.server.stats.errors, 1);
    } finally {
      c.close();
      await s.server.close();
    }
  });

  it('ends at the first resend once the client port is closed (ICMP port unreachable)', async () => {
    const s = await startServer({ timeoutMs: 200, retries: 5 });
    try {
      const c = await RawClient.open();
      c.send(encodeRequest('rrq', 'mid', 'octet'), s.port);
      const first = await c.next();
      c.close();
      assert.equal(first?.packet.op, 'data');
      const started = performance.now();
      await until('the transfer to end', () => s.server.stats.active === 0, 5000);
      assert.ok(performance.now() - started < 600, 'not after all 5 retries');
      assert.match(s.lines.at(-1)!, /the client has gone/);
    } finally {
      await s.server.close();
    }
  });

  it("never answers a repeated ACK (no Sorcerer's Apprentice), resends a window from a partial ACK", async () => {
    const s = await startServer({ timeoutMs: 3000 });
    const c = await RawClient.open();
    try {
      c.send(
        encodeRequest('rrq', 'mid', 'octet', [
          ['blksize', '512'],
          ['windowsize', '4'],
          ['timeout', '3'],
          ['tsize', '0'],
          ['nonsense', '1'],
        ]),
        s.port,
      );
      c.send(
        encodeRequest('rrq', 'mid', 'octet', [
          ['blksize', '512'],
          ['windowsize', '4'],
          ['timeout', '3'],
          ['tsize', '0'],
          ['nonsense', '1'],
        ]),
        s.port,
      );
      const oack = await c.next();
      assert.ok(oack?.packet.op === 'oack');
      assert.deepEqual(Object.fromEntries(oack.packet.options), {
        blksize: '512',
        windowsize: '4',
        timeout: '3',
        tsize: '1500000',
      });
      const tid = oack.port;
      const blocks = async () =>
        (await c.drain(150)).map((r) => {
          assert.equal(r.port, tid, 'one transfer only, though asked twice');
          return r.packet.op === 'data' ? r.packet.block : r.packet.op;
        });
      c.send(encodeAck(0), tid);
      assert.deepEqual(await blocks(), [1, 2, 3, 4]);
      c.send(encodeAck(0), tid); // a duplicate of an ACK already acted on
      c.send(encodeAck(0), tid);
      assert.deepEqual(await blocks(), []);
      c.send(encodeAck(2), tid); // blocks 3 and 4 were lost: the window restarts at 3
      assert.deepEqual(await blocks(), [3, 4, 5, 6]);
      c.send(encodeAck(2), tid);
      c.send(encodeAck(60000), tid); // never sent: ignored
      assert.deepEqual(await blocks(), []);
      c.send(encodeAck(6), tid);
      assert.deepEqual(await blocks(), [7, 8, 9, 10]);
      assert.equal(s.server.stats.transfers, 1);
    } finally {
      c.close();
      await s.server.close();
    }
  });

  it('close() ends transfers in flight and leaves nothing running', async () => {
    const s = await startServer({ timeoutMs: 5000 });
    const c = await RawClient.open();
    c.send(encodeRequest('rrq', 'mid', 'octet'), s.port);
    assert.equal((await c.next())?.packet.op, 'data');
    await s.server.close();
    assert.equal(s.server.stats.active, 0);
    const last = await c.next();
    assert.ok(last?.packet.op === 'error' && /shutting down/.test(last.packet.message));
    c.close();
  });
});

describe('createTftpServer', () => {
  it('refuses limits outside the RFCs', () => {
    assert.throws(() => createTftpServer({ maxBlksize: 65465 }), /maxBlksize 65465 is outside 512..65464/);
    assert.throws(() => createTftpServer({ maxWindowsize: 0 }), /maxWindowsize/);
    assert.throws(() => createTftpServer({ address: 'localhost' }), /address 'localhost' is not an IPv4 address/);
  });

  it('answers no request from a source no client can have (this host, multicast, broadcast)', () => {
    for (const a of ['0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255'])
      assert.equal(unicastSource(a), false, a);
    for (const a of ['1.0.0.1', '10.0.0.9', '127.0.0.1', '223.255.255.254']) assert.equal(unicastSource(a), true, a);
  });

  it('answers "server busy" beyond maxTransfers', async () => {
    const s = await startServer({ maxTransfers: 1, timeoutMs: 5000 });
    try {
      const a = await RawClient.open();
      await a.send(encodeRequest('rrq', 'mid', 'octet'), s.port);
      assert.equal((await a.next())?.packet.op, 'data');
      const busy = await ask(s.port, 'small');
      assert.ok(busy?.op === 'error' && busy.code === 0 && /busy/.test(busy.message));
      a.close();
    } finally {
      await s.server.close();
    }
  });

  it('answers "server busy" beyond maxTransfersPerClient from one address; another address is served', async () => {
    const s = await startServer({ maxTransfersPerClient: 2, timeoutMs: 5000 });
    const clients: RawClient[] = [];
    try {
      for (const address of ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.2']) {
        const c = await RawClient.open(address);
        clients.push(c);
        await c.send(encodeRequest('rrq', 'mid', 'octet'), s.port);
      }
      const first = await Promise.all(clients.map((c) => c.next()));
      assert.deepEqual(
        first.map((r) => r?.packet.op),
        ['data', 'data', 'error', 'data'],
      );
      const busy = first[2]?.packet;
      assert.ok(busy?.op === 'error' && busy.code === 0 && /2 transfers to this address already/.test(busy.message));
    } finally {
      for (const c of clients) c.close();
      await s.server.close();
    }
  });

  it('a transfer whose client never answered gives way to a newer request from its address, one that answered does not', {
    timeout: 30_000,
  }, async () => {
    // A forged request's transfer waits on a client that never asked: it must not keep the
    // machine whose address was forged out. Retries are many, so none ends on its own meanwhile.
    const s = await startServer({ maxTransfersPerClient: 2, timeoutMs: 300, retries: 1000 });
    const clients: RawClient[] = [];
    const open = async () => {
      const c = await RawClient.open('127.0.0.1');
      clients.push(c);
      return c;
    };
    /** The next reply that is not a retransmission of DATA, within `ms`. */
    const nextNotData = async (c: RawClient, ms: number) => {
      const deadline = performance.now() + ms;
      for (;;) {
        const r = await c.next(Math.max(1, deadline - performance.now()));
        if (r?.packet.op !== 'data') return r?.packet;
      }
    };
    try {
      // The oldest transfer's client answers its first block (then takes its time over the next).
      const answered = await open();
      await answered.send(encodeRequest('rrq', 'mid', 'octet'), s.port);
      const first = await answered.next();
      assert.equal(first?.packet.op, 'data');
      await answered.send(encodeAck(1), first!.port);
      // The forged one: it gets its first block and never answers.
      const forged = await open();
      await forged.send(encodeRequest('rrq', 'mid', 'octet'), s.port);
      assert.equal((await forged.next())?.packet.op, 'data');
      // The address is at its cap: a newcomer is refused until the forged transfer has waited the
      // server's timeout, then takes its place.
      let refusals = 0;
      for (;;) {
        const newcomer = await open();
        await newcomer.send(encodeRequest('rrq', 'small', 'octet'), s.port);
        const r = await newcomer.next(2000);
        if (r?.packet.op === 'data') break;
        assert.ok(r?.packet.op === 'error' && /transfers to this address already/.test(r.packet.message));
        refusals++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const ended = await nextNotData(forged, 2000);
      assert.ok(ended?.op === 'error' && /newer request took the place/.test(ended.message), JSON.stringify(ended));
      assert.equal(await nextNotData(answered, 1000), undefined, 'the transfer whose client answered was ended');
      assert.ok(s.lines.some((l) => /given up, its client never answered/.test(l)));
      // Its first refusals show the cap held while the forged transfer was young.
      assert.ok(refusals > 0, 'the newcomer got in at once');
    } finally {
      for (const c of clients) c.close();
      await s.server.close();
    }
  });

  for (const [cap, mode, busy] of [
    [{ maxTransfers: 1 }, 'octet', /busy/],
    [{ maxNetasciiTransfers: 1 }, 'netascii', /netascii/],
  ] as const) {
    it(`beyond ${Object.keys(cap)[0]}, a transfer whose client never answered gives way to a request from anyone`, {
      timeout: 30_000,
    }, async () => {
      const s = await startServer({ ...cap, timeoutMs: 300, retries: 1000 });
      const forged = await RawClient.open('127.0.0.1');
      try {
        await forged.send(encodeRequest('rrq', 'mid', mode), s.port);
        assert.equal((await forged.next())?.packet.op, 'data');
        let got = await ask(s.port, 'small', { mode });
        while (got?.op === 'error' && busy.test(got.message)) got = await ask(s.port, 'small', { mode });
        assert.equal(got?.op, 'data');
      } finally {
        forged.close();
        await s.server.close();
      }
    });
  }

  it('answers "ask in octet mode" beyond maxNetasciiTransfers (each holds its file converted in memory)', async () => {
    const s = await startServer({ maxNetasciiTransfers: 1, timeoutMs: 5000 });
    const clients: RawClient[] = [];
    try {
      for (const mode of ['netascii', 'netascii', 'octet']) {
        const c = await RawClient.open();
        clients.push(c);
        await c.send(encodeRequest('rrq', 'mid', mode), s.port);
      }
      const first = await Promise.all(clients.map((c) => c.next()));
      assert.deepEqual(
        first.map((r) => r?.packet.op),
        ['data', 'error', 'data'],
      );
      const busy = first[1]?.packet;
      assert.ok(busy?.op === 'error' && /ask in octet mode/.test(busy.message));
    } finally {
      for (const c of clients) c.close();
      await s.server.close();
    }
  });

  it('logs refusals at most ten a second, and counts every one', async () => {
    const s = await startServer();
    const c = await RawClient.open();
    try {
      for (let i = 0; i < 50; i++) await c.send(encodeRequest('wrq', `upload-${i}`, 'octet'), s.port);
      await until('50 refusals', () => s.server.stats.errors === 50, 5000);
      const logged = s.lines.filter((l) => /WRQ "upload-\d+": refused/.test(l)).length;
      // A burst may straddle two one-second windows.
      assert.ok(logged >= 10 && logged <= 20, `${logged} refusals logged`);
    } finally {
      c.close();
      await s.server.close();
    }
  });

  it('reports a port in use', async () => {
    const a = await startServer();
    const b = createTftpServer({ root, address: '127.0.0.1', port: a.port });
    await assert.rejects(b.listen(), /EADDRINUSE/);
    await b.close();
    await a.server.close();
  });
});
