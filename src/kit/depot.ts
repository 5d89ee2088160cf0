// The depot (`/depot` on a head node, `--depot DIR` elsewhere): one directory holding the image
// store and the kits added to it.
//   DEPOT/images/                the image store (served by `cradle imageserver --store DEPOT/images`)
//   DEPOT/kits/NAME/VERSION/     kit.json as added (its digest is the kit's identity), kit.sig,
//                                and added.json (when, by whom signed, the images it recorded)
//   DEPOT/trust.pem              optional: only kits signed by a certificate this CA issued are added
// An OS kit's image is recorded as `kit-NAME/VERSION`, a component as `kit-NAME-COMPONENT/VERSION`.
// Adding is all or nothing: every object is verified before any becomes an object of the store,
// and the kit's record is written last, so a kill at any point leaves a consistent depot and the
// retry succeeds.
import fs from 'node:fs';
import path from 'node:path';
import type { Digest } from '../image/model/digest.ts';
import { neededObjects } from '../image/model/manifest.ts';
import { ImageStore, newRecord, type ImageRecord } from '../image/store/store.ts';
import { createFileAtomic } from '../util/atomic-file.ts';
import { download, type RequestTls } from '../util/request.ts';
import { readKitFile } from './container.ts';
import { KitError, kitDigest, kitLabel, kitManifests, parseKit, type Kit } from './format.ts';
import { verifyKitSignature } from './sign.ts';

export const DEFAULT_DEPOT = '/depot';

export interface KitRecord {
  kit: Kit;
  digest: Digest;
  addedAt: string;
  /** It carries a signature (kit.sig). */
  signed: boolean;
  /** Who signed it, when the signature was checked against the depot's trust (trust.pem, --trust). */
  signer?: string;
  /** The image store's names of its OS image and its components' layers. */
  images: { os?: string; components: Record<string, string> };
}

const ADDED = 'added.json';

