// Benchmark: 32 clients at once fetching every object of the Debian image (7k objects), from one
// `cradle imageserver` (batch endpoint) vs nginx serving the store's object files as static files
// (the same zstd bytes, one file per object, one GET each). Clients write nothing to disk: this
// measures serving, not unpacking. Aggregate throughput = stored (compressed) object bytes
// delivered to all clients per second of wall time.
//
// Client model, the same for both sides: CLIENT_PROCS Node processes (default 4) each running
// 32/CLIENT_PROCS clients, every client on its own keep-alive connection. One process with 32
// clients would mostly measure that process's single JS thread; 4 processes let the client side use
// both cores. The processes start before timing and stay up across runs. Two modes:
//   verify: what an installer does with what it receives: ours through ImageServerClient.
//           fetchObjects (decompress in groups on the pool, sha256 every object); nginx's objects
//           decompressed and sha256-checked one by one with the store's own decompress().
//   raw:    bytes are counted and dropped (ours: the batch object stream parsed into frames), so
//           the server's side weighs more. On this 2-core machine clients and server share the
//           cores in both modes; neither is a pure server measurement.
//
//   node_modules/.bin/node bench/concurrent-clients.ts   (BENCH_RUNS, BENCH_CLIENTS, BENCH_CLIENT_PROCS)
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ImageServerClient } from '../src/image/transfer/client.ts';
import { digestHex, digestOf, type Digest } from '../src/image/model/digest.ts';
import { ObjectStreamParser } from '../src/image/transfer/object-stream.ts';
import { decompress, ImageStore } from '../src/image/store/store.ts';
import { table } from '../src/util/format.ts';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import {
  type Cleanup,
  cpuSeconds,
  cradleBin,
  exec,
  LoopFs,
  runBenchmark,
  startCradleServer,
  startNginx,
  tempDir,
  withChildren,
  writeResults,
} from './lib.ts';
import { measureInterleaved, medians, mb, mbps, ratioLine, type Sample } from './measure.ts';

const NAME = 'concurrent-clients';
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const PROCS = Number(process.env.BENCH_CLIENT_PROCS ?? 4);
const BATCH = 4096; // as ImageServerClient asks

interface Obj {
  digest: Digest;
  size: number;
  stored: number;
}
interface Job {
  side: 'cradle' | 'nginx';
  mode: 'verify' | 'raw';
  url: string;
  clients: number;
}
interface Done {
  storedBytes: number;
  contentBytes: number;
  objects: number;
}

// ---- worker side: runs `clients` clients concurrently and reports what they received ----

