// Steps 3 and 4, before anything changes: resolve the image(s), find and select the drives, read
// what they hold, and plan every partition and file system. Everything that can be wrong with the
// input (an unknown image, a selector choosing nothing, a drive too small, encryption this kernel
// cannot do, an image that cannot boot) fails here, with no drive touched.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImageServerClient, imageServerUrl } from '../image/transfer/client.ts';
import type { Digest } from '../image/model/digest.ts';
import { findBootInfo, grubInstallOf } from '../storage/bootloader.ts';
import { readDriveContents } from '../storage/contents.ts';
import { listDrives, selectDrives, describeDrive } from '../storage/drives.ts';
import { normalizeLayout } from '../storage/layout.ts';
import { usageByMountPoint } from '../storage/partitions.ts';
import { checkEncryptionSupport } from '../storage/apply.ts';
import { planStorage } from '../storage/plan.ts';
import type { ImageRecord } from '../image/store/store.ts';
import type { Manifest } from '../image/model/manifest.ts';
import type { BootInfo } from '../storage/bootloader.ts';
import type { DriveContents } from '../storage/contents.ts';
import type { Drive } from '../storage/drives.ts';
import type { StoragePlan } from '../storage/plan.ts';
import type { Configuration, InstallContext } from './context.ts';
import type { EthernetInterface } from './interfaces.ts';
import { hookEnv } from './load-configuration.ts';
import { preflight } from './preflight.ts';

/** An image as the image server described it: its record and its (verified) manifest. */
export interface ResolvedImage {
  record: ImageRecord;
  manifest: Manifest;
}

/** The images of this install, and the client that fetches their objects (closed by install()). */
export interface Images {
  client: ImageServerClient;
  image: ResolvedImage;
  /** A tools image other than the target (tools-imagename). */
  tools?: ResolvedImage;
}

export async function resolveImages(ctx: InstallContext, config: Configuration): Promise<Images> {
  const given = ctx.opts.imageServer ?? config.imageServer;
  if (!given)
    throw new Error(
      'no image server: the configuration has no `imageserver` file and --image-server-hostname was not given',
    );
  const address = imageServerUrl(given, ctx.opts.imageServerPort).href;
  const client = new ImageServerClient(address, { tls: ctx.opts.tls, log: (l) => ctx.log.info(l) });
  try {
    const load = async (name: string): Promise<ResolvedImage> => {
      const record = await client.getImage(name);
      const manifest = await client.getManifest(record.manifest as Digest);
      return { record, manifest };
    };
    if (!config.imageName) throw new Error('no image to install: the configuration has no `imagename` file');
    const image = await load(config.imageName);
    ctx.record.imageName = image.record.name;
    ctx.log.info(`image ${image.record.name} (from '${config.imageName}'): ${image.manifest.entries.length} entries`);
    if (!config.toolsImageName) return { client, image };
    const tools = await load(config.toolsImageName);
    if (tools.record.name === image.record.name) return { client, image };
    ctx.log.info(`tools image ${tools.record.name}`);
    return { client, image, tools };
  } catch (err) {
    client.close();
    throw err;
  }
}

export function detectFirmware(sysfs: string): 'uefi' | 'bios' {
  return fs.existsSync(path.join(sysfs, 'firmware', 'efi')) ? 'uefi' : 'bios';
}

/** Where the image goes and how it boots: everything later steps need from step 4. */
export interface InstallPlan {
  /** The drives selected, boot drive first, and what each holds now. */
  drives: Drive[];
  contents: Map<string, DriveContents>;
  storage: StoragePlan;
  boot: BootInfo;
  /** The image's grub-install, when it has one for this firmware. */
  grubInstall?: string;
}

/**
 * Step 4: selects the drives, reads what they hold, plans every partition and file system, and
 * checks everything that can be checked before a drive changes (preflight.ts).
 */
export async function planInstall(
  ctx: InstallContext,
  config: Configuration,
  image: ResolvedImage,
  interfaces: EthernetInterface[],
  /** The tools image (tools-imagename), whose programs partition, encrypt and make file systems. */
  tools: ResolvedImage = image,
): Promise<InstallPlan> {
  const { opts } = ctx;
  const layout = config.layout;
  if (!layout) throw new Error('no storage layout: the configuration has no `storage-layout.json`');
  const manifest = image.manifest;
  const firmware = opts.firmware ?? detectFirmware(opts.sysfs);
  const { drives, skipped } = listDrives({ sysfs: opts.sysfs, dev: opts.dev });
  for (const s of skipped) ctx.log.info(`not a candidate drive: ${s}`);
  if (!drives.length)
    throw new Error(
      `no usable drive found in ${opts.sysfs}/class/block${skipped.length ? ` (skipped: ${skipped.join('; ')})` : ''}`,
    );
  let selected = drives;
  if (opts.driveSelector) {
    const { stdout } = await ctx.exec.read(
      opts.driveSelector,
      drives.map((d) => d.name),
      { env: { ...hookEnv(), ...process.env } },
    );
    selected = selectDrives(drives, stdout, opts.driveSelector);
  }
  ctx.record.drives = selected;
  ctx.log.info(
    `boot drive ${describeDrive(selected[0])}${selected.length > 1 ? `; data drives ${selected.slice(1).map(describeDrive).join(', ')}` : ''}`,
  );

  const contents = new Map<string, DriveContents>();
  for (const d of selected) contents.set(d.path, await readDriveContents(ctx.exec, d.path));

  const mountPoints = normalizeLayout(layout, firmware).map((f) => f.mountPoint);
  const storage = planStorage(
    { firmware, drives: selected, layout, usage: usageByMountPoint(manifest, mountPoints) },
    randomUUID,
  );
  ctx.record.plan = storage;

  const boot = findBootInfo(manifest);
  if (!boot) throw new Error(`image ${image.record.name} has no kernel (/boot/vmlinuz-*): it cannot boot`);
  const grubInstall = grubInstallOf(manifest, firmware);
  if (!layout.UseKexec && !grubInstall) {
    throw new Error(
      `image ${image.record.name} has no grub-install with ${firmware === 'bios' ? 'i386-pc' : 'x86_64-efi'} support and UseKexec is false: the installed system could not boot from its drive; add GRUB (grub-pc-bin or grub-efi-amd64-bin) to the image or set "UseKexec": true`,
    );
  }
  checkEncryptionSupport(storage, opts.proc);
  await preflight(ctx, {
    storage,
    manifest,
    tools: tools.manifest,
    useKexec: layout.UseKexec,
    machine: config.machine,
    interfaces,
    drives: selected,
  });
  return { drives: selected, contents, storage, boot, ...(grubInstall ? { grubInstall } : {}) };
}
