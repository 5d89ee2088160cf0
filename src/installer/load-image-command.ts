// `cradle installer load-image NAME DIR` (Dominator's sub-command): a tmpfs is mounted at DIR, the
// image from the image server unpacked into it, and /dev, /proc, /sys and /tmp bind-mounted in, so
// it can be used as a chroot (a debugging image, or extra tools for a hook programme). Mounts go
// through the Executor; a failure undoes the mounts it made. `--no-mounts` unpacks into DIR as it
// is, with neither the tmpfs nor the bind mounts.
import fs from 'node:fs';
import path from 'node:path';
import { cacheInWorker } from '../image/unpack/cache-thread.ts';
import { ImageServerError, type ImageServerClient } from '../image/transfer/client.ts';
import type { Digest } from '../image/model/digest.ts';
import type { ImageRecord } from '../image/store/store.ts';
import { TreeWriterPool } from '../image/unpack/tree-writer.ts';
import { unpackImage, type UnpackProgress, type UnpackStats } from '../image/unpack/unpack.ts';
import { Executor } from '../system/executor.ts';
import { bindMounts } from '../system/mounts.ts';

export interface LoadImageOptions {
  cacheFrom?: string[];
  /** The tmpfs at DIR and the bind mounts (default true). */
  mounts?: boolean;
  onProgress?: (p: UnpackProgress) => void;
  /** The seam for the mounts (default: a real Executor). */
  exec?: Executor;
}

export interface LoadImageResult {
  image: ImageRecord;
  unpack: UnpackStats;
  cacheHashedBytes: number;
  wireBytes: number;
  retries: number;
  seconds: number;
  /** What was mounted, outermost first: the tmpfs at DIR, then the bind mounts inside it. */
  mounted: string[];
}

/** The image record for a name or stream; an unknown name is Dominator's "image: NAME does not exist". */
export async function resolveImage(client: ImageServerClient, name: string): Promise<ImageRecord> {
  try {
    return await client.getImage(name);
  } catch (err) {
    if (err instanceof ImageServerError && err.status === 404)
      throw new Error(
        `image: ${name} does not exist on ${client.base.origin} ('cradle installer list-images' lists those it has)`,
      );
    throw err;
  }
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
  // The writer threads start first: they are ready by the time the image's manifest is in.
  const writers = new TreeWriterPool({ origin: client.base.origin }).start();
  const exec = opts.exec ?? new Executor({ dryRun: false, log: () => {} });
  const root = path.resolve(dir);
  const mounted: string[] = [];
  try {
    const image = await resolveImage(client, name);
    const manifest = await client.getManifest(image.manifest as Digest);
    if (opts.mounts !== false) {
      fs.mkdirSync(root, { recursive: true });
      await exec.change('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', root]);
      mounted.push(root);
    }
    const cache = opts.cacheFrom?.length ? cacheInWorker(opts.cacheFrom) : undefined;
    const unpack = await unpackImage(manifest, root, {
      fetcher: client,
      cache,
      onProgress: opts.onProgress,
      writers,
    });
    if (opts.mounts !== false) await bindMounts(exec, root, (target) => mounted.push(target));
    return {
      image,
      unpack,
      cacheHashedBytes: cache?.stats.bytesHashed ?? 0,
      wireBytes: client.stats.wireBytes,
      retries: client.stats.retries,
      seconds: (performance.now() - started) / 1000,
      mounted,
    };
  } catch (err) {
    // Nothing half-made stays mounted (the bind mounts first, the tmpfs last).
    for (const m of [...mounted].reverse()) await exec.change('umount', ['-l', m]).catch(() => {});
    throw err;
  } finally {
    await writers.close();
  }
}
