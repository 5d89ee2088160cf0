// Making the installed system bootable: the kernel and initrd the image carries (found in its
// manifest, so a missing kernel or GRUB is an error before any drive is touched), a grub.cfg we
// write ourselves, and the image's own grub-install run inside the new root (BIOS: into the BIOS
// boot partition; UEFI: the removable-media path on the ESP, which needs no NVRAM entry).
import path from 'node:path';
import type { Manifest } from '../image/model/manifest.ts';
import type { Executor } from '../system/executor.ts';

export interface BootInfo {
  /** Paths in the image, e.g. /boot/vmlinuz-6.1.0-50-amd64. */
  kernel: string;
  initrd?: string;
  version: string;
}

export class BootInfoError extends Error {
  override name = 'BootInfoError';
}

function versionCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** The newest kernel in /boot (Debian keeps old ones) and its initrd. */
export function findBootInfo(manifest: Manifest): BootInfo | undefined {
  const names = new Set(
    manifest.entries
      .filter((e) => e.path.startsWith('boot/') && !e.path.slice(5).includes('/'))
      .map((e) => e.path.slice(5)),
  );
  const versions = [...names]
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
    .sort(versionCompare);
  const version = versions.at(-1);
  if (version === undefined) return undefined;
  const initrd = [`initrd.img-${version}`, `initramfs-${version}.img`].find((n) => names.has(n));
  return { kernel: `/boot/vmlinuz-${version}`, version, ...(initrd ? { initrd: `/boot/${initrd}` } : {}) };
}

/** The image's grub-install and the GRUB platform files it needs for this firmware, if present. */
export function grubInstallOf(manifest: Manifest, firmware: 'uefi' | 'bios'): string | undefined {
  const paths = new Set(manifest.entries.map((e) => e.path));
  const program = ['usr/sbin/grub-install', 'sbin/grub-install'].find((p) => paths.has(p));
  const platform = `usr/lib/grub/${firmware === 'bios' ? 'i386-pc' : 'x86_64-efi'}`;
  return program && paths.has(platform) ? `/${program}` : undefined;
}

export interface GrubConfigInput {
  boot: BootInfo;
  /** UUID of the file system holding /boot (the root, or a separate /boot). */
  bootFsUuid: string;
  /** /boot is its own file system, so paths in grub.cfg are relative to it. */
  separateBoot: boolean;
  rootUuid: string;
  kernelOptions: string;
}

/** GRUB on the serial line and the screen at once: a lab's console and a data centre's BMC both see it. */
export const GRUB_SERIAL_CONSOLE = [
  'serial --unit=0 --speed=115200',
  'terminal_input console serial',
  'terminal_output console serial',
];

export const DEFAULT_KERNEL_OPTIONS = 'ro console=tty0 console=ttyS0,115200n8';

/** grub.cfg: serial and screen console, find /boot by UUID, boot the image's newest kernel. */
export function renderGrubConfig(c: GrubConfigInput): string {
  const rel = (p: string) => (c.separateBoot ? p.replace(/^\/boot/, '') : p);
  return [
    '# /boot/grub/grub.cfg: written by the Cradle installer',
    ...GRUB_SERIAL_CONSOLE,
    'set timeout=1',
    'insmod part_gpt',
    'insmod ext2',
    'insmod xfs',
    'insmod fat',
    `search --no-floppy --fs-uuid --set=root ${c.bootFsUuid}`,
    `menuentry 'Linux ${c.boot.version}' {`,
    `\tlinux ${rel(c.boot.kernel)} root=UUID=${c.rootUuid} ${c.kernelOptions}`,
    ...(c.boot.initrd ? [`\tinitrd ${rel(c.boot.initrd)}`] : []),
    '}',
    '',
  ].join('\n');
}

/** Runs the image's grub-install inside the new root (its /dev, /proc and /sys are bound in). */
export async function installGrub(
  exec: Executor,
  root: string,
  firmware: 'uefi' | 'bios',
  bootDrive: string,
  espMountPoint = '/boot/efi',
): Promise<void> {
  const args =
    firmware === 'bios'
      ? ['--target=i386-pc', '--boot-directory=/boot', bootDrive]
      : [
          '--target=x86_64-efi',
          `--efi-directory=${espMountPoint}`,
          '--boot-directory=/boot',
          '--removable',
          '--no-nvram',
        ];
  await exec.changeIn(root, 'grub-install', args);
}

/** The UEFI boot entry the installer makes for the system it installed. */
export const BOOT_ENTRY_LABEL = 'Cradle installed system';

/** `efibootmgr` output: Boot#### entries with their labels. */
export function parseBootEntries(output: string): { num: string; label: string }[] {
  const out: { num: string; label: string }[] = [];
  for (const line of output.split('\n')) {
    const m = /^Boot([0-9A-Fa-f]{4})\*?\s+(.*?)(\t.*)?$/.exec(line);
    if (m) out.push({ num: m[1].toUpperCase(), label: m[2].trim() });
  }
  return out;
}

/**
 * Makes the next boot, once, start the installed system: a UEFI entry for the ESP's removable-path
 * loader, named in BootNext. The firmware's order keeps the network first (so a machine can be
 * reborn), and without this, iPXE's `exit` falls through every network option the firmware has
 * (PXE and HTTP, IPv4 and IPv6) before it reaches the disk. An entry from an earlier install is
 * replaced, not piled up.
 */
export async function bootNextToInstalledSystem(exec: Executor, drive: string, espPartition: string): Promise<string> {
  const number = /(\d+)$/.exec(espPartition)?.[1];
  if (!number) throw new Error(`cannot tell the partition number of ${espPartition}`);
  for (const e of parseBootEntries((await exec.read('efibootmgr', [])).stdout).filter(
    (x) => x.label === BOOT_ENTRY_LABEL,
  )) {
    await exec.change('efibootmgr', ['--quiet', '--bootnum', e.num, '--delete-bootnum']);
  }
  const created = await exec.change('efibootmgr', [
    '--create-only',
    '--disk',
    drive,
    '--part',
    number,
    '--label',
    BOOT_ENTRY_LABEL,
    '--loader',
    '\\EFI\\BOOT\\BOOTX64.EFI',
  ]);
  if (exec.dryRun) return 'Boot####';
  const entry = parseBootEntries(created.stdout).find((x) => x.label === BOOT_ENTRY_LABEL);
  if (!entry) throw new Error('efibootmgr made no entry for the installed system');
  await exec.change('efibootmgr', ['--quiet', '--bootnext', entry.num]);
  return `Boot${entry.num}`;
}

/** Loads the installed kernel for `kexec -e` after the drives are unmounted. */
export async function kexecLoad(exec: Executor, root: string, boot: BootInfo, cmdline: string): Promise<void> {
  const file = (p: string) => path.join(root, p);
  await exec.change('kexec', [
    '--load',
    file(boot.kernel),
    ...(boot.initrd ? [`--initrd=${file(boot.initrd)}`] : []),
    `--append=${cmdline}`,
  ]);
}
