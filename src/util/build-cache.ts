// Cradle's build cache (CRADLE_CACHE, default /var/tmp/cradle-cache): what takes long to build
// and is the same every time (the installer image, Debian root file systems, the tiny test OS, the
// lab's certificates) is built once per machine and kept. Entries are built aside and renamed into
// place, so a killed build never leaves half an entry and two builds at once both succeed.
import fs from 'node:fs';
import path from 'node:path';

export const cacheDir = process.env.CRADLE_CACHE ?? '/var/tmp/cradle-cache';

/**
 * A cache entry is built aside, in the directory this returns, and renamed into place when
 * complete (placeBuilt): a killed build leaves no half entry.
 */
export function buildDirFor(dir: string): string {
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  return tmp;
}

/**
 * Moves a finished build into place. Processes that built the same entry at once all succeed:
 * the first rename wins, the others take its entry (recognised by `marker`) and drop their own.
 */
export function placeBuilt(tmp: string, dir: string, marker: string): string {
  try {
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, marker))) throw err;
  }
  return dir;
}

/**
 * Removes older builds of one kind from the cache (names starting with `prefix`), keeping the
 * `keep` newest: every change to the installer or the test OS makes a new build.
 */
export function pruneCache(prefix: string, keep = 2): void {
  const builds = fs
    .readdirSync(cacheDir)
    .filter((n) => n.startsWith(prefix) && !n.includes('.tmp-'))
    .map((n) => ({ n, t: fs.statSync(path.join(cacheDir, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of builds.slice(keep)) fs.rmSync(path.join(cacheDir, n), { recursive: true, force: true });
}
