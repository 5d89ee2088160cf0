// `cradle kit build`: a kit file from image sources (what `cradle image add` takes: a directory, a
// tar, an OCI layout, a docker save archive). Each source is packed into a scratch image store,
// then kit.json names the resulting manifests and the kit file carries every object they need, as
// stored. The same sources give the same objects, so a rebuilt kit shares them all.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Digest } from '../image/model/digest.ts';
import { neededObjects } from '../image/model/manifest.ts';
import { addImage } from '../image/pack/add.ts';
import { ImageStore } from '../image/store/store.ts';
import { writeKitFile } from './container.ts';
import { encodeKit, kitDigest, kitLabel, kitSchema, type Kit } from './format.ts';
import { signKit } from './sign.ts';

export interface ComponentSpec {
  name: string;
  nodeGroups: string[];
  /** The OS it supports (add-on kits); an OS kit's components support its own OS. */
  os?: string[];
  description?: string;
  source: string;
}

export interface KitSpec {
  name: string;
  version: string;
  kind: 'os' | 'addon';
  os?: string;
  arch: 'x86_64' | 'aarch64';
  description?: string;
  /** An OS kit's operating system: an image source. */
  image?: string;
  components: ComponentSpec[];
}

export interface BuiltKit {
  kit: Kit;
  digest: Digest;
  objects: number;
  bytes: number;
}

export async function buildKit(
  spec: KitSpec,
  out: string,
  opts: { sign?: { cert: string; key: string }; log?: (line: string) => void } = {},
): Promise<BuiltKit> {
  const log = opts.log ?? (() => {});
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-kit-build-'));
  try {
    const store = new ImageStore(path.join(scratch, 'store')).init();
    const pack = async (what: string, source: string) => {
      const r = await addImage(store, `kit/${what}`, source, { warn: (l: string) => log(`${what}: ${l}`) });
      log(`${what}: ${r.record.stats.files} files, ${r.record.stats.bytes} bytes from ${source}`);
      return r.record.manifest as Digest;
    };
    const image = spec.image ? await pack('os-image', spec.image) : undefined;
    const components = [];
    for (const c of spec.components) {
      components.push({
        name: c.name,
        description: c.description ?? '',
        nodeGroups: c.nodeGroups,
        os: c.os ?? (spec.kind === 'os' && spec.os ? [spec.os] : []),
        manifest: await pack(`component-${c.name}`, c.source),
      });
    }
    const parsed = kitSchema.safeParse({
      cradleKit: 1,
      name: spec.name,
      version: spec.version,
      kind: spec.kind,
      ...(spec.os ? { os: spec.os } : {}),
      arch: spec.arch,
      description: spec.description ?? '',
      ...(image ? { image } : {}),
      components,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`kit ${spec.name}/${spec.version}: ${issue.path.join('.') || 'kit'}: ${issue.message}`);
    }
    const kit = parsed.data;
    const kitJson = encodeKit(kit);
    const signature = opts.sign ? signKit(kitJson, opts.sign.cert, opts.sign.key) : undefined;
    // Manifests first: a reader learns from them which objects to expect.
    const manifests = [...(image ? [image] : []), ...components.map((c) => c.manifest)];
    const order: Digest[] = [...new Set(manifests)];
    for (const m of manifests) for (const d of neededObjects(await store.readManifest(m)).keys()) order.push(d);
    const unique = [...new Set(order)];
    let bytes = 0;
    await writeKitFile(
      out,
      kitJson,
      signature,
      (async function* () {
        for (const digest of unique) {
          const stored = store.readCompressed(digest);
          bytes += stored.length;
          yield { digest, stored };
        }
      })(),
    );
    log(
      `kit ${kitLabel(kit)} (${kitDigest(kitJson)}): ${unique.length} objects, ${bytes} bytes${signature ? ', signed' : ''}`,
    );
    return { kit, digest: kitDigest(kitJson), objects: unique.length, bytes };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
