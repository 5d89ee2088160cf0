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
import { addDemoAndHelloKits } from '../test/support/hello-kit.ts';
import { cradleBin, exec, q, runBenchmark, shell, tempDir, treeBytes } from './lib.ts';
import { compareTwo, type Side } from './measure.ts';

const NAME = 'nodegroup-build';

await runBenchmark(NAME, async (c) => {
  const root = debianRootfs('demo');
  const work = tempDir(c, NAME);
  const depot = path.join(work, 'depot');
  const env = { ...process.env, CRADLE_DEPOT: depot, CRADLE_DB: `sqlite:${path.join(work, 'inventory.db')}` };
  const cradle = (...args: string[]) => exec(cradleBin, args, { env });
  await addDemoAndHelloKits(cradle, work, root);
  await cradle('nodegroup', 'add', 'compute', '--kit', 'demo', '--kit', 'hello');
  // The same merged tree, for the peer: the OS with the component copied over it.
  const merged = path.join(work, 'merged');
  await shell(`cp -a ${q(root)} ${q(merged)} && cp -a ${q(path.join(work, 'hello-tree'))}/. ${q(merged)}/`);
  const tree = treeBytes(merged);
  console.log(`${NAME}: merged tree ${tree.files} files, ${(tree.bytes / 1e6).toFixed(1)} MB`);
  const scratch = path.join(work, 'scratch-store');
  let n = 0;
  const sides: [Side, Side] = [
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
  await compareTwo(NAME, sides, {
    ours: 'nodegroup build',
    peer: 'image add',
    better: 'lower is better for nodegroup build',
  });
});
