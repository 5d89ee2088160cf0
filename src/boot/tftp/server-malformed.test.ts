// Malformed and hostile datagrams at the TFTP server's listening port: a corpus of known cases,
// then generated ones (random bytes and mutations of real requests). Whatever arrives, the server
// stays up, answers nothing but requests (and only from a fresh port), answers a request it cannot
// parse with ERROR 4 at most, and keeps serving. Each datagram is sent from a socket of its own, so
// every reply can be matched to what provoked it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tftpGet } from '../../protocols/tftp/client.ts';
import {
  decodePacket,
  encodeAck,
  encodeData,
  encodeError,
  encodeOack,
  encodeRequest,
} from '../../protocols/tftp/packets.ts';
import { createTftpServer, type TftpServer, trimPadding } from './server.ts';
import { RawClient, type Reply } from '../../../test/support/tftp-peers.ts';
import { until } from '../../../test/support/wait.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-tftpd-fuzz-'));
const lines: string[] = [];
let server: TftpServer;
let port = 0;

before(async () => {
  fs.writeFileSync(path.join(work, 'small'), 'hello\n', { mode: 0o644 });
  fs.writeFileSync(path.join(work, 'big'), Buffer.alloc(100_000, 7), { mode: 0o644 });
  // Short timeouts: a mutated request that is still valid starts a transfer nobody will finish.
  server = createTftpServer({
    root: work,
    address: '127.0.0.1',
    port: 0,
    timeoutMs: 100,
    retries: 1,
    log: (l) => lines.push(l),
  });
  port = (await server.listen()).port;
});

