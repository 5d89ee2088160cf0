// What a head node's boot server serves out of its depot: the installer image (kernel and
// initramfs) that compute nodes network-boot, as the Cradle kit carries it. The files are taken
// from the depot's store, each verified against its digest, and written once per kit version to
// DEPOT/served/installer/VERSION/ (atomically: a directory renamed into place), where the boot
// server reads them. A kit carries no site's certificates, so the site's installer certificate
// and CA are added as a second cpio archive after the kit's initramfs (the kernel unpacks
// concatenated archives in turn), in a directory of their own per certificate set.
import fs from 'node:fs';
import path from 'node:path';
import { type Digest, digestOf } from '../image/model/digest.ts';
import { cpioNewc } from '../initramfs/cpio.ts';
import type { Depot, KitRecord } from './depot.ts';
import { KitError } from './format.ts';

/** Where the Cradle kit keeps the installer image: its `installer` component, at these paths. */
export const CRADLE_KIT_INSTALLER = {
  kit: 'cradle',
  component: 'installer',
  vmlinuz: 'usr/lib/cradle/installer/vmlinuz',
  initrd: 'usr/lib/cradle/installer/initrd.img',
} as const;

/** The `cradle` command in the Cradle kit's `cradle` component, as paths relative to its root. */
export const CRADLE_KIT_CLI = {
  kit: 'cradle',
  component: 'cradle',
  node: 'opt/cradle/bin/node',
  bundle: 'opt/cradle/lib/cradle.mjs',
  wrapper: 'usr/local/bin/cradle',
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

/**
 * An initramfs with another archive after it. Linux reads an uncompressed cpio archive only where
 * it starts at a multiple of 4 bytes from the beginning (init/initramfs.c), and skips zeros
 * between archives: after a compressed image whose length is not a multiple of 4, the archive
 * must be padded to it, or the kernel reports "invalid magic at start of compressed archive" and
 * leaves the certificates out.
 */
export function withArchive(initramfs: Buffer, archive: Buffer): Buffer {
  return Buffer.concat([initramfs, Buffer.alloc((4 - (initramfs.length % 4)) % 4), archive]);
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
  const { kit: name, component, vmlinuz, initrd } = CRADLE_KIT_INSTALLER;
  const kit = depot
    .list()
    .filter((r) => r.kit.name === name && r.kit.components.some((c) => c.name === component))
    .sort(newerFirst)[0];
  if (!kit) return undefined;
  const site = opts.tls ? siteArchive(opts.tls) : undefined;
  const dir = path.join(depot.root, 'served', 'installer', `${kit.kit.version}${site ? `-site-${site.id}` : ''}`);
  if (fs.existsSync(path.join(dir, 'initrd.img'))) return { dir, kit };
  const manifest = await depot.store.readManifest(
    kit.kit.components.find((c) => c.name === component)?.manifest as Digest,
  );
  const fileAt = (p: string): Digest => {
    const e = manifest.entries.find((x) => x.path === p);
    if (e?.type !== 'file' || !e.digest)
      throw new KitError(`kit ${name}/${kit.kit.version}: its ${component} component has no file ${p}`);
    return e.digest as Digest;
  };
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    for (const [file, p] of [
      ['vmlinuz', vmlinuz],
      ['initrd.img', initrd],
    ] as const) {
      const content = await depot.store.readObject(fileAt(p)); // verified against its digest
      fs.writeFileSync(
        path.join(tmp, file),
        file === 'initrd.img' && site ? withArchive(content, site.cpio) : content,
        {
          mode: 0o644,
        },
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
