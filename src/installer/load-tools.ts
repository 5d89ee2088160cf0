// Step 5: everything the install writes is in memory before any drive changes. The object cache
// is built from the running (netbooted) OS and the old OS on the boot drive, mounted read-only;
// then the images are unpacked into tmpfs, fetching only what the cache lacks: a tools image
// (tools-imagename) at --tmp-root and the target image at `<tmp-root>.target`, or, without a tools
// image, the target image alone at --tmp-root, which then is the tools root too. The tools root is
// where step 6 runs sfdisk, partx, cryptsetup and mkfs (chrooted); the target tree is the source
// of the install onto the drives.
import fs from 'node:fs';
import path from 'node:path';
import { cacheInWorker } from '../image/unpack/cache-thread.ts';
import { stagedTreeFinder } from '../image/unpack/staged-tree.ts';
import type { Digest } from '../image/model/digest.ts';
import type { Manifest } from '../image/model/manifest.ts';
import type { ObjectFinder } from '../image/model/objects.ts';
import { unpackImage, type UnpackStats } from '../image/unpack/unpack.ts';
import { oldRootCandidate } from '../storage/contents.ts';
import { mountPoints } from '../system/mounts.ts';
import { formatBytes } from '../util/format.ts';
import type { InstallContext } from './context.ts';
import type { CacheMeasure } from './dry-run.ts';
import { stageObjectRecord } from './object-record.ts';
import type { Images, InstallPlan } from './plan-install.ts';

export function wantedObjects(manifest: Manifest): Map<Digest, { size: number; paths: string[] }> {
  const wanted = new Map<Digest, { size: number; paths: string[] }>();
  for (const e of manifest.entries) {
    if (e.type !== 'file' || !e.digest) continue;
    const w = wanted.get(e.digest as Digest);
    if (w) w.paths.push(e.path);
    else wanted.set(e.digest as Digest, { size: e.size, paths: [e.path] });
  }
  return wanted;
}

/** The old OS's root, mounted read-only to seed the object cache. */
export interface OldRoot {
  dir: string;
  /** Which partition of which drive, for the log and the dry run. */
  label: string;
}

/** Mounts the old OS's root read-only (no journal replay: the old disk is not changed). */
export async function mountOldRoot(ctx: InstallContext, plan: InstallPlan): Promise<OldRoot | undefined> {
  const boot = plan.drives[0];
  const contents = plan.contents.get(boot.path);
  const part = contents && oldRootCandidate(contents);
  if (!part?.fs) return undefined;
  const dir = ctx.opts.scratchDirectory
    ? path.join(ctx.opts.scratchDirectory, 'old-root')
    : `${ctx.opts.tmpRoot}.old-root`;
  fs.mkdirSync(dir, { recursive: true });
  const norecover = part.fs.type === 'xfs' ? 'norecovery' : 'noload';
  try {
    await ctx.exec.read('mount', [
      '-t',
      part.fs.type,
      '-o',
      `ro,${norecover},loop,offset=${part.startBytes},sizelimit=${part.sizeBytes}`,
      boot.path,
      dir,
    ]);
  } catch (err) {
    ctx.log.info(
      `old OS: cannot mount partition ${part.number} of ${boot.path}: ${(err as Error).message}; no cache from it`,
    );
    fs.rmdirSync(dir);
    return undefined;
  }
  ctx.record.mounted.push(dir);
  ctx.log.info(
    `old OS: partition ${part.number} of ${boot.path} (${part.fs.type} '${part.fs.label ?? ''}') mounted read-only for the object cache`,
  );
  return { dir, label: `partition ${part.number} of ${boot.path}` };
}

export function cacheRoots(ctx: InstallContext, oldRoot: OldRoot | undefined): string[] {
  return [ctx.opts.bootedRoot, oldRoot?.dir].filter((r): r is string => Boolean(r));
}

/** For --dry-run: how much of the image the cache holds, found by hashing but writing nothing. */
export async function measureCache(
  ctx: InstallContext,
  manifest: Manifest,
  oldRoot: OldRoot | undefined,
): Promise<CacheMeasure> {
  const wanted = wantedObjects(manifest);
  let totalBytes = 0;
  for (const w of wanted.values()) totalBytes += w.size;
  const roots = cacheRoots(ctx, oldRoot);
  let objects = 0;
  let bytes = 0;
  if (roots.length) {
    await cacheInWorker(roots).find(wanted, (_d, content) => {
      objects++;
      bytes += content.length;
    });
  }
  const sources = [
    ctx.opts.bootedRoot && `running OS ${ctx.opts.bootedRoot}`,
    oldRoot && `old OS on ${oldRoot.label}`,
  ].filter((s): s is string => Boolean(s));
  return { objects, bytes, totalObjects: wanted.size, totalBytes, sources };
}

async function unpackInto(
  ctx: InstallContext,
  images: Images,
  manifest: Manifest,
  dir: string,
  cache: ObjectFinder | undefined,
  what: string,
): Promise<UnpackStats> {
  fs.mkdirSync(dir, { recursive: true });
  if (!mountPoints().includes(path.resolve(dir))) {
    await ctx.exec.change('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', dir]);
    ctx.record.mounted.push(path.resolve(dir));
  }
  const stats = await unpackImage(manifest, dir, {
    fetcher: images.client,
    cache,
    onProgress: (p) => ctx.progress.bytes('tools', p.bytesDone, p.bytesTotal),
  });
  ctx.log.info(
    `${what}: ${stats.entries} entries, ${formatBytes(stats.bytesWritten)}; ${stats.objectsFromCache} objects (${formatBytes(stats.bytesFromCache)}) from the local cache, ${stats.objectsFetched} (${formatBytes(stats.bytesFetched)}) downloaded`,
  );
  return stats;
}

