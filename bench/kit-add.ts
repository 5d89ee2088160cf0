// Benchmark: `cradle kit add` of an OS kit (the minimal Debian root file system, ~200 MB) into a
// fresh depot, against what a site without kits would do with the same bytes: copy the archive
// onto the machine and unpack it (`cp` of a plain tar of the same tree, then `tar -x`), synced to
// equal durability. Both onto the same freshly made ext4 (loop device), timed as whole commands.
// Our add verifies every object (digest, size, manifest safety) and stores the tree as objects,
// never unpacking it; the peer verifies nothing.
//
//   node_modules/.bin/node bench/kit-add.ts        (BENCH_RUNS=N for more runs; default 3)
import fs from 'node:fs';
import path from 'node:path';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { cradleBin, exec, LoopFs, q, runBenchmark, shell, TAR_CREATE, tempDir } from './lib.ts';
import { compareTwo, type Side, mb } from './measure.ts';

const NAME = 'kit-add';

await runBenchmark(NAME, async (c) => {
  const root = debianRootfs();
  const work = tempDir(c, NAME);
  const kitFile = path.join(work, 'debian.kit');
  const tarFile = path.join(work, 'rootfs.tar');
  await exec(cradleBin, [
    'kit',
    'build',
    '--out',
    kitFile,
    '--name',
    'debian',
    '--version',
    '12',
    '--kind',
    'os',
    '--os',
    'debian-12',
    '--image',
    root,
  ]);
  await shell(`tar -C ${q(root)} ${TAR_CREATE} -cf ${q(tarFile)} .`);
  console.log(
    `${NAME}: kit ${mb(fs.statSync(kitFile).size)}, plain tar of the same tree ${mb(fs.statSync(tarFile).size)}`,
  );
  const disk = await LoopFs.create(c, work, 'disk', 3072);
  const sides: [Side, Side] = [
    {
      name: 'cradle kit add',
      prepare: () => disk.format(),
      run: async () => {
        const r = await exec(cradleBin, ['kit', 'add', kitFile, '--depot', disk.path('depot')]);
        return { seconds: r.seconds };
      },
    },
    {
      name: 'cp + tar -x (+ sync)',
      prepare: () => disk.format(),
      run: async () => {
        const r = await shell(
          `cp ${q(tarFile)} ${q(disk.path('rootfs.tar'))} && mkdir ${q(disk.path('tree'))} && tar -C ${q(disk.path('tree'))} ${TAR_CREATE} -xf ${q(disk.path('rootfs.tar'))} && sync -f ${q(disk.path('tree'))}`,
        );
        return { seconds: r.seconds };
      },
    },
  ];
  await compareTwo(NAME, sides, { ours: 'cradle', peer: 'cp+tar -x', better: 'lower is better for cradle' });
});
