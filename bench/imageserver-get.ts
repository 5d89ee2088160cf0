// Benchmark: single-object GETs from `cradle imageserver` (what caches, proxies and peers use) vs
// nginx serving the same bytes as static files: the decompressed object for plain GETs, and the
// stored zstd frame (sent with `Content-Encoding: zstd`) when the client sends
// `Accept-Encoding: zstd`. Both servers run on core 1 (taskset; nginx with one worker) and wrk on
// core 0, over loopback, with keep-alive. Four cases: a few-KB object (req/s) and a ~10 MB object
// (MiB/s of the representation sent), each plain and zstd. Each case is run in short bursts,
// interleaved between the servers, and the median taken. For the small object a third server, a
// bare node:http one answering from memory, shows the floor of a server on node:http (Cradle's
// answers such requests below it, by its fast lane: util/http/fast-lane.ts); the server's CPU
// per request is recorded beside each rate (it holds when other work shares the machine).
//
//   flock /tmp/cradle-bench.lock node_modules/.bin/node bench/imageserver-get.ts
//   (BENCH_RUNS, BENCH_SECONDS per burst, BENCH_CONNECTIONS)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImageStore } from '../src/image/store/store.ts';
import { digestHex, type Digest } from '../src/image/model/digest.ts';
import { table } from '../src/util/format.ts';
import {
  type Cleanup,
  cpuSeconds,
  cradleBin,
  exec,
  freePort,
  RUNS,
  runBenchmark,
  stopChild,
  tempDir,
  withChildren,
  writeResults,
} from './lib.ts';
import { median, ratioLine } from './measure.ts';

const NAME = 'imageserver-get';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const SERVER_CORE = '1';
const LOAD_CORE = '0';
const MiB = 1024 * 1024;

/** Text-like content (words and newlines from a fixed generator): compresses as source files do. */
function text(bytes: number, seed: number): Buffer {
  const words = 'the boot image kernel module firmware object store server install node rack disk'.split(' ');
  const parts: string[] = [];
  let n = 0;
  let x = seed;
  while (n < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const w = `${words[x % words.length]}${x % 9 === 0 ? '\n' : ' '}${x % 5 === 0 ? (x >>> 20).toString(16) : ''}`;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('').slice(0, bytes));
}

interface Case {
  name: string;
  zstd: boolean;
  digest: Digest;
  /** Bytes of the representation sent (stored frame for zstd, content otherwise). */
  bodyBytes: number;
  /** Rate reported: requests or MiB per second. */
  unit: 'req/s' | 'MiB/s';
}

/** nginx on core 1, one worker: plain/<hex> is the content, zst/<hex> the stored frame. */
async function startNginx(c: Cleanup, root: string, work: string): Promise<{ url: string; pid: number }> {
  const dir = path.join(work, 'nginx');
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location /zst/ { add_header Content-Encoding zstd; add_header Vary Accept-Encoding; }
  }
}
`,
  );
  const child = spawn(
    'taskset',
    ['-c', SERVER_CORE, 'nginx', '-e', path.join(dir, 'error.log'), '-p', dir, '-c', conf],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  c.defer(`stop nginx ${child.pid}`, () => stopChild(child, 'nginx'));
  const url = `http://127.0.0.1:${port}`;
  await waitUp(`${url}/plain/`, () => child.exitCode !== null, 'nginx');
  return { url, pid: child.pid! };
}

