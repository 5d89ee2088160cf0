// The Node.js runtime the installer image carries: the pinned binary, stripped, with its ICU data
// cut to what the installer uses. The official binary embeds ICU's full data (33 MB, a quarter of
// the binary and 9 MB of the compressed image: every locale's names, collations, calendars, and
// converters for legacy encodings). The installer speaks English: it keeps the data that does not
// depend on a locale (time zones, plural rules, normalisation, break rules) and the root and
// English locales; other locales fall back to root's formats, Intl.supportedValuesOf('timeZone')
// and localeCompare(…, 'en', { numeric }) are unchanged. The smaller package is written where the
// full one was (ICU finds it by the symbol icudt<N>_dat), the rest of that space zeroed, so nothing
// else in the binary moves.
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../system/run.ts';
import { hostProgram } from './resolve.ts';

/** Locales the image keeps (with their parents): root, and English as the installer writes it. */
const KEPT_LOCALES = new Set(['root', 'en', 'en_US', 'en_US_POSIX', 'en_001', 'en_150', 'en_GB']);

/** A locale's bundle name (`de.res`, `zh_Hant_TW.res`), as opposed to ICU's locale-free data (`metaZones.res`). */
const LOCALE_BUNDLE = /^(root|[a-z]{2,3}(_[A-Za-z0-9]*)*)\.res$/;

/**
 * The items of an ICU data package (as `icupkg -l` lists them: `coll/de.res`, `zoneinfo64.res`)
 * that the installer image leaves out: other locales' bundles, converters for legacy encodings
 * (UTF-8, UTF-16 and Latin-1 are built into ICU's code), transliteration (V8 has no API for it)
 * and the dictionaries that break Chinese, Japanese, Thai, Lao, Khmer and Burmese text into words.
 */
export function icuItemsToRemove(items: string[]): string[] {
  return items.filter((item) => {
    const parts = item.split('/');
    const base = parts.at(-1)!;
    if (parts[0] === 'translit' || base.endsWith('.cnv') || base.endsWith('.dict')) return true;
    if (base === 'res_index.res' || base === 'pool.res') return false;
    const m = LOCALE_BUNDLE.exec(base);
    return m !== null && !KEPT_LOCALES.has(base.slice(0, -'.res'.length));
  });
}

/** Where a symbol's bytes are in an ELF file: its address and size (nm), mapped through its section (readelf). */
export function symbolFileRange(
  nmOutput: string,
  sectionsOutput: string,
  symbol: RegExp,
): { name: string; offset: number; size: number } {
  const sym = nmOutput
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((p) => p.length >= 4 && symbol.test(p[3]));
  if (!sym) throw new Error(`no symbol matching ${symbol} in the Node binary (is it an official build with full ICU?)`);
  const address = Number.parseInt(sym[0], 16);
  const size = Number.parseInt(sym[1], 16);
  // readelf -SW: "[16] .rodata PROGBITS 0000000003489000 3089000 37f3b2c …"
  for (const line of sectionsOutput.split('\n')) {
    const m = /\]\s+\S+\s+\S+\s+([0-9a-f]{8,16})\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(line);
    if (!m) continue;
    const [addr, off, len] = [m[1], m[2], m[3]].map((h) => Number.parseInt(h, 16));
    if (addr && address >= addr && address + size <= addr + len)
      return { name: sym[3], offset: off + (address - addr), size };
  }
  throw new Error(`symbol ${sym[3]} is in no section of the Node binary`);
}

/**
 * Writes the image's Node binary to `out`: `source` with ICU data cut by icuItemsToRemove, then
 * stripped. Deterministic for the same source binary and icupkg.
 */
export async function slimNodeRuntime(source: string, out: string, work: string): Promise<{ icuBytes: number }> {
  const icupkg = hostProgram('icupkg', 'icu-devtools');
  const nm = await run(hostProgram('nm', 'binutils'), ['-S', '--defined-only', source]);
  const sections = await run(hostProgram('readelf', 'binutils'), ['-SW', source]);
  const icu = symbolFileRange(nm.stdout, sections.stdout, /^icudt\d+_dat$/);
  const binary = fs.readFileSync(source);
  const pkgName = `${icu.name.replace(/_dat$/, '')}l.dat`; // icudt78l.dat: little-endian ASCII
  const dir = path.join(work, 'icu');
  fs.mkdirSync(path.join(dir, 'subset'), { recursive: true });
  const full = path.join(dir, pkgName);
  fs.writeFileSync(full, binary.subarray(icu.offset, icu.offset + icu.size));
  const list = path.join(dir, 'items.txt');
  await run(icupkg, ['-l', full, '-o', list]);
  const items = fs.readFileSync(list, 'utf8').split('\n').filter(Boolean);
  const removeList = path.join(dir, 'remove.txt');
  fs.writeFileSync(removeList, `${icuItemsToRemove(items).join('\n')}\n`);
  // --ignore-deps: the kept root bundles name the dictionaries and locales left out; ICU falls
  // back (to root, or to rules without a dictionary) when an item is missing.
  const subsetFile = path.join(dir, 'subset', pkgName);
  await run(icupkg, ['--ignore-deps', '-r', removeList, full, subsetFile]);
  const subset = fs.readFileSync(subsetFile);
  if (subset.length > icu.size)
    throw new Error(`the trimmed ICU data (${subset.length} bytes) is larger than the full`);
  binary.fill(0, icu.offset, icu.offset + icu.size);
  subset.copy(binary, icu.offset);
  fs.writeFileSync(out, binary, { mode: 0o755 });
  // The runtime without its debugging symbols (a third of its size).
  await run('strip', ['--strip-unneeded', out]);
  return { icuBytes: subset.length };
}