/** The images in memory (tmpfs), and how the target image got there. */
export interface StagedImage {
  /** The target image: the tree the install copies onto the drives. */
  target: string;
  /** The tools root the storage programs run in: the tools image, or `target` when none was named. */
  tools: string;
  /** The target image's unpacking. */
  stats: UnpackStats;
}

/** Where step 5 unpacks: the tools root at --tmp-root, the target beside it when they differ. */
export function stagingDirs(tmpRoot: string, hasToolsImage: boolean): { target: string; tools: string } {
  return { tools: tmpRoot, target: hasToolsImage ? `${tmpRoot}.target` : tmpRoot };
}

export async function loadTools(ctx: InstallContext, images: Images, plan: InstallPlan): Promise<StagedImage> {
  const oldRoot = await mountOldRoot(ctx, plan);
  const roots = cacheRoots(ctx, oldRoot);
  if (roots.length) ctx.log.info(`object cache: ${roots.join(', ')}`);
  const caches: ReturnType<typeof cacheInWorker>[] = [];
  const cache = () => {
    if (!roots.length) return undefined;
    const c = cacheInWorker(roots);
    caches.push(c);
    return c;
  };
  const dirs = stagingDirs(ctx.opts.tmpRoot, Boolean(images.tools));
  let targetCache: ObjectFinder | undefined = cache();
  if (images.tools) {
    await unpackInto(
      ctx,
      images,
      images.tools.manifest,
      dirs.tools,
      cache(),
      `tools image ${images.tools.record.name}`,
    );
    // One cache for both images, as Dominator's: what the tools image brought is not fetched again.
    targetCache = treeThenCache(dirs.tools, images.tools.manifest, targetCache);
  }
  const stats = await unpackInto(
    ctx,
    images,
    images.image.manifest,
    dirs.target,
    targetCache,
    `image ${images.image.record.name} in memory`,
  );
  ctx.record.imageStats = stats;
  for (const { stats: c } of caches)
    if (c.filesHashed)
      ctx.log.info(
        `object cache: ${c.objectsFound} objects found (${c.objectsFromRecord} where the previous install's record put them), ${c.filesHashed} files hashed (${formatBytes(c.bytesHashed)}), ${c.filesIndexed} indexed by size`,
      );
  stageObjectRecord(ctx, images.image.manifest, images.image.record.name);
  if (oldRoot) {
    await saveOldEtc(ctx, oldRoot.dir);
    await unmountOldRoot(ctx, oldRoot);
  }
  return { ...dirs, stats };
}

/**
 * Objects from a tree just unpacked from `manifest` (read by its paths there, verified when they
 * arrived and untouched since: nothing has run in it yet), then from `cache` for the rest.
 */
function treeThenCache(dir: string, manifest: Manifest, cache: ObjectFinder | undefined): ObjectFinder {
  const inTree = wantedObjects(manifest);
  const tree = stagedTreeFinder(dir);
  return {
    async find(wanted, onObject) {
      const fromTree = new Map<Digest, { size: number; paths: string[] }>();
      for (const [d, w] of wanted) {
        const t = inTree.get(d);
        if (t && t.size === w.size) fromTree.set(d, t);
      }
      const found = new Set<Digest>();
      await tree.find(fromTree, (d, content) => {
        found.add(d);
        return onObject(d, content);
      });
      const rest = new Map([...wanted].filter(([d]) => !found.has(d)));
      if (rest.size && cache) await cache.find(rest, onObject);
    },
  };
}

/** The old OS must be let go before its drive is erased. */
export async function unmountOldRoot(ctx: InstallContext, oldRoot: OldRoot): Promise<void> {
  await ctx.exec.read('umount', ['--detach-loop', oldRoot.dir]);
  ctx.record.mounted = ctx.record.mounted.filter((m) => m !== oldRoot.dir);
  fs.rmdirSync(oldRoot.dir);
}

/**
 * Keeps the old system's /etc for reference in /var/log/installer/old-etc.tar.gz, without its
 * secrets (password hashes, private keys): Dominator's installer kept /etc/shadow.
 */
async function saveOldEtc(ctx: InstallContext, oldRoot: string): Promise<void> {
  if (!fs.existsSync(path.join(oldRoot, 'etc'))) return;
  const out = path.join(ctx.opts.logDirectory, 'old-etc.tar.gz');
  const excludes = [
    'etc/shadow*',
    'etc/gshadow*',
    'etc/ssh/ssh_host_*',
    '*key*',
    'etc/crypt.key',
    'etc/ssl/private',
  ].flatMap((p) => ['--exclude', p]);
  try {
    await ctx.exec.change('tar', ['-czf', out, '-C', oldRoot, ...excludes, 'etc']);
  } catch (err) {
    ctx.log.info(`cannot save the old /etc: ${(err as Error).message}`);
  }
}