function get(agent: http.Agent, url: string): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => resolve(chunks));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function postBatch(agent: http.Agent, url: string, digests: Digest[], onChunk: (b: Buffer) => void): Promise<void> {
  const body = Buffer.from(JSON.stringify({ digests }));
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/objects/batch`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`batch: ${res.statusCode}`));
        res.on('data', onChunk);
        res.on('end', resolve);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function runClient(job: Job, objects: Obj[]): Promise<Done> {
  const done: Done = { storedBytes: 0, contentBytes: 0, objects: 0 };
  if (job.side === 'cradle' && job.mode === 'verify') {
    const client = new ImageServerClient(job.url);
    try {
      await client.fetchObjects(objects, (_d, content) => {
        done.objects++;
        done.contentBytes += content.length;
      });
      done.storedBytes = client.stats.wireBytes;
    } finally {
      client.close();
    }
    return done;
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    if (job.side === 'cradle') {
      for (let i = 0; i < objects.length; i += BATCH) {
        const parser = new ObjectStreamParser(() => Number.MAX_SAFE_INTEGER, job.url);
        await postBatch(
          agent,
          job.url,
          objects.slice(i, i + BATCH).map((o) => o.digest),
          (chunk) => {
            for (const frame of parser.push(chunk)) {
              done.objects++;
              done.storedBytes += frame.stored.length;
            }
          },
        );
      }
      return done;
    }
    for (const o of objects) {
      const hex = digestHex(o.digest);
      const chunks = await get(agent, `${job.url}/objects/sha256/${hex.slice(0, 2)}/${hex}`);
      const stored = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      done.objects++;
      done.storedBytes += stored.length;
      if (job.mode === 'verify') {
        const content = await decompress(stored);
        if (digestOf(content) !== o.digest) throw new Error(`object ${o.digest} from nginx is corrupt`);
        done.contentBytes += content.length;
      }
    }
    return done;
  } finally {
    agent.destroy();
  }
}

function worker(objectsFile: string): void {
  const objects = JSON.parse(fs.readFileSync(objectsFile, 'utf8')) as Obj[];
  process.on('message', (job: Job) => {
    Promise.all(Array.from({ length: job.clients }, () => runClient(job, objects))).then(
      (all) =>
        process.send!({
          ok: all.reduce((a, d) => ({
            storedBytes: a.storedBytes + d.storedBytes,
            contentBytes: a.contentBytes + d.contentBytes,
            objects: a.objects + d.objects,
          })),
        }),
      (err: Error) => process.send!({ error: err.stack ?? err.message }),
    );
  });
  process.send!({ ready: true });
}

// ---- parent side ----

async function startWorkers(c: Cleanup, objectsFile: string): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = [];
  for (let i = 0; i < PROCS; i++) {
    const w = fork(import.meta.filename, ['--worker', objectsFile], {
      execArgv: ['--disable-warning=ExperimentalWarning'],
    });
    c.defer(`stop client process ${w.pid}`, async () => {
      if (w.exitCode !== null || w.signalCode !== null) return;
      const exited = new Promise((r) => w.once('exit', r));
      w.kill();
      await exited;
    });
    workers.push(w);
    await new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('exit', (code) => reject(new Error(`client process exited (${code}) before it was ready`)));
    });
  }
  return workers;
}

/** Throughput figures of one round; CPU seconds tell where the round's work went. */
function sample(seconds: number, objects: Obj[], got: Done, serverCpu: number, clientCpu: number): Sample {
  const storedBytes = CLIENTS * objects.reduce((n, o) => n + o.stored, 0);
  return { seconds, storedBytes, wireBytes: got.storedBytes, contentBytes: got.contentBytes, serverCpu, clientCpu };
}

/** One timed round: every worker runs its share of the clients; wall time from start to the last. */
async function round(
  workers: ChildProcess[],
  job: Omit<Job, 'clients'>,
  objects: Obj[],
  serverPids: number[],
): Promise<Sample> {
  const per = CLIENTS / PROCS;
  const clientPids = workers.map((w) => w.pid!);
  const [server0, client0] = [cpuSeconds(serverPids), cpuSeconds(clientPids)];
  const started = performance.now();
  const results = await Promise.all(
    workers.map(
      (w) =>
        new Promise<Done>((resolve, reject) => {
          w.once('message', (m: { ok?: Done; error?: string }) => (m.ok ? resolve(m.ok) : reject(new Error(m.error))));
          w.send({ ...job, clients: per });
        }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const got = results.reduce((a, d) => ({
    storedBytes: a.storedBytes + d.storedBytes,
    contentBytes: a.contentBytes + d.contentBytes,
    objects: a.objects + d.objects,
  }));
  if (got.objects !== objects.length * CLIENTS)
    throw new Error(`${job.side}/${job.mode}: ${got.objects} objects received, expected ${objects.length * CLIENTS}`);
  return sample(seconds, objects, got, cpuSeconds(serverPids) - server0, cpuSeconds(clientPids) - client0);
}

/**
 * Reference only: the same GETs from curl (C, --parallel) in place of Node, PROCS processes with
 * CLIENTS/PROCS transfers in flight each, to show how much of nginx's figure is Node's client.
 */
async function curlRound(configFile: string, objects: Obj[], serverPids: number[]): Promise<Sample> {
  const [server0, client0] = [cpuSeconds(serverPids), cpuSeconds([process.pid], true)];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: PROCS }, () =>
      exec('curl', ['-sf', '--parallel', '--parallel-max', String(CLIENTS / PROCS), '-K', configFile]),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const got = { objects: objects.length * CLIENTS, storedBytes: NaN, contentBytes: 0 };
  return sample(seconds, objects, got, cpuSeconds(serverPids) - server0, cpuSeconds([process.pid], true) - client0);
}

async function main(): Promise<void> {
  if (CLIENTS % PROCS)
    throw new Error(`BENCH_CLIENTS (${CLIENTS}) must be a multiple of BENCH_CLIENT_PROCS (${PROCS})`);
  await runBenchmark(NAME, async (c) => {
    const work = tempDir(c, NAME);
    const src = await LoopFs.create(c, work, 'src', 1024);
    const store = src.path('store');
    await exec(cradleBin, ['image', 'add', 'bench/debian', debianRootfs(), '--store', store]);
    const s = ImageStore.open(store);
    const manifest = await s.readManifest(s.resolve('bench/debian').manifest);
    const objects = new Map<Digest, Obj>();
    for (const e of manifest.entries) {
      if (e.type === 'file' && e.digest)
        objects.set(e.digest as Digest, {
          digest: e.digest as Digest,
          size: e.size,
          stored: s.storedSize(e.digest as Digest)!,
        });
    }
    const list = [...objects.values()];
    const objectsFile = path.join(work, 'objects.json');
    fs.writeFileSync(objectsFile, JSON.stringify(list));
    const perClient = list.reduce((n, o) => n + o.stored, 0);
    const ours = await startCradleServer(c, store);
    const nginx = await startNginx(c, store, work); // objects/sha256/ab/<hex> served as they lie
    const workers = await startWorkers(c, objectsFile);
    console.log(
      `${NAME}: ${CLIENTS} clients in ${PROCS} processes, each fetching ${list.length} objects (${mb(perClient)} stored) → ${mb(perClient * CLIENTS)} per round`,
    );

    const oursPids = [ours.pid];
    const nginxPids = withChildren(nginx.pid);
    // curl's config: every object once per client that process runs, output discarded.
    const curlConfig = path.join(work, 'curl.cfg');
    const urls = list
      .map(
        (o) =>
          `url = "${nginx.url}/objects/sha256/${digestHex(o.digest).slice(0, 2)}/${digestHex(o.digest)}"\noutput = "/dev/null"\n`,
      )
      .join('');
    fs.writeFileSync(curlConfig, urls.repeat(CLIENTS / PROCS));

    const results: Record<string, { samples: Record<string, Sample[]>; cradle: Sample; nginx: Sample; curl?: Sample }> =
      {};
    for (const mode of ['raw', 'verify'] as const) {
      console.log(`mode ${mode}:`);
      const sides = [
        {
          name: `cradle imageserver (${mode})`,
          run: () => round(workers, { side: 'cradle', mode, url: ours.url }, list, oursPids),
        },
        {
          name: `nginx static files (${mode})`,
          run: () => round(workers, { side: 'nginx', mode, url: nginx.url }, list, nginxPids),
        },
      ];
      if (mode === 'raw')
        sides.push({ name: 'nginx, curl clients (raw)', run: () => curlRound(curlConfig, list, nginxPids) });
      const samples = await measureInterleaved(sides);
      results[mode] = {
        samples,
        cradle: medians(samples[sides[0].name]),
        nginx: medians(samples[sides[1].name]),
        curl: sides[2] && medians(samples[sides[2].name]),
      };
    }

    console.log();
    const rows: string[][] = [];
    for (const [mode, r] of Object.entries(results)) {
      const entries: [string, Sample][] = [
        [`cradle imageserver (${mode})`, r.cradle],
        [`nginx static files (${mode})`, r.nginx],
      ];
      if (r.curl) entries.push(['nginx, curl clients (raw)', r.curl]);
      for (const [name, m] of entries) {
        const all = r.samples[name].map((x) => mbps(x.storedBytes, x.seconds).replace(' MB/s', '')).join(' ');
        const content = mode === 'verify' ? mbps(m.contentBytes, m.seconds) : '-';
        rows.push([
          name,
          `${m.seconds.toFixed(2)} s`,
          mbps(m.storedBytes, m.seconds),
          content,
          `${m.serverCpu.toFixed(1)} s`,
          mb(m.storedBytes / m.serverCpu),
          `${m.clientCpu.toFixed(1)} s`,
          all,
        ]);
      }
    }
    console.log(
      table(
        [
          '',
          'median round',
          'aggregate (stored bytes)',
          'aggregate (content)',
          'server CPU',
          'per server CPU-s',
          'clients CPU',
          'runs (MB/s)',
        ],
        rows,
      ),
    );
    // Clients and server share 2 cores, so where the CPU went says which side bounds a figure.
    console.log('CPU: seconds used per round (median) by the server processes and by the client processes; 2 cores.');
    console.log('Our server is one process (one JS thread); nginx runs a worker per core.');
    const file = writeResults(NAME, {
      clients: CLIENTS,
      clientProcesses: PROCS,
      objects: list.length,
      storedBytesPerClient: perClient,
      results,
      ratios: Object.fromEntries(
        Object.entries(results).map(([mode, r]) => [mode, r.nginx.seconds / r.cradle.seconds]),
      ),
    });
    console.log(`results: ${file}`);
    for (const mode of ['raw', 'verify']) {
      const r = results[mode];
      const o = r.cradle.storedBytes / r.cradle.seconds;
      const n = r.nginx.storedBytes / r.nginx.seconds;
      const label = mode === 'verify' ? NAME : `${NAME} (raw)`;
      console.log(
        ratioLine(
          label,
          { label: 'cradle', value: mbps(o, 1), n: o },
          { label: 'nginx', value: mbps(n, 1), n },
          'aggregate throughput, higher is better for cradle',
        ),
      );
    }
  });
}

if (process.argv[2] === '--worker') worker(process.argv[3]);
else await main();
