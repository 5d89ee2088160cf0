// The tiny test OS: a bootable system of a few hundred files made from the build host's kernel,
// busybox and GRUB, for VM tests where a full Debian would spend minutes unpacking under emulation.
// It boots like a real image (GRUB or kexec, an initrd that finds root by UUID), brings up the
// network the installer wrote (busybox ifup reads /etc/network/interfaces), mounts /etc/fstab and
// reports in to the boot server named in /etc/cradle/boot-server.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { cpioNewc } from '../initramfs/cpio.ts';
import {
  busyboxEntries,
  inArchiveOrder,
  MERGED_USR,
  text,
  usrPath,
  type PlannedEntry,
} from '../initramfs/installer-image.ts';
import { modulePathInTree, resolveLibraries, resolveModules } from '../initramfs/resolve.ts';
import { busyboxApplets, kernelVersionOf, materialise, newestKernel } from '../initramfs/build.ts';
import { buildDirFor, cacheDir, placeBuilt, pruneCache } from '../util/build-cache.ts';

/** Printed on the console once the tiny OS is up and has reported in (or failed to). */
export const TINY_OS_MARKER = 'CRADLE-TINY-OS-UP';
export const TINY_OS_VERSION = 4;
const VERSION = TINY_OS_VERSION;

/** Drivers the initrd needs to find and mount root. */
const ROOT_MODULES = [
  'crc32c_generic',
  'virtio_pci',
  'virtio_blk',
  'virtio_scsi',
  'sd_mod',
  'ahci',
  'nvme',
  'ext4',
  'xfs',
];
/** Drivers the running system loads: NICs and what a network configuration may ask for. */
const SYSTEM_MODULES = ['virtio_net', 'e1000', 'e1000e', 'af_packet', '8021q', 'bridge'];

const INITRD_INIT = `#!/bin/sh
# The tiny OS's initrd: load the disk drivers, find root by the UUID on the command line, switch to it.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules-order); do
  # A driver for hardware this machine lacks (or a CPU feature) fails with ENODEV: say so only for others.
  err=$(insmod "/usr/lib/modules/$(uname -r)/$m" 2>&1) || case "$err" in *"No such device"*|*"File exists"*) ;; *) echo "tiny-os: $err";; esac
done
root=
for a in $(cat /proc/cmdline); do case "$a" in root=*) root="\${a#root=}";; esac; done
i=0
until dev=$(findfs "$root" 2>/dev/null); do
  i=$((i + 1)); [ $i -gt 150 ] && { echo "tiny-os: no root file system $root"; cat /proc/partitions; exec sh; }
  usleep 200000
done
mkdir -p /newroot
mount -o ro "$dev" /newroot || { echo "tiny-os: cannot mount $dev"; exec sh; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
`;

const SYSTEM_INIT = `#!/bin/sh
# The tiny OS's init: the network from /etc/network/interfaces, /etc/fstab, then report in.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -o remount,rw /
mkdir -p /dev/pts /run; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run; mkdir -p /run/network
for m in $(cat /etc/modules-order); do
  # A driver for hardware this machine lacks (or a CPU feature) fails with ENODEV: say so only for others.
  err=$(insmod "/usr/lib/modules/$(uname -r)/$m" 2>&1) || case "$err" in *"No such device"*|*"File exists"*) ;; *) echo "tiny-os: $err";; esac
done
[ -s /etc/hostname ] && hostname -F /etc/hostname
mount -a
ifup -a
echo "tiny-os: up $(cut -d' ' -f1 /proc/uptime) s as $(hostname), root $(grep ' / ' /proc/mounts | cut -d' ' -f1)"
url=$(cat /etc/cradle/boot-server 2>/dev/null)
if [ -n "$url" ]; then
  for n in /sys/class/net/*; do
    mac=$(cat "$n/address"); [ "$mac" = 00:00:00:00:00:00 ] && continue
    if wget -q -O - --header 'Content-Type: application/json' --post-data "{\\"mac\\":\\"$mac\\"}" "$url/api/v1/report"; then
      echo; echo "tiny-os: reported in to $url as $mac"; break
    fi
  done
fi
echo ${TINY_OS_MARKER}
while :; do setsid cttyhack sh -l; sleep 1; done
`;

function moduleEntries(
  kernelVersion: string,
  modules: { path: string }[],
  under: string,
): { entries: PlannedEntry[]; order: string } {
  const entries: PlannedEntry[] = [];
  const order: string[] = [];
  for (const m of modules) {
    const rel = modulePathInTree(kernelVersion, m.path);
    entries.push({
      type: 'file',
      path: `${under}/${kernelVersion}/${rel}`,
      from: m.path,
      mode: 0o644,
      category: 'kernel modules',
    });
    order.push(rel);
  }
  return { entries, order: `${order.join('\n')}\n` };
}

