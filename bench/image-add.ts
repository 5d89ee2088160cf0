// Benchmark: `cradle image add` into a fresh store, against the archive a peer would make of the
// same tree: `tar -c | zstd -3 -T1` to one file. Two trees: a Debian root file system (~200 MB, 10k
// entries), and issue 18's small tree, a Python standard library (~52 MB, 1,400 files: small-tree.ts)
// where fixed costs (start-up, threads, the final sync) show. Both sides write onto the same freshly
// made ext4 (loop device) and are timed as whole commands, process start included. Our add ends
// with a syncfs of the store (an image record is only committed once its objects are durable), so
// the peer's time is given with and without a `sync -f` of its archive; the headline ratio
// compares equal durability.
//
//   node_modules/.bin/node bench/image-add.ts        (BENCH_RUNS=N for more runs; default 3)
import fs from 'node:fs';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { table } from '../src/util/format.ts';
import {
  type Cleanup,
  cradleBin,
  exec,
  LoopFs,
  q,
  runBenchmark,
  shell,
  TAR_CREATE,
  tempDir,
  treeBytes,
  usedBytes,
  writeResults,
} from './lib.ts';
import { measureInterleaved, medians, mb, mbps, ratioLine, type Sample, secs } from './measure.ts';
import { smallTree } from './small-tree.ts';

const NAME = 'image-add';

type ImageStats = { entries: number; files: number; bytes: number; objects: number; objectBytes: number };

/** Both sides on one tree; prints its table and RATIO lines, returns what goes into the results. */
async function measureTree(disk: LoopFs, label: string, root: string) {
  const store = disk.path('store');
  const archive = disk.path('tree.tar.zst');
  // What is being packed, as our manifest counts it (file content bytes), for MB/s on both sides.
  const src = treeBytes(root);
  console.log(`${NAME} (${label}): ${root}: ${src.files} regular files, ${mb(src.bytes)} of content`);

  let show: { stats: ImageStats } | undefined; // the image's own view of what it holds, read (untimed) after a run
  const sides = [
    {
      name: 'cradle image add',
      prepare: () => disk.format(),
      run: async (): Promise<Sample> => {
        const r = await exec(cradleBin, ['image', 'add', `bench/${label}`, root, '--store', store]);
        const objects = treeBytes(`${store}/objects`);
        show = JSON.parse(
          (await exec(cradleBin, ['image', 'show', `bench/${label}`, '--store', store, '--json'])).stdout,
        ) as { stats: ImageStats };
        return {
          seconds: r.seconds,
          storedBytes: objects.bytes,
          objects: objects.files,
          diskUsed: usedBytes(disk.mnt),
        };
      },
    },
    {
      name: 'tar | zstd -3 -T1 (+ sync)',
      prepare: () => disk.format(),
      run: async (): Promise<Sample> => {
        const t = await shell(`tar -C ${q(root)} ${TAR_CREATE} -cf - . | zstd -3 -T1 -q > ${q(archive)}`);
        const s = await exec('sync', ['-f', archive]);
        return {
          seconds: t.seconds + s.seconds,
          pipelineSeconds: t.seconds,
          syncSeconds: s.seconds,
          storedBytes: fs.statSync(archive).size,
          diskUsed: usedBytes(disk.mnt),
        };
      },
    },
  ];
  const samples = await measureInterleaved(sides);
  const ours = medians(samples[sides[0].name]);
  const peer = medians(samples[sides[1].name]);
  if (!show) throw new Error('no image record was read');

  console.log();
  console.log(
    table(
      [label, 'median time', 'MB/s (content)', 'stored size', 'fs used', 'runs (s)'],
      [
        [
          sides[0].name,
          secs(ours.seconds),
          mbps(src.bytes, ours.seconds),
          `${mb(ours.storedBytes)} in ${ours.objects} objects`,
          mb(ours.diskUsed),
          samples[sides[0].name].map((s) => s.seconds.toFixed(2)).join(' '),
        ],
        [
          sides[1].name,
          secs(peer.seconds),
          mbps(src.bytes, peer.seconds),
          `${mb(peer.storedBytes)} in 1 file`,
          mb(peer.diskUsed),
          samples[sides[1].name].map((s) => s.seconds.toFixed(2)).join(' '),
        ],
        [
          '  of which tar | zstd',
          secs(peer.pipelineSeconds),
          mbps(src.bytes, peer.pipelineSeconds),
          '',
          '',
          samples[sides[1].name].map((s) => s.pipelineSeconds.toFixed(2)).join(' '),
        ],
      ],
    ),
  );
  console.log(
    `image: ${show.stats.entries} entries, ${show.stats.files} files, ${mb(show.stats.bytes)}; ${show.stats.objects} distinct objects`,
  );
  console.log(
    `stored size: cradle ${mb(ours.storedBytes)} vs .tar.zst ${mb(peer.storedBytes)} = ${(ours.storedBytes / peer.storedBytes).toFixed(2)}x`,
  );
  const ratioName = label === 'debian' ? NAME : `${NAME} ${label}`;
  const lines = [
    ratioLine(
      `${ratioName} (vs pipeline only, no sync)`,
      { label: 'cradle', value: secs(ours.seconds), n: ours.seconds },
      { label: 'tar|zstd', value: secs(peer.pipelineSeconds), n: peer.pipelineSeconds },
      'lower is better for cradle',
    ),
    ratioLine(
      ratioName,
      { label: 'cradle', value: secs(ours.seconds), n: ours.seconds },
      { label: 'tar|zstd+sync', value: secs(peer.seconds), n: peer.seconds },
      'lower is better for cradle',
    ),
  ];
  return {
    lines,
    results: {
      source: { path: root, files: src.files, contentBytes: src.bytes, image: show.stats },
      samples,
      medians: { cradle: ours, peer },
      ratios: {
        timeVsPeerWithSync: ours.seconds / peer.seconds,
        timeVsPeerPipelineOnly: ours.seconds / peer.pipelineSeconds,
        storedSize: ours.storedBytes / peer.storedBytes,
      },
    },
  };
}

await runBenchmark(NAME, async (c: Cleanup) => {
  const work = tempDir(c, NAME);
  const disk = await LoopFs.create(c, work, 'disk', 2048);
  const debian = await measureTree(disk, 'debian', debianRootfs());
  console.log();
  const small = await measureTree(disk, 'small-tree', smallTree(work));
  // The Debian tree's figures stay at the top level, where earlier results have them.
  const file = writeResults(NAME, { ...debian.results, smallTree: small.results });
  console.log(`results: ${file}`);
  for (const line of [...debian.lines, ...small.lines]) console.log(line);
});
