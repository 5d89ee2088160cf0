// Finding the kits the Kits screen offers: the *.kit files of the installation medium's kits
// directory, and kits typed in as URLs. Only kit.json is read (it is a kit file's first member):
// the wizard needs each kit's name, version and kind, and an OS kit is gigabytes that the install
// verifies whole when it adds it to the depot. The I/O beside the pure screens.
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { readTar } from '../../image/pack/tar-reader.ts';
import { KIT_JSON } from '../../kit/container.ts';
import { parseKit } from '../../kit/format.ts';
import { getUrl } from '../source.ts';
import type { KitLookup } from './model.ts';

const MAX_KIT_JSON = 1024 * 1024;

/** A kit's kit.json from the start of its file, as a lookup (name, version, kind) or its problem. */
export async function kitFromStream(stream: Readable, source: string): Promise<KitLookup> {
  try {
    for await (const entry of readTar(stream)) {
      if (entry.path !== KIT_JSON)
        return { source, problem: `its first member is '${entry.path}', not ${KIT_JSON}: not a Cradle kit` };
      if (entry.size > MAX_KIT_JSON) return { source, problem: `its ${KIT_JSON} is over ${MAX_KIT_JSON} bytes` };
      const kit = parseKit(await entry.readAll(), `${source}: ${KIT_JSON}`);
      return { source, name: kit.name, version: kit.version, kind: kit.kind, ...(kit.os ? { os: kit.os } : {}) };
    }
    return { source, problem: 'it is empty: not a Cradle kit' };
  } catch (err) {
    return { source, problem: `not a readable kit file: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    stream.destroy();
  }
}

/** Every *.kit file of `dir`, by name, each read or with its problem. */
export async function findMediaKits(dir: string | undefined): Promise<KitLookup[]> {
  if (!dir) return [];
  let names: string[];
  try {
    names = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.kit'))
      .sort();
  } catch (err) {
    return [{ source: dir, problem: `the kits directory cannot be read: ${(err as NodeJS.ErrnoException).code}` }];
  }
  const out: KitLookup[] = [];
  for (const n of names) out.push(await kitFromStream(fs.createReadStream(path.join(dir, n)), n));
  return out;
}

/**
 * A kit at an http(s):// URL, by its kit.json (the first bytes of the download). With a
 * fingerprint the server's certificate is pinned instead of checked against a CA, as the answer
 * file's `kits.urls[].fingerprint` says the install will.
 */
export async function lookUpKitUrl(url: string, fingerprint?: string, timeoutMs = 15_000): Promise<KitLookup> {
  try {
    new URL(url);
  } catch {
    return { source: url, problem: 'not a URL' };
  }
  try {
    return await kitFromStream(await getUrl(url, url, { fingerprint, timeoutMs }), url);
  } catch (err) {
    return { source: url, problem: (err as Error).message.replace(`${url}: `, '') };
  }
}