/** `cradle imageserver` on core 1 (taskset and bin/cradle exec, so the pid is node's). */
async function startCradle(c: Cleanup, store: string): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const child = spawn(
    'taskset',
    ['-c', SERVER_CORE, cradleBin, 'imageserver', '--store', store, '--port', String(port), '--listen', '127.0.0.1'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  c.defer(`stop imageserver ${child.pid}`, () => stopChild(child, 'imageserver'));
  const url = `http://127.0.0.1:${port}`;
  await waitUp(`${url}/healthz`, () => child.exitCode !== null, 'cradle imageserver');
  return { url, pid: child.pid! };
}

/**
 * The floor of any server on node:http: the small object's two representations from memory with
 * the same headers, and nothing else (no routing, limits, metrics or cache). Not a peer: it shows
 * how much of the gap to nginx is Node's HTTP stack itself.
 */
async function startNodeFloor(c: Cleanup, content: Buffer, stored: Buffer): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const script = `
const http = require('node:http');
const [content, stored] = JSON.parse(process.argv[1]).map((b) => Buffer.from(b, 'base64'));
http.createServer({ keepAlive: true }, (req, res) => {
  const zstd = req.headers['accept-encoding'] === 'zstd';
  const body = zstd ? stored : content;
  res.writeHead(200, { etag: '"x"', 'cache-control': 'public, max-age=31536000, immutable',
    'content-type': 'application/octet-stream', 'content-length': body.length,
    ...(zstd ? { 'content-encoding': 'zstd' } : {}) });
  res.end(body);
}).listen(${port}, '127.0.0.1');`;
  const args = JSON.stringify([content.toString('base64'), stored.toString('base64')]);
  const child = spawn('taskset', ['-c', SERVER_CORE, process.execPath, '-e', script, args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  c.defer(`stop the node:http floor ${child.pid}`, () => stopChild(child, 'node:http floor'));
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url, () => child.exitCode !== null, 'the node:http floor');
  return { url, pid: child.pid! };
}

async function waitUp(url: string, exited: () => boolean, what: string): Promise<void> {
  for (let i = 0; ; i++) {
    if (exited()) throw new Error(`${what} exited before answering ${url}`);
    const ok = await fetch(url).then(
      () => true,
      () => false,
    );
    if (ok) return;
    if (i > 200) throw new Error(`${what} did not answer ${url} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One wrk burst on core 0: requests per second, and errors (non-2xx, socket errors). */
async function wrk(url: string, zstd: boolean, seconds = SECONDS): Promise<{ rps: number; errors: number }> {
  // wrk's default timeout (2 s) is counted as an error; on a loaded 2-core machine one of sixteen
  // 10 MiB responses occasionally took longer, from Cradle before and after its small-object
  // changes alike, so allow 10 s.
  const args = ['-c', LOAD_CORE, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '10s'];
  if (zstd) args.push('-H', 'Accept-Encoding: zstd');
  const { stdout } = await exec('taskset', [...args, url]);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!rps) throw new Error(`no Requests/sec in wrk's output: ${stdout}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps: Number(rps[1]), errors };
}

/** The body a server sends, checked against the expected bytes (and the header for zstd). */
async function check(url: string, zstd: boolean, expected: Buffer, what: string): Promise<void> {
  const out = path.join('/tmp', `${NAME}-${process.pid}.body`);
  const head = await exec('curl', [
    '-sSf',
    '-D',
    '-',
    '-o',
    out,
    ...(zstd ? ['-H', 'Accept-Encoding: zstd'] : []),
    url,
  ]);
  const got = fs.readFileSync(out);
  fs.rmSync(out);
  if (!got.equals(expected))
    throw new Error(`${what} sent ${got.length} bytes that differ from the expected ${expected.length}`);
  if (zstd && !/^content-encoding:\s*zstd/im.test(head.stdout))
    throw new Error(`${what} sent no Content-Encoding: zstd`);
}

await runBenchmark(NAME, async (c) => {
  const work = tempDir(c, NAME);
  const store = new ImageStore(path.join(work, 'store')).init();
  const web = path.join(work, 'www');
  fs.mkdirSync(path.join(web, 'plain'), { recursive: true });
  fs.mkdirSync(path.join(web, 'zst'), { recursive: true });
  const add = async (content: Buffer) => {
    const { digest } = await store.putObject(content);
    const hex = digestHex(digest);
    fs.writeFileSync(path.join(web, 'plain', hex), content);
    fs.copyFileSync(store.objectPath(digest), path.join(web, 'zst', hex));
    return { digest, content, stored: fs.readFileSync(store.objectPath(digest)) };
  };
  const smalls = [];
  for (let i = 0; i < 4; i++) smalls.push(await add(text(3000 + 1500 * i, i + 1)));
  // Half random (incompressible, as in binaries and compressed files), half text.
  const big = await add(Buffer.concat([randomBytes(5 * MiB), text(5 * MiB, 99)]));
  await exec('chmod', ['-R', 'a+rX', work]); // nginx's worker runs as nobody

  const small = smalls[1];
  const cases: Case[] = [
    { name: 'small object', zstd: false, digest: small.digest, bodyBytes: small.content.length, unit: 'req/s' },
    { name: 'small object, zstd', zstd: true, digest: small.digest, bodyBytes: small.stored.length, unit: 'req/s' },
    { name: '10 MiB object', zstd: false, digest: big.digest, bodyBytes: big.content.length, unit: 'MiB/s' },
    { name: '10 MiB object, zstd', zstd: true, digest: big.digest, bodyBytes: big.stored.length, unit: 'MiB/s' },
  ];
  console.log(
    `${NAME}: small object ${small.content.length} bytes (${small.stored.length} stored); big ${big.content.length} bytes (${big.stored.length} stored); wrk -c${CONNECTIONS}, ${SECONDS} s bursts, ${RUNS} runs`,
  );

  const cradle = await startCradle(c, store.root);
  const nginx = await startNginx(c, web, work);
  const floor = await startNodeFloor(c, small.content, small.stored);
  const servers = [
    { name: 'cradle', pids: [cradle.pid], url: (k: Case) => `${cradle.url}/v1/objects/${k.digest}` },
    {
      name: 'nginx',
      pids: withChildren(nginx.pid),
      url: (k: Case) => `${nginx.url}/${k.zstd ? 'zst' : 'plain'}/${digestHex(k.digest)}`,
    },
    { name: 'node:http floor', pids: [floor.pid], url: () => `${floor.url}/`, smallOnly: true },
  ];
  const serversOf = (k: Case) => servers.filter((s) => !s.smallOnly || k.digest === small.digest);
  for (const k of cases)
    for (const s of serversOf(k)) {
      const expected = k.digest === big.digest ? big : small;
      await check(s.url(k), k.zstd, k.zstd ? expected.stored : expected.content, `${s.name} (${k.name})`);
    }
  console.log(`${NAME}: every server sends the same bytes for every case`);

  // CPU per request is the figure that survives a shared machine: when the cores are busy with
  // other work, the rates of both servers drop, but what each request costs its server does not.
  type Sample = { rate: number; rps: number; cpu: number; usPerRequest: number; errors: number };
  const samples: Record<string, Record<string, Sample[]>> = {};
  for (const k of cases) {
    samples[k.name] = Object.fromEntries(serversOf(k).map((s) => [s.name, []]));
    for (const s of serversOf(k)) await wrk(s.url(k), k.zstd, 1); // warm-up
    for (let i = 0; i < RUNS; i++) {
      for (const s of i % 2 ? [...serversOf(k)].reverse() : serversOf(k)) {
        const cpu0 = cpuSeconds(s.pids);
        const r = await wrk(s.url(k), k.zstd);
        const cpu = cpuSeconds(s.pids) - cpu0;
        const rate = k.unit === 'req/s' ? r.rps : (r.rps * k.bodyBytes) / MiB;
        const usPerRequest = (1e6 * cpu) / (r.rps * SECONDS);
        samples[k.name][s.name].push({ rate, rps: r.rps, cpu: cpu / SECONDS, usPerRequest, errors: r.errors });
        console.log(
          `  ${k.name.padEnd(20)} ${s.name.padEnd(16)} ${rate.toFixed(0).padStart(7)} ${k.unit}, server CPU ${((100 * cpu) / SECONDS).toFixed(0)}%, ${usPerRequest.toFixed(0)} µs/request${r.errors ? `, ${r.errors} errors` : ''}`,
        );
      }
    }
  }

  const pick = (k: Case, s: string, f: keyof Sample) => {
    const xs = samples[k.name][s];
    return xs ? median(xs.map((x) => x[f])) : Number.NaN;
  };
  const med = (k: Case, s: string) => pick(k, s, 'rate');
  const us = (k: Case, s: string) => pick(k, s, 'usPerRequest');
  const fmt = (n: number, unit = '') => (Number.isNaN(n) ? '-' : `${n.toFixed(0)}${unit}`);
  console.log();
  console.log(
    table(
      ['case', 'cradle', 'nginx', 'ratio', 'goal', 'node:http floor', 'CPU µs/req: cradle', 'nginx', 'floor'],
      cases.map((k) => [
        k.name,
        `${fmt(med(k, 'cradle'))} ${k.unit}`,
        `${fmt(med(k, 'nginx'))} ${k.unit}`,
        `${(med(k, 'cradle') / med(k, 'nginx')).toFixed(2)}x`,
        k.zstd ? '>= 1.00x' : '>= 0.50x',
        fmt(med(k, 'node:http floor'), ` ${k.unit}`),
        fmt(us(k, 'cradle')),
        fmt(us(k, 'nginx')),
        fmt(us(k, 'node:http floor')),
      ]),
    ),
  );
  const errors = Object.values(samples)
    .flatMap((s) => Object.values(s).flat())
    .reduce((a, x) => a + x.errors, 0);
  if (errors) throw new Error(`${errors} failed requests under load: the figures above do not count`);
  const file = writeResults(NAME, {
    smallBytes: small.content.length,
    smallStoredBytes: small.stored.length,
    bigBytes: big.content.length,
    bigStoredBytes: big.stored.length,
    seconds: SECONDS,
    connections: CONNECTIONS,
    samples,
    medians: Object.fromEntries(
      cases.map((k) => [
        k.name,
        {
          cradle: med(k, 'cradle'),
          nginx: med(k, 'nginx'),
          nodeHttpFloor: med(k, 'node:http floor'),
          unit: k.unit,
          cpuMicrosecondsPerRequest: {
            cradle: us(k, 'cradle'),
            nginx: us(k, 'nginx'),
            nodeHttpFloor: us(k, 'node:http floor'),
          },
        },
      ]),
    ),
    target: 'cradle >= 0.5x nginx on plain GETs, >= 1.0x with Accept-Encoding: zstd',
  });
  console.log(`results: ${file}`);
  for (const k of cases)
    console.log(
      ratioLine(
        `${NAME} ${k.name}`,
        { label: 'cradle', value: `${med(k, 'cradle').toFixed(0)} ${k.unit}`, n: med(k, 'cradle') },
        { label: 'nginx', value: `${med(k, 'nginx').toFixed(0)} ${k.unit}`, n: med(k, 'nginx') },
        `higher is better for cradle; goal >= ${k.zstd ? '1.00' : '0.50'}`,
      ),
    );
});
