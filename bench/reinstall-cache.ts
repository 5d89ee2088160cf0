// Benchmark: reinstalling with `--cache-from` the previous tree. Per measured round, on a fresh ext4:
//   A  load bench/debian into A, no cache (the first install)
//   B  load bench/debian into B with --cache-from A (a reinstall of the same image)
//   C  load bench/debian-changed into C with --cache-from A (a reinstall of an updated image:
//      the same tree with 20 files modified, half of them in place at the same size, and 5 added)
// The file system is unmounted and mounted again before B and C, so the old tree is read back
// through the file system rather than from its page cache (its backing file stays in the host's
// page cache: this is a warm-ish reinstall, not a cold disk). Targets from the issue: B fetches
// <= 1% of the image's bytes; C fetches about the changed bytes. The peer, which has no cache, is
// the full re-download with `curl | zstd -d | tar -x` from nginx, as in load-image.ts.
// Each install runs in its own process (this file with --load), timed whole and ending with a
// syncfs of the target; the child reports loadImage()'s own statistics as JSON.
//
//   node_modules/.bin/node bench/reinstall-cache.ts        (BENCH_RUNS=N for more runs; default 3)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImageServerClient } from '../src/image/transfer/client.ts';
import { loadImage } from '../src/installer/load-image-command.ts';
import { syncFileSystem } from '../src/system/libc.ts';
import { table } from '../src/util/format.ts';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { cradleBin, exec, LoopFs, runBenchmark, tempDir, treeBytes, writeResults } from './lib.ts';
import { measureInterleaved, medians, mb, ratioLine, secs, type Sample } from './measure.ts';
import { serveRootfs, tarInstall } from './load-image.ts';

const NAME = 'reinstall-cache';
const MODIFIED = 20;
const ADDED = 5;

/** Child mode: one install, then syncfs; prints loadImage's statistics. */
async function loadOnce(url: string, image: string, dir: string, cacheFrom: string[]): Promise<void> {
  const client = new ImageServerClient(url);
  try {
    const r = await loadImage(client, image, dir, { cacheFrom, mounts: false });
    const fd = fs.openSync(dir, 'r');
    syncFileSystem(fd, dir);
    fs.closeSync(fd);
    console.log(
      JSON.stringify({
        ...r.unpack,
        wireBytes: r.wireBytes,
        cacheHashedBytes: r.cacheHashedBytes,
        loadSeconds: r.seconds,
      }),
    );
  } finally {
    client.close();
  }
}

/** Runs one install in a child process; seconds cover the whole process. */
async function install(url: string, image: string, dir: string, cacheFrom: string[] = []): Promise<Sample> {
  const args = ['--disable-warning=ExperimentalWarning', import.meta.filename, '--load', url, image, dir, ...cacheFrom];
  const r = await exec(process.execPath, args);
  return { seconds: r.seconds, ...(JSON.parse(r.stdout) as Record<string, number>) };
}

/**
 * Copies the tree and changes it a little: MODIFIED files spread over the tree (single-link,
 * 4 KiB to 512 KiB), every other one appended to and the rest changed in place at the same size
 * (so the cache must hash to tell), plus ADDED new files. Returns the bytes a reinstall must fetch.
 */
async function makeChangedCopy(root: string, copy: string): Promise<{ changedBytes: number; changed: string[] }> {
  await exec('cp', ['-a', `${root}/.`, copy]);
  const candidates: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(copy, rel)).sort()) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(copy, r));
      if (st.isDirectory()) walk(r);
      else if (st.isFile() && st.nlink === 1 && st.size >= 4096 && st.size <= 512 * 1024) candidates.push(r);
    }
  };
  walk('.');
  const changed: string[] = [];
  let changedBytes = 0;
  for (let i = 0; i < MODIFIED; i++) {
    const rel = candidates[Math.floor(((i + 0.5) * candidates.length) / MODIFIED)];
    const p = path.join(copy, rel);
    const st = fs.statSync(p);
    if (i % 2 === 0) fs.appendFileSync(p, `\n# changed by the cradle reinstall benchmark (${i})\n`);
    else {
      const fd = fs.openSync(p, 'r+');
      fs.writeSync(fd, crypto.randomBytes(16), 0, 16, Math.floor(st.size / 2));
      fs.closeSync(fd);
    }
    fs.utimesSync(p, st.atime, st.mtime); // keep the mtime: content, not metadata, must tell
    changed.push(rel);
    changedBytes += fs.statSync(p).size;
  }
  fs.mkdirSync(path.join(copy, 'opt/cradle-bench'), { recursive: true });
  for (let i = 0; i < ADDED; i++) {
    fs.writeFileSync(path.join(copy, `opt/cradle-bench/added-${i}`), crypto.randomBytes(64 * 1024));
    changed.push(`opt/cradle-bench/added-${i}`);
    changedBytes += 64 * 1024;
  }
  return { changedBytes, changed };
}

