// Real Debian root file systems built with mmdebstrap: the demo image, and the input of round-trip
// tests, installs and benchmarks. Built once per machine and cached (CRADLE_CACHE, default
// /var/tmp/cradle-cache): building takes 20-90 s and needs Debian's archive.
//   - `minimal`: what an OS image must carry faithfully: setuid binaries (su, passwd), a capability
//     (ping), device nodes (mmdebstrap's root mode creates /dev), hard links, systemd's symlinks.
//   - `bootable`: the same plus a kernel, its initramfs and GRUB for BIOS and UEFI, so an install
//     can put a boot loader on the disk and a machine can boot what was installed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const cacheDir = process.env.CRADLE_CACHE ?? '/var/tmp/cradle-cache';
const SUITE = 'bookworm';
const MIRROR = process.env.CRADLE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

const BASE = ['iputils-ping', 'libcap2-bin', 'acl', 'systemd-sysv', 'ifupdown', 'netbase', 'iproute2'];
const FLAVOURS = {
  minimal: { dir: `debian-${SUITE}-rootfs`, packages: BASE },
  bootable: { dir: `debian-${SUITE}-bootable`, packages: [...BASE, 'linux-image-amd64', 'grub-pc-bin', 'grub-efi-amd64-bin', 'grub2-common', 'kexec-tools', 'cryptsetup-bin', 'cryptsetup', 'e2fsprogs', 'xfsprogs', 'dosfstools'] },
} as const;

export type RootfsFlavour = keyof typeof FLAVOURS;

export function debianRootfs(flavour: RootfsFlavour = 'minimal'): string {
  const { dir: name, packages } = FLAVOURS[flavour];
  const dir = path.join(cacheDir, name);
  if (fs.existsSync(path.join(dir, 'etc', 'debian_version'))) return dir;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  execFileSync('mmdebstrap', ['--variant=minbase', `--include=${packages.join(',')}`, '--mode=root', '--quiet', SUITE, tmp, MIRROR], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    fs.renameSync(tmp, dir);
  } catch (err) {
    // Another process finished first: use its tree.
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, 'etc', 'debian_version'))) throw err;
  }
  return dir;
}

if (import.meta.main) console.log(debianRootfs((process.argv[2] as RootfsFlavour | undefined) ?? 'minimal'));
