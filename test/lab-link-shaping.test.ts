// `cradle lab --link-mbit`: a shaped lab link really holds its rate, shared by the machines, in
// each direction. Two "machines" (namespaces of their own, plugged into the lab's bridge by veth
// pairs) download from and upload to a server in the lab's namespace at the same time; the bytes
// both moved over the time from the first byte to the last are at most the link's rate (with
// room for HTB's burst), where the same veths without shaping move several Gbit/s.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LabNetwork } from '../src/lab/network.ts';
import { isRoot, tmpDir } from './helpers.ts';

const MBIT = 40;
const BYTES_EACH = 4 * 1024 * 1024; // ~1.7 s for two machines at 40 Mbit/s
const PORT = 7391;

// One end of a transfer, run with node inside a namespace: `serve MODE BYTES` (accepts two
// connections; sends BYTES to each, or reads until the peer ends), or `connect HOST MODE BYTES`
// (the other end). Prints the first and last byte's time (ms, wall clock) and the bytes moved.
const ENDPOINT = `
const net = require('node:net');
const [role, ...rest] = process.argv.slice(2);
const chunk = Buffer.alloc(64 * 1024, 7);
function run(sock, mode, bytes, done) {
  let first, last, n = 0;
  if (mode === 'send') {
    const pump = () => { while (n < bytes) { n += chunk.length; if (!sock.write(chunk)) return sock.once('drain', pump); } sock.end(); };
    first = Date.now(); pump(); sock.on('close', () => done({ first, last: Date.now(), bytes: n }));
  } else {
    sock.on('data', (d) => { first ??= Date.now(); n += d.length; last = Date.now(); });
    sock.on('end', () => { sock.end(); done({ first, last, bytes: n }); });
  }
}
if (role === 'serve') {
  const [mode, bytes] = rest; let left = 2;
  const server = net.createServer((s) => run(s, mode, Number(bytes), (r) => { console.log(JSON.stringify(r)); if (--left === 0) server.close(); }));
  server.listen(${PORT}, () => console.log('listening'));
} else {
  const [host, mode, bytes] = rest;
  const s = net.connect(${PORT}, host, () => run(s, mode, Number(bytes), (r) => console.log(JSON.stringify(r))));
}
`;

interface Moved {
  first: number;
  last: number;
  bytes: number;
}

const skip = !isRoot() && 'needs root (network namespaces)';

describe('lab link shaped to 40 Mbit/s, two machines at once', { skip }, () => {
  const ns = `cradle-e2e-linkshape-${process.pid}`;
  const peers = ['a', 'b'].map((l) => `cradle-e2e-linkpeer${l}-${process.pid}`);
  let net: LabNetwork;
  let script: string;
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

  before(() => {
    script = path.join(tmpDir('cradle-linkshape-'), 'endpoint.cjs');
    fs.writeFileSync(script, ENDPOINT);
    net = new LabNetwork({ namespace: ns, address: '10.79.0.1', prefix: 24, ipv6: false });
    net.create();
    net.shapeLink(MBIT);
    peers.forEach((p, i) => {
      ip('netns', 'add', p);
      ip('link', 'add', `vpeer${i}`, 'netns', ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p);
      ip('-n', ns, 'link', 'set', `vpeer${i}`, 'master', net.bridge);
      ip('-n', ns, 'link', 'set', `vpeer${i}`, 'up');
      ip('-n', p, 'address', 'add', `10.79.0.${10 + i}/24`, 'dev', 'eth0');
      ip('-n', p, 'link', 'set', 'eth0', 'up');
      ip('-n', p, 'link', 'set', 'lo', 'up');
    });
  });

  after(async () => {
    for (const p of peers) if (ip('netns', 'list').includes(p)) ip('netns', 'del', p);
    await net?.destroy();
  });

  /** Runs `args` with node in namespace `where`; resolves with its JSON lines once it exits. */
  function endpoint(where: string, args: string[], onListening?: () => void): Promise<Moved[]> {
    const child = spawn('ip', ['netns', 'exec', where, process.execPath, script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (onListening && out.includes('listening\n')) {
        onListening();
        onListening = undefined;
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    return new Promise((resolve, reject) =>
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (code !== 0) reject(new Error(`endpoint ${args.join(' ')} in ${where} exited ${code}: ${out}`));
        else
          resolve(
            out
              .split('\n')
              .filter((l) => l.startsWith('{'))
              .map((l) => JSON.parse(l) as Moved),
          );
      }),
    );
  }

  /** Both machines move BYTES_EACH at once; the server sends (download) or receives (upload). */
  async function transfer(serverMode: 'send' | 'recv'): Promise<number> {
    let ready!: () => void;
    const listening = new Promise<void>((r) => (ready = r));
    const server = endpoint(ns, ['serve', serverMode, String(BYTES_EACH)], () => ready());
    await listening;
    const clientMode = serverMode === 'send' ? 'recv' : 'send';
    const clients = await Promise.all(
      peers.map((p) => endpoint(p, ['connect', '10.79.0.1', clientMode, String(BYTES_EACH)])),
    );
    await server;
    // The receiving side's clock: from its first byte to its last, over both machines.
    const received = serverMode === 'send' ? clients.flat() : await server;
    const bytes = received.reduce((n, r) => n + r.bytes, 0);
    assert.ok(bytes >= 2 * BYTES_EACH, `all bytes arrived (${bytes})`);
    const seconds = (Math.max(...received.map((r) => r.last)) - Math.min(...received.map((r) => r.first))) / 1000;
    return (bytes * 8) / seconds / 1e6;
  }

  test('downloads from the servers share the rate', async (t) => {
    const mbit = await transfer('send');
    t.diagnostic(`${mbit.toFixed(1)} Mbit/s`);
    assert.ok(mbit <= MBIT * 1.25, `two downloads together moved ${mbit.toFixed(1)} Mbit/s over a ${MBIT} Mbit/s link`);
  });

  test('uploads to the servers share the rate', async (t) => {
    const mbit = await transfer('recv');
    t.diagnostic(`${mbit.toFixed(1)} Mbit/s`);
    assert.ok(mbit <= MBIT * 1.25, `two uploads together moved ${mbit.toFixed(1)} Mbit/s over a ${MBIT} Mbit/s link`);
  });
});
