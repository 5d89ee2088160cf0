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

/** Mounts the old OS's root read-only (no journal replay: the old disk is not changed). */
export async function mountOldRoot(ctx: InstallContext): Promise<void> {
  const boot = ctx.facts.drives![0];
  const contents = ctx.facts.contents!.get(boot.path)!;
  const part = oldRootCandidate(contents);
  if (!part?.fs) return;
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
    ctx.facts.oldRoot = dir;
    ctx.facts.mounted.push(dir);
    ctx.facts.oldRootLabel = `partition ${part.number} of ${boot.path}`;
    ctx.log.info(
      `old OS: partition ${part.number} of ${boot.path} (${part.fs.type} '${part.fs.label ?? ''}') mounted read-only for the object cache`,
    );
  } catch (err) {
    ctx.log.info(
      `old OS: cannot mount partition ${part.number} of ${boot.path}: ${(err as Error).message}; no cache from it`,
    );
    fs.rmdirSync(dir);
  }
}

export function cacheRoots(ctx: InstallContext): string[] {
  return [ctx.opts.bootedRoot, ctx.facts.oldRoot].filter((r): r is string => Boolean(r));
}

/** For --dry-run: how much of the image the cache holds, found by hashing but writing nothing. */
export async function measureCache(ctx: InstallContext): Promise<CacheMeasure> {
  const wanted = wantedObjects(ctx.facts.image!.manifest);
  let totalBytes = 0;
  for (const w of wanted.values()) totalBytes += w.size;
  const roots = cacheRoots(ctx);
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
    ctx.facts.oldRootLabel && `old OS on ${ctx.facts.oldRootLabel}`,
  ].filter((s): s is string => Boolean(s));
  return { objects, bytes, totalObjects: wanted.size, totalBytes, sources };
}

async function unpackInto(
  ctx: InstallContext,
  manifest: Manifest,
  dir: string,
  cache: ObjectFinder | undefined,
  what: string,
): Promise<UnpackStats> {
  fs.mkdirSync(dir, { recursive: true });
  if (!mountPoints().includes(path.resolve(dir))) {
    await ctx.exec.change('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', dir]);
    ctx.facts.mounted.push(path.resolve(dir));
  }
  const stats = await unpackImage(manifest, dir, {
    fetcher: fetcherInWorker(ctx.facts.client!),
    cache,
    onProgress: (p) => ctx.progress.bytes('tools', p.bytesDone, p.bytesTotal),
  });
  ctx.log.info(
    `${what}: ${stats.entries} entries, ${formatBytes(stats.bytesWritten)}; ${stats.objectsFromCache} objects (${formatBytes(stats.bytesFromCache)}) from the local cache, ${stats.objectsFetched} (${formatBytes(stats.bytesFetched)}) downloaded`,
  );
  return stats;
}

export async function loadTools(ctx: InstallContext): Promise<void> {
  await mountOldRoot(ctx);
  const roots = cacheRoots(ctx);
  const cache = roots.length ? cacheInWorker(roots) : undefined;
  if (roots.length) ctx.log.info(`object cache: ${roots.join(', ')}`);
  const target = ctx.facts.image!;
  if (ctx.facts.tools) {
    await unpackInto(
      ctx,
      ctx.facts.tools.manifest,
      ctx.opts.tmpRoot,
      cache,
      `tools image ${ctx.facts.tools.record.name}`,
    );
    ctx.facts.stagedTarget = `${ctx.opts.tmpRoot}.target`;
  } else ctx.facts.stagedTarget = ctx.opts.tmpRoot;
  ctx.facts.imageStats = await unpackInto(
    ctx,
    target.manifest,
    ctx.facts.stagedTarget,
    roots.length ? cacheInWorker(roots) : undefined,
    `image ${target.record.name} in memory`,
  );
  if (ctx.facts.oldRoot) {
    await saveOldEtc(ctx, ctx.facts.oldRoot);
    await unmountOldRoot(ctx);
  }
}

/** The old OS must be let go before its drive is erased. */
export async function unmountOldRoot(ctx: InstallContext): Promise<void> {
  const dir = ctx.facts.oldRoot;
  if (!dir) return;
  await ctx.exec.read('umount', ['--detach-loop', dir]);
  ctx.facts.mounted = ctx.facts.mounted.filter((m) => m !== dir);
  ctx.facts.oldRoot = undefined;
  fs.rmdirSync(dir);
}

/**
 * Keeps the old system's /etc for reference in /var/log/installer/old-etc.tar.gz, without its
 * secrets (password hashes, private keys): the seed's installer kept /etc/shadow (§6.11).
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
