// Making the head node bootable: the image's own grub-install run inside the new system (BIOS:
// into the BIOS boot partition; UEFI: the removable-media path on the ESP), and a grub.cfg we
// write ourselves: /boot is a plain partition found by its label (GRUB reads no LVM), the root a
// logical volume the OS's initramfs assembles (its lvm2 hook activates the volume group that
// root= names). A kernel or GRUB missing from the image is refused before the boot loader is
// touched.
import fs from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../image/model/manifest.ts';
import {
  DEFAULT_KERNEL_OPTIONS,
  findBootInfo,
  GRUB_SERIAL_CONSOLE,
  grubInstallOf,
  installGrub,
  type BootInfo,
} from '../storage/bootloader.ts';
import type { Executor } from '../system/executor.ts';
import { bindMounts, unbindMounts } from '../system/mounts.ts';
import { AnswersError } from './answers.ts';
import type { HeadLayout } from './layout.ts';

/** The root logical volume as the initramfs finds it. */
export const rootDevice = (l: HeadLayout) => `/dev/mapper/${l.volumeGroup.name}-root`;

export function headGrubConfig(boot: BootInfo, layout: HeadLayout, kernelOptions = DEFAULT_KERNEL_OPTIONS): string {
  const rel = (p: string) => p.replace(/^\/boot/, '');
  return [
    '# /boot/grub/grub.cfg: written by cradle setup',
    ...GRUB_SERIAL_CONSOLE,
    'set timeout=1',
    'insmod part_gpt',
    'insmod ext2',
    'search --no-floppy --label boot --set=root',
    `menuentry 'Cradle head node, Linux ${boot.version}' {`,
    `\tlinux ${rel(boot.kernel)} root=${rootDevice(layout)} ${kernelOptions}`,
    ...(boot.initrd ? [`\tinitrd ${rel(boot.initrd)}`] : []),
    '}',
    '',
  ].join('\n');
}

/** What the image needs to boot this layout; the reason when it cannot. */
export function bootInfoFor(manifest: Manifest, firmware: 'uefi' | 'bios'): BootInfo {
  const boot = findBootInfo(manifest);
  if (!boot) throw new AnswersError("the OS kit's image has no kernel in /boot: a head node boots its own kernel");
  if (!grubInstallOf(manifest, firmware))
    throw new AnswersError(
      `the OS kit's image has no grub-install for ${firmware.toUpperCase()} (Debian: grub-${firmware === 'bios' ? 'pc' : 'efi-amd64'}-bin)`,
    );
  const paths = new Set(manifest.entries.map((e) => e.path));
  if (!['usr/sbin/lvm', 'sbin/lvm'].some((p) => paths.has(p)))
    throw new AnswersError(
      "the OS kit's image has no lvm (Debian: lvm2): its initramfs could not find the root volume",
    );
  return boot;
}

export async function makeHeadBootable(
  exec: Executor,
  layout: HeadLayout,
  target: string,
  manifest: Manifest,
): Promise<void> {
  const boot = bootInfoFor(manifest, layout.firmware);
  await bindMounts(exec, target);
  try {
    await installGrub(exec, target, layout.firmware, layout.disks[0].path);
  } finally {
    await unbindMounts(exec, target);
  }
  await exec.act(`write ${target}/boot/grub/grub.cfg`, () => {
    fs.mkdirSync(path.join(target, 'boot/grub'), { recursive: true });
    fs.writeFileSync(path.join(target, 'boot/grub/grub.cfg'), headGrubConfig(boot, layout));
  });
}
