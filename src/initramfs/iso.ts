// The installer image as a hybrid ISO (BIOS and UEFI, CD or USB stick, a BMC's virtual media):
// GRUB from the build host boots the same kernel and initramfs as the network does.
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../system/run.ts';

export function isoGrubConfig(kernelArgs: string): string {
  return [
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    'set timeout=3',
    "menuentry 'Cradle installer' {",
    `\tlinux /vmlinuz ${kernelArgs}`.trimEnd(),
    '\tinitrd /initrd.img',
    '}',
    '',
  ].join('\n');
}

/** Writes OUT/installer.iso from OUT/vmlinuz and OUT/initrd.img; returns its path. */
export async function buildIso(
  out: string,
  work: string,
  kernelArgs = 'console=tty0 console=ttyS0,115200n8',
): Promise<string> {
  const tree = path.join(work, 'iso');
  fs.mkdirSync(path.join(tree, 'boot/grub'), { recursive: true });
  for (const f of ['vmlinuz', 'initrd.img']) fs.copyFileSync(path.join(out, f), path.join(tree, f));
  fs.writeFileSync(path.join(tree, 'boot/grub/grub.cfg'), isoGrubConfig(kernelArgs));
  const iso = path.join(out, 'installer.iso');
  const tmp = `${iso}.tmp-${process.pid}`;
  try {
    // grub-mkrescue needs grub-pc-bin and grub-efi-amd64-bin for the two firmware kinds, xorriso and mtools.
    await run('grub-mkrescue', ['--quiet', '-o', tmp, tree]);
    fs.renameSync(tmp, iso);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return iso;
}
