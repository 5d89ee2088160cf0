// Step 4, before anything changes: resolve the image(s), find and select the drives, read what
// they hold, and plan every partition and file system. Everything that can be wrong with the
// input (an unknown image, a selector choosing nothing, a drive too small, encryption this kernel
// cannot do, an image that cannot boot) fails here, with no drive touched.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImageServerClient } from '../image/transfer/client.ts';
import type { Digest } from '../image/model/digest.ts';
import { findBootInfo, grubInstallOf } from '../storage/bootloader.ts';
import { readDriveContents } from '../storage/contents.ts';
import { listDrives, selectDrives, describeDrive } from '../storage/drives.ts';
import { normalizeLayout } from '../storage/layout.ts';
import { usageByMountPoint } from '../storage/partitions.ts';
import { checkEncryptionSupport } from '../storage/apply.ts';
import { planStorage } from '../storage/plan.ts';
import type { InstallContext } from './context.ts';
import { hookEnv } from './load-configuration.ts';
import { preflight } from './preflight.ts';

export async function resolveImages(ctx: InstallContext): Promise<void> {
  const config = ctx.facts.config!;
  const address = ctx.opts.imageServer ?? config.imageServer;
  if (!address)
    throw new Error('no image server: the configuration has no `imageserver` file and --imageserver was not given');
  const client = new ImageServerClient(address, { tls: ctx.opts.tls, log: (l) => ctx.log.info(l) });
  ctx.facts.client = client;
  const load = async (name: string) => {
    const record = await client.getImage(name);
    const manifest = await client.getManifest(record.manifest as Digest);
    return { record, manifest };
  };
  ctx.facts.image = await load(config.imageName!);
  ctx.log.info(
    `image ${ctx.facts.image.record.name} (from '${config.imageName}'): ${ctx.facts.image.manifest.entries.length} entries`,
  );
  if (config.toolsImageName) {
    const tools = await load(config.toolsImageName);
    if (tools.record.name !== ctx.facts.image.record.name) {
      ctx.facts.tools = tools;
      ctx.log.info(`tools image ${tools.record.name}`);
    }
  }
}

export function detectFirmware(sysfs: string): 'uefi' | 'bios' {
  return fs.existsSync(path.join(sysfs, 'firmware', 'efi')) ? 'uefi' : 'bios';
}

export async function planStorageStep(ctx: InstallContext): Promise<void> {
  const { opts, facts } = ctx;
  const layout = facts.config!.layout!;
  const manifest = facts.image!.manifest;
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
  facts.drives = selected;
  ctx.log.info(
    `boot drive ${describeDrive(selected[0])}${selected.length > 1 ? `; data drives ${selected.slice(1).map(describeDrive).join(', ')}` : ''}`,
  );

  facts.contents = new Map();
  for (const d of selected) facts.contents.set(d.path, await readDriveContents(ctx.exec, d.path));

  const mountPoints = normalizeLayout(layout, firmware).map((f) => f.mountPoint);
  facts.plan = planStorage(
    { firmware, drives: selected, layout, usage: usageByMountPoint(manifest, mountPoints) },
    randomUUID,
  );

  facts.boot = findBootInfo(manifest);
  if (!facts.boot) throw new Error(`image ${facts.image!.record.name} has no kernel (/boot/vmlinuz-*): it cannot boot`);
  facts.grubInstall = grubInstallOf(manifest, firmware);
  if (!layout.UseKexec && !facts.grubInstall) {
    throw new Error(
      `image ${facts.image!.record.name} has no grub-install with ${firmware === 'bios' ? 'i386-pc' : 'x86_64-efi'} support and UseKexec is false: the installed system could not boot from its drive; add GRUB (grub-pc-bin or grub-efi-amd64-bin) to the image or set "UseKexec": true`,
    );
  }
  checkEncryptionSupport(facts.plan, opts.proc);
  await preflight(ctx, selected);
}
