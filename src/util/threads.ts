// Starting a worker thread the way the calling thread runs. When this process runs with Node's
// compile cache (bin/cradle turns it on, see src/cli/start.mjs), the new thread turns on the same
// cache before loading its module: a thread does not inherit it, and stripping types and compiling
// afresh costs each thread 60-300 ms.
import module from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/** Whether this code runs from a bundle (the installer image, the Cradle kit), not a checkout. */
export const runsBundled = !import.meta.url.endsWith('.ts');

/**
 * The module a thread meant to run `entry` starts: `entry` itself from a checkout; from a bundle,
 * the bundle, which holds every entry, each acting on the workerData meant for it (the installer
 * image's threads start this way; the Cradle kit's image-store writers have a file of their own).
 * The bundle's entry must import `entry`'s module (cli/bundled-threads.ts), or a thread started
 * this way finds nothing to run.
 */
export function bundledOr(entry: URL): URL {
  return runsBundled ? new URL(import.meta.url) : entry;
}

/** A thread running the module at `entry` with `workerData`, under this thread's compile cache. */
export function startThread(entry: URL | string, workerData: unknown): Worker {
  const url = typeof entry === 'string' ? entry : entry.href;
  const cacheDir = module.getCompileCacheDir();
  if (!cacheDir || runsBundled) return new Worker(new URL(url), { workerData });
  // getCompileCacheDir() names the per-Node-version directory inside the one that was enabled.
  const code = `import m from 'node:module'; m.enableCompileCache(${JSON.stringify(path.dirname(cacheDir))}); await import(${JSON.stringify(url)});`;
  return new Worker(code, { eval: true, workerData });
}
