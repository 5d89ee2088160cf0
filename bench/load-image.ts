// Benchmark: installing a tree over loopback, for two trees: the Debian root file system (~200 MB,
// 8,100 files) and issue 18's small tree, a Python standard library (~52 MB, 1,400 files:
// small-tree.ts), where fixed costs (process start, threads, the final sync) show.
//   ours: `cradle installer load-image` from `cradle imageserver` (its own process), run twice
//         over: as bin/cradle runs it from this checkout, and as the installer image runs it, its
//         bundle (initramfs/bundle.ts: one module for the command, one per thread) on the same Node
//   peer: `curl http://…/rootfs.tar.zst | zstd -dc | tar -x` from nginx serving the same tree as one
//         static .tar.zst per tree (made with the same zstd level our store uses)
// Each run goes into a freshly made ext4 on a loop device and ends with `sync -f` of it: an install
// is done when it is on disk, and leaving the flush out would favour whichever side leaves more
// dirty pages behind. Both are timed as whole commands, process start included. Before measuring,
// one run of each side is compared entry by entry (types, modes, owners, mtimes, xattrs, contents,
// hard links), so the two are known to do the same work. The target: cradle at least as
// fast as the tar pipeline.
//
//   node_modules/.bin/node bench/load-image.ts        (BENCH_RUNS=N for more runs; default 3)
import fs from 'node:fs';
import path from 'node:path';
import { bundleInstaller } from '../src/initramfs/bundle.ts';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { describeTree, diffTrees } from '../test/helpers.ts';
import {
  type Cleanup,
  cradleBin,
  exec,
  LoopFs,
  q,
  repoRoot,
  runBenchmark,
  shell,
  startCradleServer,
  startNginx,
  TAR_CREATE,
  TAR_EXTRACT,
  tempDir,
  treeBytes,
  writeResults,
} from './lib.ts';
import { mb, mbps, measureSides, ratioLine, secs, type Side } from './measure.ts';
import { smallTree } from './small-tree.ts';

const NAME = 'load-image';
const IMAGE = 'bench/debian';
const SMALL_IMAGE = 'bench/small-tree';
const SMALL_ARCHIVE = 'small-tree.tar.zst';

/** `cradle installer load-image` into `dir` (by `cradle`, a command line), then flush its file system. */
export function cradleInstall(url: string, dir: string, fsRoot: string, image = IMAGE, cradle = q(cradleBin)) {
  return shell(
    `${cradle} installer load-image ${image} ${q(dir)} --imageserver ${url} --no-mounts && sync -f ${q(fsRoot)}`,
  );
}

/** The installer image's bundle, written to `dir`: the command line that runs it there. */
async function installerBundle(dir: string): Promise<string> {
  const bundle = await bundleInstaller();
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'cradle.mjs'), bundle.main);
  for (const t of bundle.threads) fs.writeFileSync(path.join(dir, t.name), t.data);
  const node = path.join(repoRoot, 'node_modules/.bin/node');
  return `${q(node)} --disable-warning=ExperimentalWarning ${q(path.join(dir, 'cradle.mjs'))}`;
}

/** The peer: stream the .tar.zst from nginx through zstd into tar, then flush. */
export function tarInstall(url: string, dir: string, fsRoot: string, archive = 'rootfs.tar.zst') {
  return shell(
    `mkdir -p ${q(dir)} && curl -sSf ${url}/${archive} | zstd -dcq | tar -C ${q(dir)} ${TAR_EXTRACT} -xf - && sync -f ${q(fsRoot)}`,
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

/** Checks both sides produce the same tree, measures them; prints its table and RATIO lines. */
async function measureTree(
  dst: LoopFs,
  label: string,
  root: string,
  image: string,
  archive: string,
  urls: Urls,
  bundled: string,
) {
  const content = treeBytes(root);
  console.log(
    `${NAME} (${label}): ${content.files} files, ${mb(content.bytes)}; imageserver ${urls.ours}, nginx ${urls.nginx}`,
  );

  // Same result on both sides? (Also warms both servers and the page cache.)
  await dst.format();
  await cradleInstall(urls.ours, dst.path('a'), dst.mnt, image);
  await tarInstall(urls.nginx, dst.path('b'), dst.mnt, archive);
  const diff = diffTrees(describeTree(dst.path('a')), describeTree(dst.path('b')));
  console.log(
    diff.length
      ? `trees differ in ${diff.length} ways, e.g.\n  ${diff.slice(0, 10).join('\n  ')}`
      : 'check: both installs produce identical trees',
  );

  const sides: Side[] = [
    {
      name: 'cradle load-image + sync',
      prepare: () => dst.format(),
      run: async () => ({ seconds: (await cradleInstall(urls.ours, dst.path('root'), dst.mnt, image)).seconds }),
    },
    {
      name: 'curl | zstd -d | tar -x + sync',
      prepare: () => dst.format(),
      run: async () => ({ seconds: (await tarInstall(urls.nginx, dst.path('root'), dst.mnt, archive)).seconds }),
    },
    {
      name: "installer's bundle + sync",
      prepare: () => dst.format(),
      run: async () => ({
        seconds: (await cradleInstall(urls.ours, dst.path('root'), dst.mnt, image, bundled)).seconds,
      }),
    },
  ];
  const { samples, medians: m } = await measureSides(sides, label, {
    header: 'MB/s (content)',
    cell: (s) => mbps(content.bytes, s.seconds),
  });
  const [ours, peer, installer] = m;
  const name = label === 'debian' ? NAME : `${NAME} ${label}`;
  const better = 'lower is better for cradle; target <= 1.00';
  const tar = { label: 'curl|zstd|tar', value: secs(peer.seconds), n: peer.seconds };
  const lines = [
    ratioLine(name, { label: 'cradle', value: secs(ours.seconds), n: ours.seconds }, tar, better),
    ratioLine(
      `${name} (the installer's bundle)`,
      { label: 'cradle', value: secs(installer.seconds), n: installer.seconds },
      tar,
      better,
    ),
  ];
  const results = {
    content,
    treeDifferences: diff,
    samples,
    medians: { cradle: ours, peer, installerBundle: installer },
    ratio: ours.seconds / peer.seconds,
    installerBundleRatio: installer.seconds / peer.seconds,
    target: 'cradle <= peer (ratio <= 1)',
  };
  return { lines, results };
}

interface Urls {
  ours: string;
  nginx: string;
}

if (import.meta.main) {
  await runBenchmark(NAME, async (c) => {
    const work = tempDir(c, NAME);
    const small = smallTree(work);
    const served = await serveRootfs(c, work, async (store) => {
      await exec(cradleBin, ['image', 'add', SMALL_IMAGE, small, '--store', store]);
      const archive = path.join(path.dirname(store), 'www', SMALL_ARCHIVE);
      await shell(`tar -C ${q(small)} ${TAR_CREATE} -cf - . | zstd -3 -T1 -q > ${q(archive)}`);
    });
    const dst = await LoopFs.create(c, work, 'dst', 1024);
    const bundled = await installerBundle(path.join(work, 'installer-bundle'));
    const debian = await measureTree(dst, 'debian', served.root, IMAGE, 'rootfs.tar.zst', served, bundled);
    console.log();
    const smallResults = await measureTree(dst, 'small-tree', small, SMALL_IMAGE, SMALL_ARCHIVE, served, bundled);
    // The Debian tree's figures stay at the top level, where earlier results have them.
    const file = writeResults(NAME, { ...debian.results, smallTree: smallResults.results });
    console.log(`results: ${file}`);
    for (const line of [...debian.lines, ...smallResults.lines]) console.log(line);
  });
}
