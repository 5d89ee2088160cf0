// Version-aware ordering of names, as Dominator's lib/verstr orders them (its list-images prints
// image names so): runs of digits compare as numbers, everything else byte by byte, so `img.2`
// comes before `img.10` and `os-v9` before `os-v10`; a name that is a prefix of another comes first.

const digit = (c: number) => c >= 48 && c <= 57;

/** The run of digits starting at `i`, without leading zeros, and where it ends. */
function numberAt(s: string, i: number): { value: string; end: number } {
  let end = i;
  while (end < s.length && digit(s.charCodeAt(end))) end++;
  return { value: s.slice(i, end).replace(/^0+(?=\d)/, ''), end };
}

/** Negative when `a` sorts before `b`, positive after, 0 only when they are equal. */
export function compareVersions(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    if (digit(ca) && digit(cb)) {
      const na = numberAt(a, i);
      const nb = numberAt(b, j);
      if (na.value.length !== nb.value.length) return na.value.length - nb.value.length;
      if (na.value !== nb.value) return na.value < nb.value ? -1 : 1;
      i = na.end;
      j = nb.end;
    } else {
      if (ca !== cb) return ca - cb;
      i++;
      j++;
    }
  }
  const rest = a.length - i - (b.length - j);
  if (rest) return rest;
  // Equal but for leading zeros (`v01`, `v1`): plain order, so the order is total.
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A copy sorted version-aware (Dominator's verstr.Sort). */
export function sortVersions<T>(items: readonly T[], key: (item: T) => string): T[] {
  return [...items].sort((x, y) => compareVersions(key(x), key(y)));
}
