// Step 5: everything the install writes is in memory before any drive changes. The object cache
// is built from the running (netbooted) OS and the old OS on the boot drive, mounted read-only;
// then the target image is unpacked into a tmpfs at -tmpRoot, fetching only what the cache lacks.
// That tree is both the tools root (unless a tools-imagename names another image) and the source
// of the install onto the drives.
import fs from 'node:fs';
import path from 'node:path';
import { cacheInWorker, fetcherInWorker } from '../image/transfer/worker.ts';
import type { Digest } from '../image/model/digest.ts';
import type { Manifest } from '../image/model/manifest.ts';
import type { ObjectFinder } from '../image/model/objects.ts';
import { unpackImage, type UnpackStats } from '../image/unpack/unpack.ts';
import { oldRootCandidate } from '../storage/contents.ts';
import { mountPoints } from '../system/mounts.ts';
import { formatBytes } from '../util/format.ts';
import type { InstallContext } from './context.ts';
import type { CacheMeasure } from './dry-run.ts';
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
    fetcher: fetcherInWorker(images.client),
    cache,
    onProgress: (p) => ctx.progress.bytes('tools', p.bytesDone, p.bytesTotal),
  });
  ctx.log.info(
    `${what}: ${stats.entries} entries, ${formatBytes(stats.bytesWritten)}; ${stats.objectsFromCache} objects (${formatBytes(stats.bytesFromCache)}) from the local cache, ${stats.objectsFetched} (${formatBytes(stats.bytesFetched)}) downloaded`,
  );
  return stats;
}

/** The target image in memory: the tree the install copies onto the drives, and how it got there. */
export interface StagedImage {
  /** Where it is unpacked (a tmpfs): the tools root too, unless a tools image was given. */
  root: string;
  stats: UnpackStats;
}

export async function loadTools(ctx: InstallContext, images: Images, plan: InstallPlan): Promise<StagedImage> {
  const oldRoot = await mountOldRoot(ctx, plan);
  const roots = cacheRoots(ctx, oldRoot);
  if (roots.length) ctx.log.info(`object cache: ${roots.join(', ')}`);
  const cache = () => (roots.length ? cacheInWorker(roots) : undefined);
  let root = ctx.opts.tmpRoot;
  if (images.tools) {
    await unpackInto(
      ctx,
      images,
      images.tools.manifest,
      ctx.opts.tmpRoot,
      cache(),
      `tools image ${images.tools.record.name}`,
    );
    root = `${ctx.opts.tmpRoot}.target`;
  }
  const stats = await unpackInto(
    ctx,
    images,
    images.image.manifest,
    root,
    cache(),
    `image ${images.image.record.name} in memory`,
  );
  ctx.record.imageStats = stats;
  if (oldRoot) {
    await saveOldEtc(ctx, oldRoot.dir);
    await unmountOldRoot(ctx, oldRoot);
  }
  return { root, stats };
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
