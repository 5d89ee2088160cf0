// What a head node's boot server serves out of its depot: the installer image (kernel and its two
// stages) that compute nodes network-boot, as the Cradle kit carries it. The files are taken
// from the depot's store, each verified against its digest, and written once per kit version to
// DEPOT/served/installer/VERSION/ (atomically: a directory renamed into place), where the boot
// server reads them. A kit carries no site's certificates, so the site's installer certificate
// and CA are added as a second cpio archive after the kit's initramfs (the kernel unpacks
// concatenated archives in turn), in a directory of their own per certificate set.
import fs from 'node:fs';
import path from 'node:path';
import { type Digest, digestOf } from '../image/model/digest.ts';
import { cpioNewc } from '../initramfs/cpio.ts';
import { concatenatedInitrds, FIRST_STAGE, INSTALLER_KERNEL, SECOND_STAGE } from '../initramfs/installer-files.ts';
import type { Depot, KitRecord } from './depot.ts';
import { KitError } from './format.ts';

/** Where the Cradle kit keeps the installer image: its `installer` component, at these paths. */
export const CRADLE_KIT_INSTALLER = {
  kit: 'cradle',
  component: 'installer',
  vmlinuz: 'usr/lib/cradle/installer/vmlinuz',
  initrd: 'usr/lib/cradle/installer/initrd.img',
  /** The image's second stage (absent from kits built before it existed). */
  stage2: 'usr/lib/cradle/installer/stage2.img',
} as const;

/** The `cradle` command in the Cradle kit's `cradle` component, as paths relative to its root. */
export const CRADLE_KIT_CLI = {
  kit: 'cradle',
  component: 'cradle',
  node: 'opt/cradle/bin/node',
  bundle: 'opt/cradle/lib/cradle.mjs',
  wrapper: 'usr/local/bin/cradle',
  /**
   * Node's compile cache for the bundle, which the wrapper turns on: a command then starts from V8's
   * code for it instead of compiling 2.7 MB (a quarter of `cradle machine list --help`'s CPU). It is
   * root's, as /var/cache is: a user who cannot write it runs uncached. Entries are keyed by the
   * source's hash and the Node version, so an upgraded kit never runs stale code.
   */
  compileCache: 'var/cache/cradle/node-compile-cache',
  /** Shared libraries Node needs that a minimal OS may lack. */
  libraries: 'opt/cradle/lib/native',
  /** The head node's systemd units (under usr/: on a merged-/usr system lib is a symlink, never a directory to write into). */
  units: 'usr/lib/systemd/system',
} as const;

/** The site's installer certificate, key and CA as the installer image holds them (/etc/ssl). */
function siteArchive(tls: { ca: string; cert: string; key: string }): { cpio: Buffer; id: string } {
  const files = { ca: fs.readFileSync(tls.ca), cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) };
  const cpio = Buffer.concat(
    cpioNewc([
      { type: 'dir', path: 'etc' },
      { type: 'dir', path: 'etc/ssl' },
      { type: 'dir', path: 'etc/ssl/installer', mode: 0o755 },
      { type: 'file', path: 'etc/ssl/CA.pem', data: files.ca, mode: 0o644 },
      { type: 'file', path: 'etc/ssl/installer/cert.pem', data: files.cert, mode: 0o644 },
      { type: 'file', path: 'etc/ssl/installer/key.pem', data: files.key, mode: 0o600 },
    ]),
  );
  return { cpio, id: digestOf(cpio).slice('sha256:'.length, 'sha256:'.length + 12) };
}

/** Compares versions such as 0.9.2 and 0.10.0 number by number. */
function newerFirst(a: KitRecord, b: KitRecord): number {
  return b.kit.version.localeCompare(a.kit.version, 'en', { numeric: true });
}

/**
 * The installer image of the newest Cradle kit in the depot, as a directory holding vmlinuz and
 * initrd.img (what `cradle server --installer-dir` takes). Undefined when the depot has no
 * Cradle kit with an installer.
 */
export async function servedInstaller(
  depot: Depot,
  opts: { tls?: { ca: string; cert: string; key: string } } = {},
): Promise<{ dir: string; kit: KitRecord } | undefined> {
  const { kit: name, component, vmlinuz, initrd, stage2 } = CRADLE_KIT_INSTALLER;
  const kit = depot
    .list()
    .filter((r) => r.kit.name === name && r.kit.components.some((c) => c.name === component))
    .sort(newerFirst)[0];
  if (!kit) return undefined;
  const site = opts.tls ? siteArchive(opts.tls) : undefined;
  const dir = path.join(depot.root, 'served', 'installer', `${kit.kit.version}${site ? `-site-${site.id}` : ''}`);
  if (fs.existsSync(path.join(dir, FIRST_STAGE))) return { dir, kit };
  const manifest = await depot.store.readManifest(
    kit.kit.components.find((c) => c.name === component)?.manifest as Digest,
  );
  const digestAt = (p: string): Digest | undefined => {
    const e = manifest.entries.find((x) => x.path === p);
    return e?.type === 'file' && e.digest ? (e.digest as Digest) : undefined;
  };
  const fileAt = (p: string): Digest => {
    const digest = digestAt(p);
    if (!digest) throw new KitError(`kit ${name}/${kit.kit.version}: its ${component} component has no file ${p}`);
    return digest;
  };
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const files: [string, Digest][] = [
      [INSTALLER_KERNEL, fileAt(vmlinuz)],
      [FIRST_STAGE, fileAt(initrd)],
    ];
    const second = digestAt(stage2);
    if (second) files.push([SECOND_STAGE, second]);
    for (const [file, digest] of files) {
      const content = await depot.store.readObject(digest); // verified against its digest
      fs.writeFileSync(
        path.join(tmp, file),
        file === FIRST_STAGE && site ? concatenatedInitrds([content, site.cpio]) : content,
        { mode: 0o644 },
      );
    }
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // Another server made it at the same moment: theirs is the same bytes.
      if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, kit };
}
