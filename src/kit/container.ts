// The kit file: one uncompressed tar holding `kit.json`, optionally `kit.sig`, then every object
// the kit needs as the image store keeps it (zstd), named `objects/<hex>`: manifests first, then
// the files they name. Reading verifies everything (the signature, each object's digest, each
// manifest's safety) as it goes, so a truncated, corrupt or unsafe kit is refused before a byte of
// it is stored: the depot stages each verified object and keeps them only once the whole file passed.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { digestFromBytes, digestHex, digestOf, type Digest } from '../image/model/digest.ts';
import { neededObjects, parseManifest } from '../image/model/manifest.ts';
import { readTar } from '../image/pack/tar-reader.ts';
import { KitError, kitDigest, kitManifests, parseKit, type Kit } from './format.ts';

export const KIT_JSON = 'kit.json';
export const KIT_SIG = 'kit.sig';
const OBJECT_PREFIX = 'objects/';
const MAX_KIT_JSON = 1024 * 1024;
/** A manifest's size is not known in advance: no manifest is larger (a million entries is ~200 MB). */
const MAX_MANIFEST_BYTES = 512 * 1024 * 1024;

// ---- writing --------------------------------------------------------------------------------

function ustarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/** Writes a kit file atomically (aside, then renamed): kit.json, its signature, the objects. */
export async function writeKitFile(
  out: string,
  kitJson: Buffer,
  signature: Buffer | undefined,
  objects: AsyncIterable<{ digest: Digest; stored: Buffer }>,
): Promise<void> {
  const tmp = `${out}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    const member = (name: string, data: Buffer) => {
      fs.writeSync(fd, ustarHeader(name, data.length));
      fs.writeSync(fd, data);
      const pad = (512 - (data.length % 512)) % 512;
      if (pad) fs.writeSync(fd, Buffer.alloc(pad));
    };
    member(KIT_JSON, kitJson);
    if (signature) member(KIT_SIG, signature);
    for await (const o of objects) member(`${OBJECT_PREFIX}${digestHex(o.digest)}`, o.stored);
    fs.writeSync(fd, Buffer.alloc(1024));
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, out);
}

// ---- reading --------------------------------------------------------------------------------

export interface KitFileContents {
  kit: Kit;
  kitJson: Buffer;
  digest: Digest;
  signature?: Buffer;
  /** Every object, with its stored size. */
  objects: Map<Digest, number>;
}

/**
 * Reads a kit file, checking every member: kit.json first and valid, `check(kit, json, sig)` (the
 * signature policy), each object named by the digest of its content and referenced by the kit,
 * manifests before the files they name, every manifest safe to unpack, nothing missing.
 * `onObject` receives each verified object as stored (the depot stages them).
 */
export async function readKitFile(
  file: string,
  check: (kit: Kit, kitJson: Buffer, signature: Buffer | undefined) => void,
  onObject: (digest: Digest, stored: Buffer) => void = () => {},
): Promise<KitFileContents> {
  const where = (what: string) => new KitError(`${file}: ${what}`);
  let kit: Kit | undefined;
  let kitJson: Buffer | undefined;
  let signature: Buffer | undefined;
  let checked = false;
  /** Objects the kit needs, with their size when a manifest gave it (-1 for manifests). */
  const expected = new Map<Digest, number>();
  const objects = new Map<Digest, number>();
  try {
    for await (const entry of readTar(fs.createReadStream(file))) {
      if (!kit) {
        if (entry.path !== KIT_JSON)
          throw where(`the first member is '${entry.path}', not ${KIT_JSON}: this is not a Cradle kit`);
        if (entry.size > MAX_KIT_JSON) throw where(`${KIT_JSON} is over ${MAX_KIT_JSON} bytes`);
        kitJson = await entry.readAll();
        kit = parseKit(kitJson, `${file}: ${KIT_JSON}`);
        for (const d of kitManifests(kit)) expected.set(d, -1);
        continue;
      }
      if (entry.path === KIT_SIG && !checked && !signature) {
        signature = await entry.readAll();
        continue;
      }
      if (!checked) {
        check(kit, kitJson!, signature);
        checked = true;
      }
      if (entry.type !== 'file' || !entry.path.startsWith(OBJECT_PREFIX))
        throw where(`unexpected member '${entry.path}': a kit holds only ${KIT_JSON}, ${KIT_SIG} and objects/`);
      const hex = entry.path.slice(OBJECT_PREFIX.length);
      if (!/^[0-9a-f]{64}$/.test(hex)) throw where(`'${entry.path}' is not named by a digest`);
      const digest = digestFromBytes(Buffer.from(hex, 'hex'));
      const size = expected.get(digest);
      if (size === undefined)
        throw where(`object ${digest} is not named by the kit or by a manifest before it (a corrupt or altered kit)`);
      if (objects.has(digest)) throw where(`object ${digest} appears twice`);
      const stored = await entry.readAll();
      let content: Buffer;
      try {
        content = zlib.zstdDecompressSync(stored, {
          maxOutputLength: Math.max(1, size < 0 ? MAX_MANIFEST_BYTES : size),
        });
      } catch (err) {
        throw where(`object ${digest} is not a valid zstd frame of its size: ${(err as Error).message}`);
      }
      const actual = digestOf(content);
      if (actual !== digest) throw where(`object ${digest} is corrupt: its content hashes to ${actual}`);
      if (size < 0) {
        // A manifest: safe paths, parents first (parseManifest refuses '..', absolute paths, links out).
        const manifest = await parseManifest(content, `${file}: manifest ${digest}`);
        for (const [d, n] of neededObjects(manifest)) if (!expected.has(d)) expected.set(d, n);
      }
      objects.set(digest, stored.length);
      onObject(digest, stored);
    }
  } catch (err) {
    if (err instanceof KitError) throw err;
    throw where((err as Error).message);
  }
  if (!kit) throw where('it is empty: not a Cradle kit');
  if (!checked) check(kit, kitJson!, signature);
  const missing = [...expected.keys()].filter((d) => !objects.has(d));
  if (missing.length)
    throw where(
      `${missing.length} of ${expected.size} objects are missing, the first being ${missing[0]}: the file is truncated or incomplete`,
    );
  return { kit, kitJson: kitJson!, digest: kitDigest(kitJson!), signature, objects };
}
