// The image server (`cradle imageserver`) under hostile input: see harness.ts. Beyond the
// attacks every port gets: clients that ask for a large object and never read it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DEFAULT_LIMITS } from '../../src/util/http/connections.ts';
import { cradleBin, tmpDir } from '../helpers.ts';
import { until } from '../support/wait.ts';
import { abuseSuite, type Target } from './harness.ts';
import { loopbackTarget, startProcess } from './targets.ts';

/** Larger than loopback's socket buffers on both sides hold: a client that reads none leaves most unsent. */
const LARGE = crypto.randomBytes(48 * 1024 * 1024);
const LARGE_DIGEST = `sha256:${crypto.createHash('sha256').update(LARGE).digest('hex')}`;

/**
 * TCP connections from `source` to 127.0.0.1:`port` the kernel holds as established, read from
 * /proc/net/tcp: a client that reads nothing does not notice the server's reset until it reads.
 */
function establishedFrom(source: string, port: number): number {
  const hex = (ip: string) =>
    ip
      .split('.')
      .reverse()
      .map((b) => Number(b).toString(16).padStart(2, '0'))
      .join('')
      .toUpperCase();
  const local = `${hex(source)}:`;
  const remote = `${hex('127.0.0.1')}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return fs
    .readFileSync('/proc/net/tcp', 'latin1')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, l, r, state]) => l?.startsWith(local) && r === remote && state === '01').length;
}

/** Asks for the large object from `source` `count` times at once, and reads nothing of the answers. */
async function stallOn(t: Target, source: string, count: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: t.host, port: t.port, localAddress: source });
          s.pause();
          s.once('error', reject);
          s.once('connect', () => {
            s.write(`GET /v1/objects/${LARGE_DIGEST} HTTP/1.1\r\nHost: x\r\n\r\n`);
            resolve(s);
          });
        }),
    ),
  );
}

abuseSuite(
  'image server',
  async () => {
    const work = tmpDir('cradle-abuse-store-');
    const store = path.join(work, 'store');
    fs.mkdirSync(path.join(work, 'tree/etc'), { recursive: true });
    fs.writeFileSync(path.join(work, 'tree/etc/hostname'), 'abused\n');
    fs.writeFileSync(path.join(work, 'tree/large'), LARGE);
    execFileSync(cradleBin, ['image', 'add', 'abuse/1', path.join(work, 'tree'), '--store', store]);
    const s = await startProcess(
      [cradleBin, 'imageserver', '--store', store, '--listen', '127.0.0.1', '--port', '0'],
      /on http:\/\/127\.0\.0\.1:(\d+)/,
    );
    return loopbackTarget(s, Number(s.match[1]), {
      normalPath: '/v1/images',
      bodies: [{ method: 'POST', path: '/v1/objects/batch', limit: 8 * 1024 * 1024 }],
      prefixes: ['/v1/objects/', '/v1/manifests/', '/v1/images/'],
      cleanup: () => fs.rmSync(work, { recursive: true, force: true }),
    });
  },
  {
    extra: {
      'clients that ask for a large object and read none of it are reset after the send timeout; the port serves meanwhile':
        async (t) => {
          const source = t.sources[2];
          const stalled = await stallOn(t, source, 8);
          try {
            assert.equal(
              establishedFrom(source, t.port),
              stalled.length,
              'stalled downloads, as the kernel lists them',
            );
            await t.normal(t.sources.at(-1)!);
            await until(
              'every stalled download reset by the server',
              () => establishedFrom(source, t.port) === 0,
              DEFAULT_LIMITS.sendTimeoutMs * 2 + 15_000,
            );
          } finally {
            for (const s of stalled) s.destroy();
          }
        },
    },
  },
);
