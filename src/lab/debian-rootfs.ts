// Real Debian root file systems built with mmdebstrap: the demo image, and the input of round-trip
// tests, installs and benchmarks. Built once per machine and cached (CRADLE_CACHE, default
// /var/tmp/cradle-cache): building takes 20-90 s and needs Debian's archive.
//   - `minimal`: what an OS image must carry faithfully: setuid binaries (su, passwd), a capability
//     (ping), device nodes (mmdebstrap's root mode creates /dev), hard links, systemd's symlinks.
//   - `bootable`: the same plus a kernel, its initramfs and GRUB for BIOS and UEFI, so an install
//     can put a boot loader on the disk and a machine can boot what was installed.
//   - `demo`: the lab's demo OS: a kernel, systemd with systemd-networkd (bonds, VLANs and bridges
//     without extra packages), GRUB for BIOS and UEFI, cryptsetup for encrypted file systems, and
//     cradle-report.service, which reports in to the boot server on first boot. Documentation,
//     translations and drivers no server needs (graphics, sound, wireless, cameras) are left out
//     through dpkg's path-exclude, so it unpacks in seconds on an emulated machine.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildDirFor, cacheDir, placeBuilt } from '../util/build-cache.ts';

const SUITE = 'bookworm';
const MIRROR = process.env.CRADLE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

const BASE = ['iputils-ping', 'libcap2-bin', 'acl', 'systemd-sysv', 'ifupdown', 'netbase', 'iproute2'];
const DEMO_EXCLUDES = [
  '/usr/share/doc/*',
  '/usr/share/man/*',
  '/usr/share/info/*',
  '/usr/share/locale/*',
  '/usr/share/lintian/*',
  ...[
    'drivers/gpu',
    'drivers/media',
    'drivers/net/wireless',
    'drivers/infiniband',
    'drivers/staging',
    'drivers/iio',
    'drivers/bluetooth',
    'net/bluetooth',
    'net/wireless',
    'net/mac80211',
    'sound',
    'drivers/input/touchscreen',
    'drivers/hwmon',
    'drivers/isdn',
    'drivers/video/fbdev',
  ].map((d) => `/lib/modules/*/kernel/${d}/*`),
];
const demoFiles = path.join(import.meta.dirname, 'demo-os');
/** Bumped whenever the demo OS changes (its files in demo-os/, its packages): the cache is keyed by it. */
export const DEMO_VERSION = 3;

const FLAVOURS: Record<string, { dir: string; packages: string[]; extra?: string[] }> = {
  minimal: { dir: `debian-${SUITE}-rootfs`, packages: BASE },
  bootable: {
    dir: `debian-${SUITE}-bootable`,
    packages: [
      ...BASE,
      'linux-image-amd64',
      'grub-pc-bin',
      'grub-efi-amd64-bin',
      'grub2-common',
      'kexec-tools',
      'cryptsetup-bin',
      'cryptsetup',
      'e2fsprogs',
      'xfsprogs',
      'dosfstools',
    ],
  },
  demo: {
    dir: `debian-${SUITE}-demo-v${DEMO_VERSION}`,
    packages: [
      'systemd-sysv',
      'udev',
      'kmod',
      'iproute2',
      'netbase',
      'curl',
      'ca-certificates',
      'linux-image-amd64',
      'grub-pc-bin',
      'grub-efi-amd64-bin',
      'grub2-common',
      'cryptsetup-bin',
      'e2fsprogs',
      'dosfstools',
      'procps',
      'less',
    ],
    extra: [
      ...DEMO_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
      `--customize-hook=copy-in ${demoFiles}/cradle-report /usr/local/sbin`,
      `--customize-hook=copy-in ${demoFiles}/cradle-report.service /etc/systemd/system`,
      '--customize-hook=chroot "$1" systemctl enable cradle-report.service systemd-networkd.service',
      // A console login for whoever watches the lab: root without a password, on the serial line only.
      '--customize-hook=chroot "$1" passwd -d root',
      '--customize-hook=echo demo > "$1/etc/hostname"',
    ],
  },
};

/** Bumped whenever the head node's demo OS changes beyond the demo OS's own changes. */
const HEAD_VERSION = 2;

/**
 * The demo OS for a head node: the demo OS with LVM (its root is a logical volume, which the
 * initramfs assembles), PostgreSQL (the machine database it serves from after its first boot) and
 * Debian's iPXE binaries (what its boot server hands compute nodes' firmware over TFTP).
 */
FLAVOURS.head = {
  dir: `debian-${SUITE}-head-v${DEMO_VERSION}.${HEAD_VERSION}`,
  packages: [...FLAVOURS.demo.packages, 'lvm2', 'postgresql', 'ipxe'],
  extra: FLAVOURS.demo.extra,
};

export type RootfsFlavour = 'minimal' | 'bootable' | 'demo' | 'head';

export function debianRootfs(flavour: RootfsFlavour = 'minimal'): string {
  const { dir: name, packages, extra = [] } = FLAVOURS[flavour];
  const dir = path.join(cacheDir, name);
  if (fs.existsSync(path.join(dir, 'etc', 'debian_version'))) return dir;
  const tmp = buildDirFor(dir);
  execFileSync(
    'mmdebstrap',
    ['--variant=minbase', `--include=${packages.join(',')}`, '--mode=root', '--quiet', ...extra, SUITE, tmp, MIRROR],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return placeBuilt(tmp, dir, 'etc/debian_version');
}

if (import.meta.main) console.log(debianRootfs((process.argv[2] as RootfsFlavour | undefined) ?? 'minimal'));
