// The installer's status page under load: a real installer process (failed, so it waits with its
// port open) renders the page per request from its live state; the peer is nginx serving the same
// page's bytes as a static file. 16 keep-alive clients fetch it 4,000 times on loopback. What it
// shows: whether rendering per request costs anything an operator, a dashboard or a scraper
// could notice next to the cheapest way to serve those bytes.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { runBenchmark, startNginx, startWaitingInstaller, tempDir, writeResults } from './lib.ts';
import { measureInterleaved, medians, ratioLine, type Sample } from './measure.ts';

const REQUESTS = 4000;
const CLIENTS = 16;

/** Fetches `url` REQUESTS times with CLIENTS keep-alive connections; bytes and seconds. */
async function load(url: string): Promise<Sample> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  let next = 0;
  let bytes = 0;
  const started = performance.now();
  const client = async () => {
    while (next++ < REQUESTS) {
      const n = await new Promise<number>((resolve, reject) => {
        http
          .get(url, { agent }, (res) => {
            let n = 0;
            res.on('data', (c: Buffer) => (n += c.length));
            res.on('end', () =>
              res.statusCode === 200 ? resolve(n) : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
            );
          })
          .on('error', reject);
      });
      bytes += n;
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { seconds, bytes, perSecond: REQUESTS / seconds };
}

await runBenchmark('status-page', async (c) => {
  const work = tempDir(c, 'status');
  const ours = `http://127.0.0.1:${await startWaitingInstaller(c, work)}`;
  const root = path.join(work, 'www');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'index.html'), await fetch(`${ours}/`).then((r) => r.text()));
  const nginx = await startNginx(c, root, work);

  const samples = await measureInterleaved([
    { name: 'cradle status page', run: () => load(`${ours}/`) },
    { name: 'nginx, the same bytes', run: () => load(`${nginx.url}/index.html`) },
  ]);
  const a = medians(samples['cradle status page']);
  const b = medians(samples['nginx, the same bytes']);
  const rate = (s: Sample) => `${Math.round(s.perSecond)} pages/s`;
  console.log(`  page: ${Math.round(a.bytes / REQUESTS)} bytes; ${CLIENTS} clients, ${REQUESTS} requests`);
  console.log(
    ratioLine(
      'status page',
      { label: 'cradle installer', value: rate(a), n: a.perSecond },
      { label: 'nginx static', value: rate(b), n: b.perSecond },
      'higher is better',
    ),
  );
  console.log(
    `results: ${writeResults('status-page', { requests: REQUESTS, clients: CLIENTS, pageBytes: a.bytes / REQUESTS, cradle: samples['cradle status page'], nginx: samples['nginx, the same bytes'] })}`,
  );
});
