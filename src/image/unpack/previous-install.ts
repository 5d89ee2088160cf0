// The previous install's record: where an installer put each object of the image it installed,
// kept on the installed system so the next install over it (a rebirth) finds the old disk's
// objects by digest without walking and hashing the whole tree. It only says where to look: the
// local cache (local-cache.ts) still hashes every candidate's bytes before using them, so a file
// changed since, or a record that lies, costs a hash and nothing else.
import fs from 'node:fs';
import path from 'node:path';
import { type Digest, isDigest } from '../model/digest.ts';
import type { Manifest } from '../model/manifest.ts';

/** Where the record lies in an installed system's root. */
export const PREVIOUS_INSTALL_RECORD = 'var/lib/cradle/installed-objects.json';

/** Larger records are not read: an image of millions of files is walked instead. */
const RECORD_LIMIT = 256 * 1024 * 1024;

interface RecordFile {
  version: 1;
  image: string;
  /** [path relative to the root, digest, size] per regular file of the image. */
  files: [string, Digest, number][];
}

/** The record of installing `manifest` (the image named `image`), as the file's text. */
export function previousInstallRecord(manifest: Manifest, image: string): string {
  const files: RecordFile['files'] = [];
  for (const e of manifest.entries) if (e.type === 'file' && e.digest) files.push([e.path, e.digest as Digest, e.size]);
  return `${JSON.stringify({ version: 1, image, files } satisfies RecordFile)}\n`;
}

/**
 * The record under `root`, as digest -> absolute paths under the root; undefined when there is
 * none or it cannot be read as one (the cache then walks the root instead).
 */
export function readPreviousInstallRecord(root: string): Map<Digest, string[]> | undefined {
  const file = path.join(root, PREVIOUS_INSTALL_RECORD);
  let record: RecordFile;
  try {
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size > RECORD_LIMIT) return undefined;
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as RecordFile;
  } catch {
    return undefined;
  }
  if (record?.version !== 1 || !Array.isArray(record.files)) return undefined;
  const byDigest = new Map<Digest, string[]>();
  for (const f of record.files) {
    if (!Array.isArray(f) || typeof f[0] !== 'string' || !isDigest(f[1])) continue;
    const rel = path.normalize(f[0]);
    if (path.isAbsolute(rel) || rel.startsWith('..')) continue; // only paths inside the root
    const abs = path.join(root, rel);
    const list = byDigest.get(f[1]);
    if (list) list.push(abs);
    else byDigest.set(f[1], [abs]);
  }
  return byDigest;
}