const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(3)} %`;

async function main(): Promise<void> {
  await runBenchmark(NAME, async (c) => {
    const work = tempDir(c, NAME);
    let change = { changedBytes: 0, changed: [] as string[] };
    const served = await serveRootfs(c, work, async (store) => {
      const copy = path.join(path.dirname(store), 'changed-tree');
      fs.mkdirSync(copy);
      change = await makeChangedCopy(debianRootfs(), copy);
      await exec(cradleBin, ['image', 'add', 'bench/debian-changed', copy, '--store', store]);
    });
    const show = async (name: string) =>
      JSON.parse((await exec(cradleBin, ['image', 'show', name, '--store', served.store, '--json'])).stdout) as {
        manifest: string;
        stats: { bytes: number };
      };
    const base = await show('bench/debian');
    const imageBytes = base.stats.bytes;
    const manifestStored = fs.statSync(
      path.join(served.store, 'objects/sha256', base.manifest.slice(7, 9), base.manifest.slice(7)),
    ).size;
    const compressedImage = treeBytes(path.join(served.store, 'objects')).bytes; // both images' objects; ~ the base's
    console.log(
      `${NAME}: image ${mb(imageBytes)}; changed copy: ${change.changed.length} files, ${mb(change.changedBytes)}; manifest ${mb(manifestStored)} compressed`,
    );

    const dst = await LoopFs.create(c, work, 'dst', 2048);
    const A = dst.path('A');
    const sides = [
      {
        name: 'cradle A/B/C',
        prepare: () => dst.format(),
        run: async (): Promise<Sample> => {
          const a = await install(served.ours, 'bench/debian', A);
          await dst.remount();
          const b = await install(served.ours, 'bench/debian', dst.path('B'), [A]);
          await dst.remount();
          const cc = await install(served.ours, 'bench/debian-changed', dst.path('C'), [A]);
          const pick = (s: Sample, p: string) =>
            Object.fromEntries(Object.entries(s).map(([k, v]) => [`${p}${k[0].toUpperCase()}${k.slice(1)}`, v]));
          return { seconds: b.seconds, ...pick(a, 'uncached'), ...pick(b, 'cached'), ...pick(cc, 'changed') } as Sample;
        },
      },
      {
        name: 'curl | zstd -d | tar -x + sync',
        prepare: () => dst.format(),
        run: async () => ({ seconds: (await tarInstall(served.nginx, dst.path('T'), dst.mnt)).seconds }),
      },
    ];
    const samples = await measureInterleaved(sides);
    const m = medians(samples[sides[0].name]);
    const peer = medians(samples[sides[1].name]);
    const runs = (k: string) => samples[sides[0].name].map((s) => s[k].toFixed(2)).join(' ');

    console.log();
    console.log(
      table(
        [
          'install',
          'median time',
          'content fetched',
          '% of image',
          'on the wire',
          'from cache',
          'hashed in cache',
          'runs (s)',
        ],
        [
          [
            'A: uncached',
            secs(m.uncachedSeconds),
            mb(m.uncachedBytesFetched),
            pct(m.uncachedBytesFetched, imageBytes),
            mb(m.uncachedWireBytes),
            mb(m.uncachedBytesFromCache),
            '-',
            runs('uncachedSeconds'),
          ],
          [
            'B: same image, --cache-from A',
            secs(m.cachedSeconds),
            mb(m.cachedBytesFetched),
            pct(m.cachedBytesFetched, imageBytes),
            mb(m.cachedWireBytes),
            mb(m.cachedBytesFromCache),
            mb(m.cachedCacheHashedBytes),
            runs('cachedSeconds'),
          ],
          [
            'C: changed image, --cache-from A',
            secs(m.changedSeconds),
            mb(m.changedBytesFetched),
            pct(m.changedBytesFetched, imageBytes),
            mb(m.changedWireBytes),
            mb(m.changedBytesFromCache),
            mb(m.changedCacheHashedBytes),
            runs('changedSeconds'),
          ],
          [
            'peer: curl|zstd|tar, full',
            secs(peer.seconds),
            mb(imageBytes),
            '100 %',
            mb(fs.statSync(path.join(served.src.mnt, 'www/rootfs.tar.zst')).size),
            '-',
            '-',
            samples[sides[1].name].map((s) => s.seconds.toFixed(2)).join(' '),
          ],
        ],
      ),
    );
    console.log(
      `every install also fetches the manifest: ${mb(manifestStored)} compressed (${pct(manifestStored, imageBytes)} of the image), not counted above`,
    );
    console.log(
      `C: changed files hold ${mb(change.changedBytes)}; fetched ${mb(m.changedBytesFetched)} (${(m.changedBytesFetched / change.changedBytes).toFixed(2)}x the changed bytes)`,
    );
    const file = writeResults(NAME, {
      imageBytes,
      manifestStoredBytes: manifestStored,
      storeObjectBytes: compressedImage,
      change,
      samples,
      medians: { cradle: m, peer },
      ratios: {
        cachedVsUncached: m.cachedSeconds / m.uncachedSeconds,
        cachedVsPeer: m.cachedSeconds / peer.seconds,
        changedVsPeer: m.changedSeconds / peer.seconds,
        fetchedPercentCached: (100 * m.cachedBytesFetched) / imageBytes,
        fetchedVsChangedBytes: m.changedBytesFetched / change.changedBytes,
      },
    });
    console.log(`results: ${file}`);
    const better = 'lower is better for cradle';
    console.log(
      ratioLine(
        `${NAME} (cached vs uncached)`,
        { label: 'cradle cached', value: secs(m.cachedSeconds), n: m.cachedSeconds },
        { label: 'cradle uncached', value: secs(m.uncachedSeconds), n: m.uncachedSeconds },
        better,
      ),
    );
    console.log(
      ratioLine(
        `${NAME} (changed image)`,
        { label: 'cradle changed+cache', value: secs(m.changedSeconds), n: m.changedSeconds },
        { label: 'curl|zstd|tar', value: secs(peer.seconds), n: peer.seconds },
        better,
      ),
    );
    console.log(
      ratioLine(
        NAME,
        { label: 'cradle cached', value: secs(m.cachedSeconds), n: m.cachedSeconds },
        { label: 'curl|zstd|tar (no cache)', value: secs(peer.seconds), n: peer.seconds },
        better,
      ),
    );
  });
}

if (process.argv[2] === '--load') {
  const [url, image, dir, ...cacheFrom] = process.argv.slice(3);
  await loadOnce(url, image, dir, cacheFrom);
} else await main();