/** Writes planned entries as a directory tree (parents are created as needed). */
function writeTree(root: string, entries: PlannedEntry[]): void {
  for (const e of entries) {
    const p = path.join(root, e.path);
    // Never write through a link (an applet's link to busybox): a plan naming a path twice is a bug.
    if (e.type !== 'dir' && fs.lstatSync(p, { throwIfNoEntry: false }))
      throw new Error(`tiny OS: ${e.path} is planned twice`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (e.type === 'dir') fs.mkdirSync(p, { recursive: true, mode: e.mode ?? 0o755 });
    else if (e.type === 'symlink') fs.symlinkSync(e.target, p);
    else if (e.type === 'file') {
      if ('from' in e) fs.copyFileSync(e.from, p);
      else fs.writeFileSync(p, e.data);
      fs.chmodSync(p, e.mode);
    }
  }
}

async function initrd(kernelVersion: string, applets: string[]): Promise<Buffer> {
  const { entries: mods, order } = moduleEntries(
    kernelVersion,
    await resolveModules(kernelVersion, ROOT_MODULES),
    '/usr/lib/modules',
  );
  const planned: PlannedEntry[] = [
    ...MERGED_USR,
    ...['/proc', '/sys', '/dev', '/etc', '/usr/lib/modules'].map((p): PlannedEntry => ({ type: 'dir', path: p })),
    { type: 'char', path: '/dev/console', major: 5, minor: 1, mode: 0o600 },
    ...busyboxEntries('/usr/bin/busybox', applets, new Set()),
    { type: 'file', path: '/init', data: text(INITRD_INIT), mode: 0o755, category: 'configuration' },
    { type: 'file', path: '/etc/modules-order', data: text(order), mode: 0o644, category: 'configuration' },
    ...mods,
  ];
  return zlib.zstdCompressSync(Buffer.concat(cpioNewc(materialise(inArchiveOrder(planned)).entries)));
}

/** The tiny OS's root directory, built once and cached. */
export async function tinyOs(kernel = newestKernel()): Promise<string> {
  const kernelVersion = kernelVersionOf(kernel);
  const dir = path.join(cacheDir, `cradle-tiny-os-v${VERSION}-${kernelVersion}`);
  if (fs.existsSync(path.join(dir, 'usr/sbin/init'))) return dir;
  const tmp = buildDirFor(dir);
  const grubTools = ['/usr/sbin/grub-install', '/usr/sbin/grub-probe'];
  const libs = await resolveLibraries(grubTools);
  const applets = busyboxApplets();
  const { entries: mods, order } = moduleEntries(
    kernelVersion,
    await resolveModules(kernelVersion, SYSTEM_MODULES),
    '/usr/lib/modules',
  );
  const entries: PlannedEntry[] = [
    ...MERGED_USR,
    ...[
      '/proc',
      '/sys',
      '/dev',
      '/run',
      '/tmp',
      '/root',
      '/boot',
      '/etc/network/if-up.d',
      '/etc/network/if-pre-up.d',
      '/etc/network/if-down.d',
      '/etc/network/if-post-down.d',
      '/var/log',
    ].map((p): PlannedEntry => ({ type: 'dir', path: p })),
    { type: 'symlink', path: '/var/run', target: '../run' },
    // /sbin/init is ours, not busybox's.
    ...busyboxEntries('/usr/bin/busybox', applets, new Set(['init'])),
    { type: 'file', path: '/usr/sbin/init', data: text(SYSTEM_INIT), mode: 0o755, category: 'configuration' },
    { type: 'file', path: '/etc/modules-order', data: text(order), mode: 0o644, category: 'configuration' },
    {
      type: 'file',
      path: '/etc/passwd',
      data: text('root:x:0:0:root:/root:/bin/sh\n'),
      mode: 0o644,
      category: 'configuration',
    },
    { type: 'file', path: '/etc/group', data: text('root:x:0:\n'), mode: 0o644, category: 'configuration' },
    { type: 'file', path: '/etc/hostname', data: text('tiny\n'), mode: 0o644, category: 'configuration' },
    {
      type: 'file',
      path: '/etc/network/interfaces',
      data: text('auto lo\niface lo inet loopback\n'),
      mode: 0o644,
      category: 'configuration',
    },
    {
      type: 'file',
      path: '/etc/os-release',
      data: text(`NAME="Cradle tiny test OS"\nID=cradle-tiny\nVERSION_ID=${VERSION}\n`),
      mode: 0o644,
      category: 'configuration',
    },
    { type: 'file', path: `/boot/vmlinuz-${kernelVersion}`, from: kernel, mode: 0o644, category: 'configuration' },
    {
      type: 'file',
      path: `/boot/initrd.img-${kernelVersion}`,
      data: await initrd(kernelVersion, applets),
      mode: 0o644,
      category: 'configuration',
    },
    // The image's own grub-install (the installer runs it in the new root), for BIOS machines.
    ...grubTools.map(
      (t): PlannedEntry => ({ type: 'file', path: usrPath(t), from: t, mode: 0o755, category: 'tools' }),
    ),
    ...libs.map((l): PlannedEntry => ({ type: 'file', path: usrPath(l), from: l, mode: 0o755, category: 'libraries' })),
    ...fs.readdirSync('/usr/lib/grub/i386-pc').map(
      (n): PlannedEntry => ({
        type: 'file',
        path: `/usr/lib/grub/i386-pc/${n}`,
        from: `/usr/lib/grub/i386-pc/${n}`,
        mode: 0o644,
        category: 'tools',
      }),
    ),
    ...mods,
  ];
  writeTree(tmp, entries);
  fs.chmodSync(path.join(tmp, 'tmp'), 0o1777);
  placeBuilt(tmp, dir, 'usr/sbin/init');
  pruneCache('cradle-tiny-os-');
  return dir;
}

if (import.meta.main) console.log(await tinyOs());
