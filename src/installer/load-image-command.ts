// `cradle installer load-image NAME DIR` (the seed's sub-command): unpack an image from the image
// server into DIR, then bind-mount /dev, /proc, /sys and /tmp into it so it can be used as a chroot
// (a debugging image, or extra tools for a plug-in programme). `--no-mounts` skips the mounts.
import fs from 'node:fs';
import path from 'node:path';
import { cacheInWorker, fetcherInWorker } from '../image/transfer/worker.ts';
import type { ImageServerClient } from '../image/transfer/client.ts';
import type { Digest } from '../image/model/digest.ts';
import type { ImageRecord } from '../image/store/store.ts';
import { unpackImage, type UnpackProgress, type UnpackStats } from '../image/unpack/unpack.ts';
import { mountPoints } from '../system/mounts.ts';
import { run } from '../system/run.ts';

export const CHROOT_MOUNTS = ['dev', 'proc', 'sys', 'tmp'];

export interface LoadImageOptions {
  cacheFrom?: string[];
  mounts?: boolean;
  onProgress?: (p: UnpackProgress) => void;
}

export interface LoadImageResult {
  image: ImageRecord;
  unpack: UnpackStats;
  cacheHashedBytes: number;
  wireBytes: number;
  retries: number;
  seconds: number;
}

export async function loadImage(
  client: ImageServerClient,
  name: string,
  dir: string,
  opts: LoadImageOptions = {},
): Promise<LoadImageResult> {
  if (process.geteuid?.() !== 0) {
    throw new Error(
      'load-image restores owners, setuid bits, capabilities and device nodes, which needs root: run it as root',
    );
  }
  const started = performance.now();
  const image = await client.getImage(name);
  const manifest = await client.getManifest(image.manifest as Digest);
  const cache = opts.cacheFrom?.length ? cacheInWorker(opts.cacheFrom) : undefined;
  const unpack = await unpackImage(manifest, dir, {
    fetcher: fetcherInWorker(client),
    cache,
    onProgress: opts.onProgress,
  });
  if (opts.mounts !== false) await bindMounts(dir);
  return {
    image,
    unpack,
    cacheHashedBytes: cache?.stats.bytesHashed ?? 0,
    wireBytes: client.stats.wireBytes,
    retries: client.stats.retries,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Bind-mounts the host's /dev, /proc, /sys and /tmp into `root` (skipping ones already mounted).
 * A mount point must be a real directory: an image whose `tmp` is a symlink to `/etc` must not get
 * the host's /tmp mounted over the host's /etc.
 */
export async function bindMounts(root: string, onMounted: (dir: string) => void = () => {}): Promise<void> {
  const mounted = new Set(mountPoints());
  for (const name of CHROOT_MOUNTS) {
    const target = path.join(path.resolve(root), name);
    if (mounted.has(target)) continue;
    const st = fs.lstatSync(target, { throwIfNoEntry: false });
    if (!st) fs.mkdirSync(target);
    else if (!st.isDirectory())
      throw new Error(
        `not bind-mounting /${name}: '${target}' is a ${st.isSymbolicLink() ? 'symlink' : 'non-directory'} in the image; use --no-mounts`,
      );
    await run('mount', ['--bind', `/${name}`, target]);
    onMounted(target);
  }
}

/** Undoes bindMounts (lazily, so a shell still inside does not block it). */
export async function unbindMounts(root: string): Promise<void> {
  const mounted = new Set(mountPoints());
  for (const name of [...CHROOT_MOUNTS].reverse()) {
    const target = path.join(path.resolve(root), name);
    if (mounted.has(target)) await run('umount', ['-l', target]);
  }
}