after(async () => {
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const raw = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const RRQ = [0, 1];
const WRQ = [0, 2];

/**
 * Sends each datagram from its own socket; returns the replies each got, once the server has
 * answered all it will. That is waited for, not timed, so a busy machine cannot cut it short:
 *   - the server reads its port in order, so once a request sent after the batch is answered,
 *     every datagram of the batch has been read (and every refusal sent: refusals are answered
 *     as the request is read, by the main thread, before the later request's transfer starts);
 *   - the transfers the batch started end when their clients stay silent, and what they send
 *     comes before that.
 * Only then are the sockets closed: a port let go earlier could be taken by the next probe's
 * socket, which would then receive a reply meant for this one.
 */
async function probe(datagrams: Buffer[]): Promise<Reply[][]> {
  const clients = await Promise.all(datagrams.map(() => RawClient.open()));
  const sentinel = await RawClient.open();
  try {
    await Promise.all(datagrams.map((d, i) => clients[i].send(d, port)));
    await sentinel.send(encodeRequest('rrq', 'small', 'octet'), port);
    assert.equal((await sentinel.next(30_000))?.packet.op, 'data', 'the request sent after the batch was served');
    await until('the transfers the batch started to end', () => server.stats.active === 0, 30_000);
    await new Promise((r) => setTimeout(r, 20)); // a turn of the event loop reads replies already queued
    return clients.map((c) => c.replies.splice(0));
  } finally {
    for (const c of [...clients, sentinel]) c.close();
  }
}

/** What the server may answer to `d`; throws on anything else. */
function check(d: Buffer, replies: Reply[], expect?: 'silent' | number | 'data' | 'oack'): void {
  const where = `datagram ${d.subarray(0, 60).toString('hex')}${d.length > 60 ? `... (${d.length} bytes)` : ''}`;
  for (const r of replies) assert.notEqual(r.port, port, `${where}: answered from the listening port`);
  const op = d.length >= 2 ? d.readUInt16BE(0) : -1;
  if (op !== 1 && op !== 2) return assert.deepEqual(replies, [], `${where}: not a request, yet answered`);
  const first = replies[0]?.packet;
  if (decodePacket(trimPadding(d)).op === 'malformed') {
    assert.ok(
      !first || (first.op === 'error' && first.code === 4),
      `${where}: malformed request answered with ${JSON.stringify(first)}`,
    );
  }
  if (expect === undefined) return;
  if (expect === 'silent') return assert.deepEqual(replies, [], `${where}: answered`);
  if (typeof expect === 'number')
    assert.ok(
      first?.op === 'error' && first.code === expect,
      `${where}: expected ERROR ${expect}, got ${JSON.stringify(first)}`,
    );
  else assert.equal(first?.op, expect, `${where}: expected ${expect}`);
}

describe('TFTP server: malformed packets', { timeout: 60_000 }, () => {
  it('a corpus of malformed and odd datagrams', async () => {
    const manyOptions = Array.from({ length: 3000 }, (_, i) => `x${i}\0${i}\0`).join('');
    const corpus: [Buffer, 'silent' | number | 'data' | 'oack'][] = [
      // Not requests: never answered on the listening port, however plausible.
      [Buffer.alloc(0), 'silent'],
      [Buffer.from([1]), 'silent'],
      [Buffer.from([0, 3]), 'silent'],
      [encodeData(1, Buffer.from('x')), 'silent'],
      [encodeAck(0), 'silent'],
      [encodeAck(1), 'silent'],
      [encodeError(5, 'Unknown transfer ID'), 'silent'],
      [encodeOack([['blksize', '512']]), 'silent'],
      [Buffer.from([0, 7, 1, 2, 3]), 'silent'],
      [Buffer.from([0xff, 0xff, 0, 0]), 'silent'],
      [Buffer.from([0, 0]), 'silent'],
      // Requests that do not parse: ERROR 4.
      [Buffer.from(RRQ), 4],
      [raw(RRQ, 'small'), 4],
      [raw(RRQ, 'small', [0]), 4],
      [raw(RRQ, [0], 'octet', [0]), 4],
      [raw(RRQ, 'small', [0], 'octet'), 4],
      [raw(RRQ, 'small', [0], 'octet', [0], 'blksize', [0]), 4], // an option without a value
      [raw(RRQ, 'small', [0], 'octet', [0], 'tsize', [0], '0', [0], 'TSIZE', [0], '0', [0]), 4],
      [raw(RRQ, 'small', [0], 'octet', [0], [0], '512', [0]), 4],
      [raw(RRQ, 'small', [0], 'octet', [0], manyOptions, 'x1', [0], '1', [0]), 4],
      [raw(RRQ, 'A'.repeat(65_000)), 4],
      [raw(WRQ, 'small', [0]), 4],
      // Requests that parse, refused or served.
      [raw(WRQ, 'new', [0], 'octet', [0]), 2],
      [raw(RRQ, 'small', [0], 'mail', [0]), 4],
      [raw(RRQ, 'small', [0], 'OcTeT', [0]), 'data'],
      [raw(RRQ, [0xff, 0xfe, 0x41], [0], 'octet', [0]), 2], // not UTF-8
      [raw(RRQ, 'sm\nall', [0], 'octet', [0]), 2],
      [raw(RRQ, 'x'.repeat(5000), [0], 'octet', [0]), 1],
      [raw(RRQ, 'small', [0], 'octet', [0], [0], [0], [0]), 'data'], // NUL padding, as some PXE ROMs send
      [raw(RRQ, 'small', [0], 'octet', [0], manyOptions), 'data'], // unknown options are ignored
      [
        raw(
          RRQ,
          'small',
          [0],
          'octet',
          [0],
          'blksize',
          [0],
          'abc',
          [0],
          'timeout',
          [0],
          '0',
          [0],
          'windowsize',
          [0],
          '0',
          [0],
          'tsize',
          [0],
          '-1',
          [0],
        ),
        'data',
      ],
      [raw(RRQ, 'small', [0], 'octet', [0], 'blksize', [0], '99999999999', [0], 'timeout', [0], '256', [0]), 'data'],
      [raw(RRQ, 'small', [0], 'octet', [0], 'timeout', [0], '61', [0]), 'data'], // over the server's 60 s cap
      [
        raw(RRQ, 'small', [0], 'octet', [0], 'blksize', [0], '9999999999', [0], 'windowsize', [0], '65536', [0]),
        'oack',
      ],
      [raw(RRQ, 'small', [0], 'octet', [0], 'BlkSize', [0], '7', [0], 'tsize', [0], '0', [0]), 'oack'],
    ];
    const replies = await probe(corpus.map(([d]) => d));
    for (const [i, [d, expect]] of corpus.entries()) check(d, replies[i], expect);
    const oack = replies.at(-2)![0].packet;
    assert.ok(oack.op === 'oack');
    assert.deepEqual(Object.fromEntries(oack.options), { blksize: '1468', windowsize: '16' });
  });

  it('generated datagrams: random bytes and mutated requests', async (t) => {
    const seed = Number(process.env.TFTP_FUZZ_SEED ?? Date.now() % 2 ** 31);
    t.diagnostic(`seed ${seed} (TFTP_FUZZ_SEED to repeat)`);
    let state = seed;
    const rand = () => {
      // mulberry32: small, seedable, good enough to spread inputs
      state = (state + 0x6d2b79f5) | 0;
      let x = Math.imul(state ^ (state >>> 15), 1 | state);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
    };
    const int = (n: number) => Math.floor(rand() * n);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
    const seeds = [
      encodeRequest('rrq', 'small', 'octet'),
      encodeRequest('rrq', 'big', 'netascii', [
        ['blksize', '1024'],
        ['tsize', '0'],
        ['windowsize', '4'],
        ['timeout', '1'],
      ]),
      encodeRequest('wrq', 'small', 'octet', [['blksize', '512']]),
      encodeRequest('rrq', 'sub/../small', 'octet'),
    ];
    const mutate = (b: Buffer): Buffer => {
      const m = Buffer.from(b);
      switch (int(6)) {
        case 0: // flip bytes
          for (let k = 1 + int(4); k > 0; k--) m[int(m.length)] = int(256);
          return m;
        case 1: // truncate
          return m.subarray(0, int(m.length));
        case 2: // a NUL somewhere
          m[2 + int(m.length - 2)] = 0;
          return m;
        case 3: // junk appended
          return Buffer.concat([m, bytes(int(40))]);
        case 4: // a slice repeated
          return Buffer.concat([m, m.subarray(2 + int(m.length - 2))]);
        default: // non-UTF-8 spliced into the strings
          return Buffer.concat([m.subarray(0, 2 + int(m.length - 2)), Buffer.from([0xc3, 0x28, 0xff]), m.subarray(2)]);
      }
    };
    const generate = (): Buffer => {
      const kind = int(4);
      if (kind === 0) return bytes(int(600));
      if (kind === 1) return Buffer.concat([Buffer.from([0, 1 + int(6)]), bytes(int(100))]);
      let d = seeds[int(seeds.length)];
      for (let k = 1 + int(3); k > 0; k--) d = mutate(d);
      return d;
    };
    let answered = 0;
    for (let round = 0; round < 20; round++) {
      const batch = Array.from({ length: 100 }, generate);
      const replies = await probe(batch);
      for (const [i, d] of batch.entries()) check(d, replies[i]);
      answered += replies.filter((r) => r.length).length;
    }
    t.diagnostic(`2000 datagrams, ${answered} answered; stats ${JSON.stringify(server.stats)}`);
  });

  it('is still serving afterwards, with no transfer left behind', async () => {
    const r = await tftpGet(`127.0.0.1:${port}`, 'big', { windowsize: 8 });
    assert.equal(r.data.length, 100_000);
    for (let i = 0; server.stats.active > 0; i++) {
      assert.ok(i < 300, `transfers still active: ${server.stats.active}`);
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.ok(!lines.some((l) => /internal error/.test(l)), lines.filter((l) => /internal error/.test(l)).join('\n'));
  });
});
