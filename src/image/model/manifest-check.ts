// The manifest schema's checks written out by hand, for the common case. zod checks a manifest's
// entries at about 5 µs each (measured: 150-200 ms of a 32,000-entry manifest, three times
// JSON.parse), on every install. checkedManifest accepts only what manifestSchema accepts, and
// returns what it would return (new objects, keys in the schema's order, so a manifest encoded
// again has the same bytes either way); for anything else it answers undefined and the caller asks
// zod, whose error names the field. manifest-check.test.ts holds it to that against zod.
import { isDigest } from './digest.ts';

export const MANIFEST_FORMAT = 'cradle-image-manifest/1';
export const MAX_PATH_BYTES = 4095;
export const MTIME = /^-?\d{1,19}\.\d{9}$/;
/** Padded base64 (RFC 4648), or nothing; no quantified groups, which overflow the stack on megabytes. */
const BASE64_CHARS = /^[0-9a-zA-Z+/]*={0,2}$/;
const isBase64 = (v: string) => v.length % 4 === 0 && BASE64_CHARS.test(v);

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isText = (v: unknown, max = Number.POSITIVE_INFINITY) =>
  typeof v === 'string' && v.length >= 1 && v.length <= max;

/** The keys each entry type may have (the output is built in the schema's order below). */
const BASE = ['type', 'path', 'mode', 'uid', 'gid', 'mtime', 'xattrs'];
const KEYS: Record<string, ReadonlySet<string>> = {
  dir: new Set(BASE),
  fifo: new Set(BASE),
  file: new Set([...BASE, 'size', 'digest', 'sparse']),
  symlink: new Set([...BASE, 'target']),
  char: new Set([...BASE, 'rdev']),
  block: new Set([...BASE, 'rdev']),
  hardlink: new Set(['type', 'path', 'target']),
};

function onlyKeys(o: Obj, allowed: ReadonlySet<string>): boolean {
  for (const k in o) if (!allowed.has(k)) return false;
  return true;
}

/** The metadata every entry but a hard link has, as the schema returns it; undefined when wrong. */
function base(e: Obj): Obj | undefined {
  const { mode } = e;
  if (!(typeof mode === 'number' && Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) return undefined;
  if (!isId(e.uid) || !isId(e.gid) || typeof e.mtime !== 'string' || !MTIME.test(e.mtime)) return undefined;
  const out: Obj = { type: e.type, path: e.path, mode, uid: e.uid, gid: e.gid, mtime: e.mtime };
  if ('xattrs' in e) {
    const x = xattrs(e.xattrs);
    if (!x) return undefined;
    out.xattrs = x;
  }
  return out;
}

/**
 * Extended attributes as the schema returns them: a plain object of names and base64 values,
 * copied in order. A name zod treats apart (`__proto__`) is left to zod.
 */
function xattrs(x: unknown): Obj | undefined {
  if (!isObject(x) || Object.getPrototypeOf(x) !== Object.prototype) return undefined;
  const out: Obj = {};
  for (const name of Object.keys(x)) {
    const value = x[name];
    if (name === '' || name === '__proto__' || typeof value !== 'string' || !isBase64(value)) return undefined;
    out[name] = value;
  }
  return out;
}

function entry(e: unknown): Obj | undefined {
  if (!isObject(e)) return undefined;
  const allowed = typeof e.type === 'string' && Object.hasOwn(KEYS, e.type) ? KEYS[e.type] : undefined;
  if (!allowed || !onlyKeys(e, allowed) || !isText(e.path)) return undefined;
  if (e.type === 'hardlink') return isText(e.target) ? { type: e.type, path: e.path, target: e.target } : undefined;
  const out = base(e);
  if (!out) return undefined;
  switch (e.type) {
    case 'file': {
      const { size } = e;
      if (!(typeof size === 'number' && Number.isSafeInteger(size) && size >= 0)) return undefined;
      out.size = size;
      if ('digest' in e) {
        if (!isDigest(e.digest)) return undefined;
        out.digest = e.digest;
      }
      if ('sparse' in e) {
        if (e.sparse !== true) return undefined;
        out.sparse = true;
      }
      return out;
    }
    case 'symlink':
      if (!isText(e.target, MAX_PATH_BYTES)) return undefined;
      out.target = e.target;
      return out;
    case 'char':
    case 'block': {
      const { rdev } = e;
      if (!isObject(rdev) || !onlyKeys(rdev, RDEV) || !isId(rdev.major) || !isId(rdev.minor)) return undefined;
      out.rdev = { major: rdev.major, minor: rdev.minor };
      return out;
    }
    default:
      return out;
  }
}

const RDEV: ReadonlySet<string> = new Set(['major', 'minor']);
const TOP: ReadonlySet<string> = new Set(['format', 'entries']);

/**
 * What manifestSchema would return for `json` when it accepts it and this check can tell;
 * undefined otherwise (a refusal, or a case left to zod).
 */
export function checkedManifest(json: unknown): { format: string; entries: Obj[] } | undefined {
  if (!isObject(json) || !onlyKeys(json, TOP) || json.format !== MANIFEST_FORMAT) return undefined;
  const { entries } = json;
  if (!Array.isArray(entries) || entries.length === 0) return undefined;
  const out: Obj[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entry(entries[i]);
    if (!e) return undefined;
    out[i] = e;
  }
  return { format: MANIFEST_FORMAT, entries: out };
}
