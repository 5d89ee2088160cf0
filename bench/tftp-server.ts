// Benchmark: Cradle's TFTP server vs dnsmasq's, a 30 MB file to 1 client and to 50 clients at
// once. Both servers run as processes of their own in one network namespace made for the run
// (dnsmasq on port 69, which its TFTP server insists on; ours on 6969), so the traffic is that
// namespace's loopback, and each is fetched by the same clients:
//   - curl tftp:// (C, lock-step, 1468-byte blocks): the fair comparison of the servers alone;
//   - Cradle's tftpGet (1468-byte blocks, asking for a window of 16): dnsmasq 2.90 ignores
//     windowsize, so this also shows what RFC 7440 windows buy.
// Timed: first request to last byte of the last client (wall clock), each client a process (curl)
// or one Node process for all of them (ours); server CPU seconds alongside.
//
//   node_modules/.bin/node bench/tftp-server.ts   (BENCH_RUNS, BENCH_TFTP_MB, BENCH_TFTP_CLIENTS)
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { table } from '../src/util/format.ts';
import {
  benchNamespace,
  cpuSeconds,
  exec,
  repoRoot,
  runBenchmark,
  startDnsmasqTftp,
  tftpBenchRoot,
  stopChild,
  tempDir,
  writeResults,
} from './lib.ts';
import { mb, mbps, measureInterleaved, medians, ratioLine, type Sample, secs } from './measure.ts';

const NAME = 'tftp-server';
const NS = `cradle-bench-tftpd-${process.pid}`;
const BYTES = Number(process.env.BENCH_TFTP_MB ?? 30) * 1e6;
const MANY = Number(process.env.BENCH_TFTP_CLIENTS ?? 50);
const BLKSIZE = 1468;
const OUR_PORT = 6969;
const url = (rel: string) => JSON.stringify(pathToFileURL(path.join(repoRoot, rel)).href);

/** Our server, in its own process: prints a line once listening, stops on SIGTERM. */
const SERVER = `
import { createTftpServer } from ${url('src/boot/tftp/server.ts')};
// Every client is on 127.0.0.1, so one address: the per-client cap is lifted as the total is.
const s = createTftpServer({ root: process.argv[1], address: '127.0.0.1', port: ${OUR_PORT}, maxTransfers: 1000, maxTransfersPerClient: 1000 });
await s.listen();
console.log('listening');
process.once('SIGTERM', () => void s.close().then(() => process.exit(0)));`;

/** Our client: `n` concurrent fetches in one process; prints their total and a digest of the first. */
const CLIENT = `
import { createHash } from 'node:crypto';
import { tftpGet } from ${url('src/protocols/tftp/client.ts')};
const [port, n, check] = JSON.parse(process.argv[1]);
const started = performance.now();
const rs = await Promise.all(Array.from({ length: n }, () => tftpGet('127.0.0.1', 'bench.bin', { port, blksize: ${BLKSIZE}, windowsize: 16, timeoutMs: 2000, maxBytes: 1e9 })));
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ seconds, bytes: rs.reduce((a, r) => a + r.data.length, 0), windowsize: rs[0].windowsize, retransmits: rs.reduce((a, r) => a + r.retransmits, 0), sha256: check ? createHash('sha256').update(rs[0].data).digest('hex') : '' }));`;

const inNs = (cmd: string, args: string[]) => exec('ip', ['netns', 'exec', NS, cmd, ...args]);

async function waitFor(what: string, child: ChildProcess, ready: () => boolean): Promise<void> {
  for (let i = 0; !ready(); i++) {
    if (child.exitCode !== null || i > 200) throw new Error(`${what} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `n` curl processes at once; wall clock from the first start to the last exit. */
async function curls(port: number, n: number, out = '/dev/null'): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: n }, () =>
      inNs('curl', ['-sSf', '--tftp-blksize', String(BLKSIZE), '-o', out, `tftp://127.0.0.1:${port}/bench.bin`]),
    ),
  );
  return (performance.now() - started) / 1000;
}

async function ours(port: number, n: number, check = false) {
  const r = await inNs(process.execPath, ['--input-type=module', '-e', CLIENT, JSON.stringify([port, n, check])]);
  return JSON.parse(r.stdout) as {
    seconds: number;
    bytes: number;
    windowsize: number;
    retransmits: number;
    sha256: string;
  };
}

