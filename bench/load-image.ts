// Benchmark: installing the Debian root file system over loopback.
//   ours: `cradle installer load-image` from `cradle imageserver` (its own process)
//   peer: `curl http://…/rootfs.tar.zst | zstd -dc | tar -x` from nginx serving the same tree as one
//         static .tar.zst (made with the same zstd level our store uses)
// Each run goes into a freshly made ext4 on a loop device and ends with `sync -f` of it: an install
// is done when it is on disk, and leaving the flush out would favour whichever side leaves more
// dirty pages behind. Both are timed as whole commands, process start included. Before measuring,
// one run of each side is compared entry by entry (types, modes, owners, mtimes, xattrs, contents,
// hard links), so the two are known to do the same work. The target: cradle at least as
// fast as the tar pipeline.
//
//   node_modules/.bin/node bench/load-image.ts        (BENCH_RUNS=N for more runs; default 3)
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { describeTree, diffTrees } from '../test/helpers.ts';
import { table } from '../src/util/format.ts';
import {
  type Cleanup,
  cradleBin,
  exec,
  LoopFs,
  measureInterleaved,
  medians,
  mb,
  mbps,
  q,
  ratioLine,
  runBenchmark,
  secs,
  shell,
  startCradleServer,
  startNginx,
  TAR_CREATE,
  TAR_EXTRACT,
  tempDir,
  treeBytes,
  writeResults,
} from './lib.ts';

const NAME = 'load-image';
const IMAGE = 'bench/debian';

/** `cradle installer load-image` into `dir`, then flush its file system. */
export function cradleInstall(url: string, dir: string, fsRoot: string) {
  return shell(
    `${q(cradleBin)} installer load-image ${IMAGE} ${q(dir)} --imageserver ${url} --no-mounts && sync -f ${q(fsRoot)}`,
  );
}

/** The peer: stream the .tar.zst from nginx through zstd into tar, then flush. */
export function tarInstall(url: string, dir: string, fsRoot: string) {
  return shell(
    `mkdir -p ${q(dir)} && curl -sSf ${url}/rootfs.tar.zst | zstd -dcq | tar -C ${q(dir)} ${TAR_EXTRACT} -xf - && sync -f ${q(fsRoot)}`,
  );
}

/**
 * Serves the Debian tree both ways from a scratch file system: a Cradle store holding it as
 * IMAGE (for `cradle imageserver`), and www/rootfs.tar.zst (for nginx). Returns the server URLs.
 */
export async function serveRootfs(c: Cleanup, work: string, extra?: (store: string) => Promise<void>) {
  const root = debianRootfs();
  const src = await LoopFs.create(c, work, 'src', 1024);
  const store = src.path('store');
  await exec(cradleBin, ['image', 'add', IMAGE, root, '--store', store]);
  await exec('mkdir', ['-p', src.path('www')]);
  await shell(`tar -C ${q(root)} ${TAR_CREATE} -cf - . | zstd -3 -T1 -q > ${q(src.path('www', 'rootfs.tar.zst'))}`);
  await extra?.(store);
  const ours = await startCradleServer(c, store);
  const nginx = await startNginx(c, src.path('www'), work);
  return { root, src, store, ours: ours.url, nginx: nginx.url };
}

if (import.meta.main) {
  await runBenchmark(NAME, async (c) => {
    const work = tempDir(c, NAME);
    const { root, ours: oursUrl, nginx: nginxUrl } = await serveRootfs(c, work);
    const content = treeBytes(root);
    const dst = await LoopFs.create(c, work, 'dst', 1024);
    console.log(`${NAME}: ${content.files} files, ${mb(content.bytes)}; imageserver ${oursUrl}, nginx ${nginxUrl}`);

    // Same result on both sides? (Also warms both servers and the page cache.)
    await dst.format();
    await cradleInstall(oursUrl, dst.path('a'), dst.mnt);
    await tarInstall(nginxUrl, dst.path('b'), dst.mnt);
    const diff = diffTrees(describeTree(dst.path('a')), describeTree(dst.path('b')));
    console.log(
      diff.length
        ? `trees differ in ${diff.length} ways, e.g.\n  ${diff.slice(0, 10).join('\n  ')}`
        : 'check: both installs produce identical trees',
    );

    const sides = [
      {
        name: 'cradle load-image + sync',
        prepare: () => dst.format(),
        run: async () => ({ seconds: (await cradleInstall(oursUrl, dst.path('root'), dst.mnt)).seconds }),
      },
      {
        name: 'curl | zstd -d | tar -x + sync',
        prepare: () => dst.format(),
        run: async () => ({ seconds: (await tarInstall(nginxUrl, dst.path('root'), dst.mnt)).seconds }),
      },
    ];
    const samples = await measureInterleaved(sides);
    const ours = medians(samples[sides[0].name]);
    const peer = medians(samples[sides[1].name]);

    console.log();
    console.log(
      table(
        ['', 'median time', 'MB/s (content)', 'runs (s)'],
        sides.map((s, i) => {
          const m = i ? peer : ours;
          return [
            s.name,
            secs(m.seconds),
            mbps(content.bytes, m.seconds),
            samples[s.name].map((x) => x.seconds.toFixed(2)).join(' '),
          ];
        }),
      ),
    );
    const file = writeResults(NAME, {
      content,
      treeDifferences: diff,
      samples,
      medians: { cradle: ours, peer },
      ratio: ours.seconds / peer.seconds,
      target: 'cradle <= peer (ratio <= 1)',
    });
    console.log(`results: ${file}`);
    console.log(
      ratioLine(
        NAME,
        { label: 'cradle', value: secs(ours.seconds), n: ours.seconds },
        { label: 'curl|zstd|tar', value: secs(peer.seconds), n: peer.seconds },
        'lower is better for cradle; target <= 1.00',
      ),
    );
  });
}
