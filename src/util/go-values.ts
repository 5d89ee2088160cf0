// Values as Dominator's tools write them on their command lines: Go durations (`90s`, `5m`,
// `1h30m`) and byte sizes (`10M`, `100MiB`, `16k`; binary multiples, as Dominator's flagutil.Size).

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Seconds in a Go duration, or in a bare number of seconds; an error names the flag. */
export function goDurationSeconds(value: string, flag: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== v)
    throw new Error(`${flag} takes a duration such as 30s, 5m or 1h30m (or seconds), not '${value}'`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]], 0);
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Bytes in a size (`10M`, `10 MiB`, `16384`); an error names the flag. */
export function byteSize(value: string, flag: string): number {
  const m = /^(\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  if (!m) throw new Error(`${flag} takes a size such as 16384, 16k, 10M or 1G, not '${value}'`);
  return Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()];
}
