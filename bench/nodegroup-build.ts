// Benchmark: `cradle nodegroup build` of a node group (the demo OS kit, Debian with systemd, plus a
// small add-on component: a file and an enabled unit) against packing the same merged tree from
// scratch with `cradle image add` into a fresh store, as a site without kits would make the
// group's image. Both on the same file system, each synced before it returns, timed as whole
// commands (process start-up included). The build writes one manifest and shares every object
// with the kits; the add hashes and compresses the whole tree.
//
//   node_modules/.bin/node bench/nodegroup-build.ts        (BENCH_RUNS=N for more runs; default 3)
import fs from 'node:fs';
import path from 'node:path';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { table } from '../src/util/format.ts';
import {
  cradleBin,
  exec,
  measureInterleaved,
  medians,
  q,
  ratioLine,
  runBenchmark,
  secs,
  shell,
  tempDir,
  treeBytes,
  writeResults,
} from './lib.ts';

const NAME = 'nodegroup-build';

await runBenchmark(NAME, async (c) => {
  const root = debianRootfs('demo');
  const work = tempDir(c, NAME);
  const depot = path.join(work, 'depot');
  const env = { ...process.env, CRADLE_DEPOT: depot, CRADLE_DB: `sqlite:${path.join(work, 'inventory.db')}` };
  const cradle = (...args: string[]) => exec(cradleBin, args, { env });
  // The component: a file and a systemd unit enabled by its symlink.
  const hello = path.join(work, 'hello');
  fs.mkdirSync(path.join(hello, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  fs.writeFileSync(path.join(hello, 'etc/hello-kit.conf'), 'from-the-hello-kit\n');
  fs.writeFileSync(path.join(hello, 'etc/systemd/system/hello-kit.service'), '[Service]\nExecStart=/bin/true\n');
  fs.symlinkSync(
    '../hello-kit.service',
    path.join(hello, 'etc/systemd/system/multi-user.target.wants/hello-kit.service'),
  );
  const osKit = path.join(work, 'demo.kit');
  const helloKit = path.join(work, 'hello.kit');
  await cradle(
    'kit',
    'build',
    '--out',
    osKit,
    '--name',
    'demo',
    '--version',
    '12',
    '--kind',
    'os',
    '--os',
    'debian-12',
    '--image',
    root,
  );
  await cradle(
    'kit',
    'build',
    '--out',
    helloKit,
    '--name',
    'hello',
    '--version',
    '1',
    '--kind',
    'addon',
    '--component',
    `hello:compute:${hello}:debian-12`,
  );
  await cradle('kit', 'add', osKit);
  await cradle('kit', 'add', helloKit);
  await cradle('nodegroup', 'add', 'compute', '--kit', 'demo', '--kit', 'hello');
  // The same merged tree, for the peer: the OS with the component copied over it.
  const merged = path.join(work, 'merged');
  await shell(`cp -a ${q(root)} ${q(merged)} && cp -a ${q(hello)}/. ${q(merged)}/`);
  const tree = treeBytes(merged);
  console.log(`${NAME}: merged tree ${tree.files} files, ${(tree.bytes / 1e6).toFixed(1)} MB`);
  const scratch = path.join(work, 'scratch-store');
  let n = 0;
  const sides = [
    {
      name: 'cradle nodegroup build',
      prepare: async () => {},
      run: async () => ({ seconds: (await cradle('nodegroup', 'build', 'compute')).seconds }),
    },
    {
      name: 'cradle image add of the merged tree',
      prepare: async () => fs.rmSync(scratch, { recursive: true, force: true }),
      run: async () => ({
        seconds: (await exec(cradleBin, ['image', 'add', `merged/${++n}`, merged, '--store', scratch])).seconds,
      }),
    },
  ];
  const samples = await measureInterleaved(sides);
  const ours = medians(samples[sides[0].name]);
  const peer = medians(samples[sides[1].name]);
  console.log();
  console.log(
    table(
      ['', 'median time', 'runs (s)'],
      sides.map((s, i) => [
        s.name,
        secs((i ? peer : ours).seconds),
        samples[s.name].map((x) => x.seconds.toFixed(2)).join(' '),
      ]),
    ),
  );
  console.log(
    `results: ${writeResults(NAME, { samples, medians: { cradle: ours, peer }, ratio: peer.seconds / ours.seconds })}`,
  );
  console.log(
    ratioLine(
      NAME,
      { label: 'nodegroup build', value: secs(ours.seconds), n: ours.seconds },
      { label: 'image add', value: secs(peer.seconds), n: peer.seconds },
      'lower is better for nodegroup build',
    ),
  );
});
