// Benchmark: one 30 MB file over TFTP from dnsmasq, fetched by Cradle's client (tftpGet in a Node
// process) vs curl's tftp:// (C), both asking for 1468-byte blocks. dnsmasq and both clients run
// in a network namespace of their own, so the traffic is that namespace's loopback. Each side is
// timed as a whole process, start to exit (Node's start-up is part of what an installer pays);
// ours also reports the transfer alone. Both write nothing to disk: the data is dropped after a
// first checked fetch of each.
//
//   node_modules/.bin/node bench/tftp-get.ts   (BENCH_RUNS, BENCH_TFTP_MB)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  benchNamespace,
  exec,
  repoRoot,
  runBenchmark,
  startDnsmasqTftp,
  tftpBenchRoot,
  tempDir,
  writeResults,
} from './lib.ts';
import { mb, mbps, measureTwo, ratioLine, secs, type Side } from './measure.ts';

const NAME = 'tftp-get';
const NS = `cradle-bench-tftp-${process.pid}`;
const BYTES = Number(process.env.BENCH_TFTP_MB ?? 30) * 1e6;
const BLKSIZE = 1468;
const CLIENT_URL = pathToFileURL(path.join(repoRoot, 'src/protocols/tftp/client.ts')).href;

/** Our side: prints the transfer's own figures, and a hash when asked to check. */
const DRIVER = `
import { createHash } from 'node:crypto';
import { tftpGet } from ${JSON.stringify(CLIENT_URL)};
const [file, check] = JSON.parse(process.argv[1]);
const r = await tftpGet('127.0.0.1', file, { blksize: ${BLKSIZE} });
console.log(JSON.stringify({ seconds: r.seconds, bytes: r.data.length, blksize: r.blksize, windowsize: r.windowsize, retransmits: r.retransmits, sha256: check ? createHash('sha256').update(r.data).digest('hex') : '' }));`;

const inNs = (cmd: string, args: string[]) => exec('ip', ['netns', 'exec', NS, cmd, ...args]);

async function ours(check: boolean) {
  const res = await inNs(process.execPath, ['--input-type=module', '-e', DRIVER, JSON.stringify(['bench.bin', check])]);
  return {
    ...(JSON.parse(res.stdout) as {
      seconds: number;
      bytes: number;
      blksize: number;
      windowsize: number;
      retransmits: number;
      sha256: string;
    }),
    process: res.seconds,
  };
}

function curl(out: string) {
  return inNs('curl', ['-sSf', '--tftp-blksize', String(BLKSIZE), '-o', out, 'tftp://127.0.0.1/bench.bin']);
}

await runBenchmark(NAME, async (c) => {
  const work = tempDir(c, NAME);
  const { root, digest } = tftpBenchRoot(work, BYTES);

  await benchNamespace(c, NS);
  await startDnsmasqTftp(c, NS, root, work);

  // Same bytes on both sides? (Also warms the page cache and dnsmasq.)
  const checked = await ours(true);
  const curlOut = path.join(work, 'curl.bin');
  await curl(curlOut);
  const curlDigest = createHash('sha256').update(fs.readFileSync(curlOut)).digest('hex');
  fs.rmSync(curlOut);
  if (checked.sha256 !== digest || curlDigest !== digest)
    throw new Error(`content differs: ours ${checked.sha256}, curl ${curlDigest}, file ${digest}`);
  console.log(
    `${NAME}: ${mb(BYTES)} file; dnsmasq agreed to blksize ${checked.blksize}, windowsize ${checked.windowsize}; both fetches intact`,
  );

  const sides: [Side, Side] = [
    {
      name: 'cradle tftpGet (node process)',
      run: async () => {
        const r = await ours(false);
        return { seconds: r.process, transfer: r.seconds, retransmits: r.retransmits };
      },
    },
    { name: 'curl tftp://', run: async () => ({ seconds: (await curl('/dev/null')).seconds }) },
  ];
  const {
    samples,
    ours: cradle,
    peer,
  } = await measureTwo(sides, '', {
    header: 'MB/s',
    cell: (m) => mbps(BYTES, m.seconds),
  });
  console.log(
    `cradle's transfer alone (RRQ to final ACK, median): ${secs(cradle.transfer)}, ${mbps(BYTES, cradle.transfer)}`,
  );
  const file = writeResults(NAME, {
    bytes: BYTES,
    blksize: checked.blksize,
    windowsize: checked.windowsize,
    samples,
    medians: { cradle, peer },
    ratio: cradle.seconds / peer.seconds,
    target: 'cradle <= peer (ratio <= 1)',
  });
  console.log(`results: ${file}`);
  console.log(
    ratioLine(
      NAME,
      { label: 'cradle', value: secs(cradle.seconds), n: cradle.seconds },
      { label: 'curl', value: secs(peer.seconds), n: peer.seconds },
      'lower is better for cradle; target <= 1.00',
    ),
  );
});
