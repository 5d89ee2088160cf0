// `cradle installer load-image NAME DIR` (Dominator's sub-command): unpack an image from the image
// server into DIR, then bind-mount /dev, /proc, /sys and /tmp into it so it can be used as a chroot
// (a debugging image, or extra tools for a plug-in programme). `--no-mounts` skips the mounts.
import { cacheInWorker, fetcherInWorker } from '../image/transfer/worker.ts';
import type { ImageServerClient } from '../image/transfer/client.ts';
import type { Digest } from '../image/model/digest.ts';
import type { ImageRecord } from '../image/store/store.ts';
import { unpackImage, type UnpackProgress, type UnpackStats } from '../image/unpack/unpack.ts';
import { Executor } from '../system/executor.ts';
import { bindMounts } from '../system/mounts.ts';

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
  if (opts.mounts !== false) await bindMounts(new Executor({ dryRun: false, log: () => {} }), dir);
  return {
    image,
    unpack,
    cacheHashedBytes: cache?.stats.bytesHashed ?? 0,
    wireBytes: client.stats.wireBytes,
    retries: client.stats.retries,
    seconds: (performance.now() - started) / 1000,
  };
}
