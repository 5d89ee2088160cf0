// Starting a worker thread the way the calling thread runs. When this process runs with Node's
// compile cache (bin/cradle turns it on, see src/cli/start.mjs), the new thread turns on the same
// cache before loading its module: a thread does not inherit it, and stripping types and compiling
// afresh costs each thread 60-300 ms.
import module from 'node:module';
import path from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Whether this code runs from a bundle (the installer image, the Cradle kit), not a checkout. */
export const runsBundled = !import.meta.url.endsWith('.ts');

/**
 * The module a thread meant to run `entry` (a thread's module, `NAME.ts`) loads: from a checkout,
 * `entry` itself; from a bundle, the thread's own bundle beside it, `NAME.mjs`, which the builds
 * put there (initramfs/bundle.ts). A thread that loaded the whole command's bundle instead
 * parsed 2.7 MB before its first job (120 ms here, seconds under emulation), and a `.ts` file
 * would start Node's type stripper in it.
 */
export function threadModule(entry: URL): URL {
  return runsBundled ? new URL(entry.href.replace(/\.ts$/, '.mjs')) : entry;
}

/** A thread running the thread module `entry` (see threadModule) with `workerData`; from a checkout, under this thread's compile cache. */
export function startThread(entry: URL, workerData: unknown, options: Pick<WorkerOptions, 'execArgv'> = {}): Worker {
  const url = threadModule(entry);
  const cacheDir = module.getCompileCacheDir();
  if (!cacheDir || runsBundled) return new Worker(url, { ...options, workerData });
  // getCompileCacheDir() names the per-Node-version directory inside the one that was enabled.
  const code = `import m from 'node:module'; m.enableCompileCache(${JSON.stringify(path.dirname(cacheDir))}); await import(${JSON.stringify(url.href)});`;
  return new Worker(code, { ...options, eval: true, workerData });
}