await runBenchmark(NAME, async (c) => {
  const work = tempDir(c, NAME);
  const { root, digest } = tftpBenchRoot(work, BYTES);

  await benchNamespace(c, NS);

  // `ip netns exec` execs the programme in place: each child's pid is the server's own.
  const dnsmasq = await startDnsmasqTftp(c, NS, root, work, [`--tftp-max=${MANY * 2}`]);

  const cradle = spawn('ip', ['netns', 'exec', NS, process.execPath, '--input-type=module', '-e', SERVER, root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  c.defer(`stop cradle tftp server ${cradle.pid}`, () => stopChild(cradle, 'cradle tftp server'));
  let said = '';
  cradle.stdout!.on('data', (b: Buffer) => (said += b));
  await waitFor('cradle tftp server', cradle, () => said.includes('listening'));

  const servers = [
    { name: 'cradle', port: OUR_PORT, pid: cradle.pid! },
    { name: 'dnsmasq', port: 69, pid: dnsmasq.pid! },
  ];

  // Same bytes from both servers, through both clients (also warms the page cache).
  for (const s of servers) {
    const out = path.join(work, `check-${s.name}`);
    await curls(s.port, 1, out);
    const viaCurl = createHash('sha256').update(fs.readFileSync(out)).digest('hex');
    fs.rmSync(out);
    const viaOurs = await ours(s.port, 1, true);
    if (viaCurl !== digest || viaOurs.sha256 !== digest)
      throw new Error(`${s.name}: content differs (curl ${viaCurl}, tftpGet ${viaOurs.sha256}, file ${digest})`);
    console.log(`${NAME}: ${s.name} serves ${mb(BYTES)} intact; tftpGet got windowsize ${viaOurs.windowsize}`);
  }

  const scenarios = [
    { key: `1 client, curl`, clients: 1, client: 'curl' },
    { key: `1 client, tftpGet`, clients: 1, client: 'ours' },
    { key: `${MANY} clients, curl`, clients: MANY, client: 'curl' },
    { key: `${MANY} clients, tftpGet`, clients: MANY, client: 'ours' },
  ] as const;
  const results: Record<string, { samples: Record<string, Sample[]>; cradle: Sample; peer: Sample; ratio: number }> =
    {};
  const ratios: string[] = [];
  for (const sc of scenarios) {
    console.log(`\n${sc.key}: ${sc.clients} x ${mb(BYTES)}`);
    const sides = servers.map((s) => ({
      name: `${s.name} (${sc.key})`,
      run: async (): Promise<Sample> => {
        const cpu0 = cpuSeconds([s.pid]);
        const seconds =
          sc.client === 'curl' ? await curls(s.port, sc.clients) : (await ours(s.port, sc.clients)).seconds;
        return { seconds, serverCpu: cpuSeconds([s.pid]) - cpu0 };
      },
    }));
    const samples = await measureInterleaved(sides);
    const [ourSide, peerSide] = sides.map((s) => medians(samples[s.name]));
    results[sc.key] = { samples, cradle: ourSide, peer: peerSide, ratio: ourSide.seconds / peerSide.seconds };
    const total = BYTES * sc.clients;
    // The server's CPU per DATA block sent: in lock step, one ACK received and one block sent.
    const blocks = (Math.floor(BYTES / BLKSIZE) + 1) * sc.clients;
    console.log(
      table(
        ['', 'median time', 'throughput', 'server CPU s', 'CPU µs/block', 'runs (s)'],
        sides.map((s, i) => {
          const m = i ? peerSide : ourSide;
          return [
            s.name,
            secs(m.seconds),
            mbps(total, m.seconds),
            m.serverCpu.toFixed(2),
            ((m.serverCpu / blocks) * 1e6).toFixed(1),
            samples[s.name].map((x) => x.seconds.toFixed(2)).join(' '),
          ];
        }),
      ),
    );
    ratios.push(
      ratioLine(
        `${NAME} ${sc.key}`,
        { label: 'cradle', value: secs(ourSide.seconds), n: ourSide.seconds },
        { label: 'dnsmasq', value: secs(peerSide.seconds), n: peerSide.seconds },
        'lower is better for cradle; target <= 1.00',
      ),
    );
  }

  const file = writeResults(NAME, { bytes: BYTES, clients: MANY, blksize: BLKSIZE, results });
  console.log(`\nresults: ${file}`);
  for (const r of ratios) console.log(r);
});