export class Depot {
  readonly root: string;
  readonly store: ImageStore;
  private readonly kitsDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.store = new ImageStore(path.join(this.root, 'images'));
    this.kitsDir = path.join(this.root, 'kits');
  }

  /** The trust file, when the depot has one. */
  get trustFile(): string | undefined {
    const f = path.join(this.root, 'trust.pem');
    return fs.existsSync(f) ? f : undefined;
  }

  static imageNames(kit: Kit): KitRecord['images'] {
    return {
      ...(kit.image ? { os: `kit-${kit.name}/${kit.version}` } : {}),
      components: Object.fromEntries(kit.components.map((c) => [c.name, `kit-${kit.name}-${c.name}/${kit.version}`])),
    };
  }

  /**
   * Adds a kit file: verified whole first (signature when `trust` or the depot's trust file says
   * so, every object, every manifest), then its objects stored, its images recorded, its record
   * written. The same kit again is a no-op; another kit of the same name and version is refused.
   */
  async add(file: string, opts: { trust?: string } = {}): Promise<{ record: KitRecord; added: boolean }> {
    const trust = opts.trust ?? this.trustFile;
    let signer: string | undefined;
    const check = (kit: Kit, kitJson: Buffer, sig: Buffer | undefined) => {
      if (trust) signer = verifyKitSignature(kitJson, sig, trust, kitLabel(kit));
    };
    // One pass: each object is verified, then staged in the store's tmp/ (not yet an object of the
    // store); only once the whole kit has checked out are the staged ones moved into place. A kill
    // leaves at most staged files, which 'cradle image gc' sweeps.
    this.store.init();
    const staged = new Map<Digest, string>();
    let scanned: Awaited<ReturnType<typeof readKitFile>>;
    try {
      scanned = await readKitFile(file, check, (d, stored) => {
        if (staged.has(d) || this.store.storedSize(d) !== undefined) return;
        const tmp = this.store.tempPath('kit');
        fs.writeFileSync(tmp, stored, { mode: 0o444 });
        staged.set(d, tmp);
      });
      const existing = this.find(kitLabel(scanned.kit));
      if (existing) {
        if (existing.digest === scanned.digest) return { record: existing, added: false };
        throw new KitError(
          `kit ${kitLabel(scanned.kit)} is already in ${this.root} with other content (${existing.digest}, this is ${scanned.digest}): give the new one another version, or remove the old one first ('cradle kit rm ${kitLabel(scanned.kit)}')`,
        );
      }
      for (const [d, tmp] of staged) {
        this.store.adoptTemp(tmp, d);
        staged.delete(d);
      }
    } finally {
      for (const tmp of staged.values()) fs.rmSync(tmp, { force: true });
    }
    const { kit, digest } = scanned;
    const images = Depot.imageNames(kit);
    const manifestOf = new Map<string, Digest>([
      ...(kit.image && images.os ? [[images.os, kit.image] as [string, Digest]] : []),
      ...kit.components.map((c) => [images.components[c.name], c.manifest] as [string, Digest]),
    ]);
    for (const [name, m] of manifestOf) await this.recordImage(name, m, digest);
    const record: KitRecord = {
      kit,
      digest,
      addedAt: new Date().toISOString(),
      signed: !!scanned.signature,
      ...(signer ? { signer } : {}),
      images,
    };
    const dir = this.kitDir(kit);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'kit.json'), scanned.kitJson);
    if (scanned.signature) fs.writeFileSync(path.join(dir, 'kit.sig'), scanned.signature);
    // Last: the record that makes the kit exist.
    if (!createFileAtomic(path.join(dir, ADDED), `${JSON.stringify(record, null, 2)}\n`)) {
      const raced = this.find(kitLabel(kit));
      if (raced?.digest === digest) return { record: raced, added: false };
      throw new KitError(`kit ${kitLabel(kit)} was added by someone else at the same moment with other content`);
    }
    return { record, added: true };
  }

  /**
   * Runs `fn` on a kit file: `source` itself, or for an http(s):// URL a download into the store's
   * temporary directory (same file system, removed after; a kill leaves it to 'cradle image gc').
   * The download is not trusted: `add` verifies every byte.
   */
  async withSource<T>(source: string, tls: RequestTls, fn: (file: string) => Promise<T>): Promise<T> {
    if (!/^https?:\/\//i.test(source)) return fn(source);
    this.store.init();
    const file = this.store.tempPath('kit-download');
    try {
      await download(source, file, { tls });
      return await fn(file);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  /** An image of the kit in the store; one left by an interrupted add with the same manifest is kept. */
  private async recordImage(name: string, manifestDigest: Digest, kit: Digest): Promise<void> {
    const have = this.store.getRecord(name);
    if (have) {
      if (have.manifest === manifestDigest) return;
      throw new KitError(
        `image ${name} is already in the store with other content: remove it ('cradle image rm ${name}') or the kit that made it`,
      );
    }
    const manifest = await this.store.readManifest(manifestDigest);
    const record: ImageRecord = newRecord(name, manifestDigest, manifest, `kit:${kit}`);
    this.store.commitImage(record, [manifestDigest, ...neededObjects(manifest).keys()]);
  }

  private kitDir(k: Pick<Kit, 'name' | 'version'>): string {
    return path.join(this.kitsDir, k.name, k.version);
  }

  /** Every kit added, by name then version. */
  list(): KitRecord[] {
    if (!fs.existsSync(this.kitsDir)) return [];
    const out: KitRecord[] = [];
    for (const name of fs.readdirSync(this.kitsDir).sort()) {
      for (const version of fs.readdirSync(path.join(this.kitsDir, name)).sort()) {
        const r = this.read(path.join(this.kitsDir, name, version));
        if (r) out.push(r);
      }
    }
    return out;
  }

  private read(dir: string): KitRecord | undefined {
    const file = path.join(dir, ADDED);
    if (!fs.existsSync(file)) return undefined; // an add that did not finish
    return JSON.parse(fs.readFileSync(file, 'utf8')) as KitRecord;
  }

  /** A kit by `name/version`, or by name alone when only one version is there. */
  find(label: string): KitRecord | undefined {
    const [name, version] = label.split('/');
    if (version)
      return /^[A-Za-z0-9._+-]+$/.test(name + version) ? this.read(path.join(this.kitsDir, name, version)) : undefined;
    const all = this.list().filter((r) => r.kit.name === name);
    if (all.length > 1)
      throw new KitError(
        `kit '${name}' has versions ${all.map((r) => r.kit.version).join(', ')}: say which, e.g. ${kitLabel(all[0].kit)}`,
      );
    return all[0];
  }

  get(label: string): KitRecord {
    const r = this.find(label);
    if (!r) throw new KitError(`no kit '${label}' in ${this.root}: see 'cradle kit list'`);
    return r;
  }

  /**
   * Re-checks kits (all, or one): kit.json still hashes to the kit's digest, and every object of
   * every manifest is present and intact. Returns the problems found.
   */
  async verify(label?: string): Promise<string[]> {
    const problems: string[] = [];
    for (const r of label ? [this.get(label)] : this.list()) {
      const where = kitLabel(r.kit);
      const json = fs.readFileSync(path.join(this.kitDir(r.kit), 'kit.json'));
      if (kitDigest(json) !== r.digest) problems.push(`${where}: kit.json no longer hashes to ${r.digest}`);
      const kit = parseKit(json, `${where}: kit.json`);
      for (const m of kitManifests(kit)) {
        try {
          const manifest = await this.store.readManifest(m);
          for (const d of neededObjects(manifest).keys()) {
            try {
              await this.store.readObject(d);
            } catch (err) {
              problems.push(`${where}: ${(err as Error).message}`);
            }
          }
        } catch (err) {
          problems.push(`${where}: manifest ${m}: ${(err as Error).message}`);
        }
      }
    }
    return problems;
  }

  /**
   * Removes a kit and the images it recorded (their objects go at the next `cradle image gc`).
   * `usedBy` names what still uses it (node groups); then it is refused, saying which.
   */
  remove(label: string, usedBy: (r: KitRecord) => string[] = () => []): KitRecord {
    const r = this.get(label);
    const users = usedBy(r);
    if (users.length)
      throw new KitError(`kit ${kitLabel(r.kit)} is used by ${users.join(', ')}: change or remove those first`);
    // The record first: from then on the kit does not exist, whatever else a kill leaves.
    fs.rmSync(path.join(this.kitDir(r.kit), ADDED));
    for (const name of [r.images.os, ...Object.values(r.images.components)]) {
      if (name && this.store.getRecord(name)) this.store.removeImage(name);
    }
    fs.rmSync(this.kitDir(r.kit), { recursive: true, force: true });
    return r;
  }
}
