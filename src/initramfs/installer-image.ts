// What goes into the installer image's two stages, planned from facts about the build host (pure:
// build.ts gathers the facts and writes the archives; installer-files.ts says why two). The layout
// is merged-/usr like Debian's: /bin, /sbin, /lib and /lib64 are links into /usr, so a program or
// library lands at one path whatever spelling ldd or `command -v` reported.
import path from 'node:path';
import type { Bundle } from './bundle.ts';
import { SECOND_STAGE_DIGEST, SECOND_STAGE_MOUNT } from './installer-files.ts';
import { modulePathInTree, type ModuleFile } from './resolve.ts';

/** Kernel modules the image carries: drivers for common servers and VMs, and what the installer uses. */
export const IMAGE_MODULES = {
  // The second stage is a squashfs in a file: /init mounts it through a loop device first.
  secondStage: ['loop', 'squashfs'],
  // Loaded by /init before anything else: kmod honours softdeps, but loading the checksum drivers
  // first also keeps ext4 and xfs from falling back to a slower implementation.
  early: [
    'crc32c_generic',
    'af_packet',
    'dm_crypt',
    'ext4',
    'xfs',
    'vfat',
    // The head-node ISO's medium (a CD, or the ISO written to a USB stick).
    'isofs',
    'nls_cp437',
    'nls_ascii',
    'nls_utf8',
  ],
  // Loaded when the hardware is found (coldplug by modalias).
  storage: [
    'virtio_pci',
    'virtio_blk',
    'virtio_scsi',
    'sd_mod',
    'sr_mod',
    'nvme',
    'ahci',
    'ata_piix',
    'mpt3sas',
    'megaraid_sas',
    'usb_storage',
    'uas',
    'xhci_pci',
    'ehci_pci',
  ],
  network: ['virtio_net', 'e1000', 'e1000e', 'igb', 'ixgbe', 'i40e', 'ice', 'bnxt_en', 'tg3', 'r8169', 'mlx5_core'],
  // Loaded when asked for (`ip link add … type bond` runs the kernel's modprobe helper).
  onDemand: ['8021q', 'bonding', 'bridge', 'xts', 'efivarfs'],
  // Loaded by coldplug when the CPU has the instructions (its modalias lists them).
  cpu: ['crc32c_intel', 'aesni_intel'],
} as const;

export const ALL_IMAGE_MODULES: string[] = Object.values(IMAGE_MODULES).flat();

/** Programs the installer runs from the image; busybox provides the rest of the shell's tools. */
export const IMAGE_TOOLS = [
  'sfdisk',
  'partx',
  'blkdiscard',
  'blockdev',
  'blkid',
  'losetup',
  'mount',
  'umount',
  'wipefs',
  'hwclock',
  'cryptsetup',
  'kexec',
  'efibootmgr',
  'ip',
  'bridge',
  'mkfs.ext4',
  'mkfs.xfs',
  'mkfs.vfat',
  'tar',
  'kmod',
  // The head node's setup: its volume group, and swap in it.
  'lvm',
  'mkswap',
];

/** Names kmod answers to (it is one binary). */
const KMOD_NAMES = ['modprobe', 'insmod', 'rmmod', 'lsmod', 'modinfo', 'depmod'];

export type Category =
  | 'node runtime'
  | 'installer'
  | 'libraries'
  | 'kernel modules'
  | 'tools'
  | 'busybox'
  | 'configuration'
  | 'layout';

export type PlannedEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'file'; path: string; from: string; mode: number; category: Category }
  | { type: 'file'; path: string; data: Uint8Array; mode: number; category: Category }
  | { type: 'char'; path: string; major: number; minor: number; mode: number };

export interface InstallerImageFacts {
  kernelVersion: string;
  /** Module closure in load order, host paths. */
  modules: ModuleFile[];
  /** modules.dep, modules.alias, … made by depmod for exactly these modules. */
  moduleIndex: { name: string; data: Uint8Array }[];
  /** busybox applets as `busybox --list-full` prints them (`usr/bin/wget`, `sbin/ip`, …). */
  busyboxApplets: string[];
  busybox: string;
  /** Host paths of the tools (as `command -v` found them) and of every library they and node need. */
  tools: string[];
  libraries: string[];
  /** The Node.js binary to ship (a stripped copy of the pinned runtime). */
  node: string;
  /** The installer bundled into one ES module, and its threads' modules to go beside it. */
  bundle: Bundle;
  init: string;
  buildTime: Date;
  /** Pre-injected configuration: the files a TFTP server would serve (config.json, …). */
  tftpdata?: { name: string; data: Uint8Array }[];
  /** Flags the installer reads at start (/etc/installer/flags.default). */
  flags?: string[];
  /** Packages the bundle imports but cannot contain (native code): their files, host paths. */
  packages: { name: string; files: { rel: string; from: string }[] }[];
  /** Dominator's TLS files: the CA that signs operators' certificates, the installer's own. */
  tls?: { ca: Uint8Array; cert: Uint8Array; key: Uint8Array };
}

/** Where the bundle's unbundled packages go: Node finds them next to it. */
export const IMAGE_NODE_MODULES = `${SECOND_STAGE_MOUNT}/node_modules`;

/** /bin/x, /lib/x → /usr/bin/x, /usr/lib/x: the merged-/usr path of a host path. */
export function usrPath(p: string): string {
  const norm = path.posix.normalize(p);
  return /^\/(bin|sbin|lib|lib64)(\/|$)/.test(norm) ? `/usr${norm}` : norm;
}

/** busybox at /usr/bin/busybox and a link for each applet, except where a real program of that name is. */
export function busyboxEntries(busybox: string, applets: string[], realNames: Set<string>): PlannedEntry[] {
  const out: PlannedEntry[] = [
    { type: 'file', path: '/usr/bin/busybox', from: busybox, mode: 0o755, category: 'busybox' },
  ];
  for (const applet of applets) {
    const target = usrPath(`/${applet}`);
    if (realNames.has(path.posix.basename(target)) || target === '/usr/bin/busybox') continue;
    out.push({
      type: 'symlink',
      path: target,
      target: path.posix.relative(path.posix.dirname(target), '/usr/bin/busybox'),
    });
  }
  return out;
}

/** The merged-/usr skeleton: /bin, /sbin, /lib and /lib64 as links into /usr. */
export const MERGED_USR: PlannedEntry[] = [
  ...['bin', 'sbin', 'lib', 'lib64'].map((l): PlannedEntry => ({ type: 'dir', path: `/usr/${l}` })),
  ...['bin', 'sbin', 'lib', 'lib64'].map((l): PlannedEntry => ({ type: 'symlink', path: `/${l}`, target: `usr/${l}` })),
];

export const text = (s: string) => new TextEncoder().encode(s);

/**
 * The entries in archive order: each path once (the first entry for it wins) and after its parent
 * directories, which are added where missing. The kernel's cpio unpacker creates no parents.
 */
export function inArchiveOrder(list: PlannedEntry[]): PlannedEntry[] {
  const out: PlannedEntry[] = [];
  const taken = new Set<string>(['/']);
  const firstDir = new Map<string, PlannedEntry>();
  for (const e of list) if (e.type === 'dir' && !firstDir.has(e.path)) firstDir.set(e.path, e);
  const parents = (p: string) => {
    const d = path.posix.dirname(p);
    if (taken.has(d)) return;
    parents(d);
    taken.add(d);
    out.push(firstDir.get(d) ?? { type: 'dir', path: d });
  };
  for (const e of list) {
    if (taken.has(e.path)) continue;
    parents(e.path);
    taken.add(e.path);
    out.push(e);
  }
  return out;
}

/**
 * The second stage: Node, the bundled installer with its threads' modules and the packages it loads
 * from beside it, at their paths under SECOND_STAGE_MOUNT (where /init mounts the squashfs made of
 * them).
 */
export function planSecondStage(f: InstallerImageFacts): PlannedEntry[] {
  const entries: PlannedEntry[] = [
    { type: 'file', path: `${SECOND_STAGE_MOUNT}/node`, from: f.node, mode: 0o755, category: 'node runtime' },
    { type: 'file', path: `${SECOND_STAGE_MOUNT}/cradle.mjs`, data: f.bundle.main, mode: 0o644, category: 'installer' },
    ...f.bundle.threads.map(
      (t): PlannedEntry => ({
        type: 'file',
        path: `${SECOND_STAGE_MOUNT}/${t.name}`,
        data: t.data,
        mode: 0o644,
        category: 'installer',
      }),
    ),
  ];
  for (const p of f.packages) {
    for (const file of p.files)
      entries.push({
        type: 'file',
        path: path.posix.join(IMAGE_NODE_MODULES, p.name, file.rel),
        from: file.from,
        mode: 0o644,
        category: 'installer',
      });
  }
  return inArchiveOrder(entries).filter((e) => e.path.startsWith(`${SECOND_STAGE_MOUNT}/`));
}

/**
 * The first stage, the initramfs the kernel unpacks: everything but the second stage, with the
 * second stage's SHA-256 (`secondStageSha256`, hex) for /init to check it against, and the mount
 * point it goes on.
 */
export function planFirstStage(f: InstallerImageFacts, secondStageSha256: string): PlannedEntry[] {
  if (!/^[0-9a-f]{64}$/.test(secondStageSha256))
    throw new Error(`the second stage's digest must be 64 hex digits of SHA-256, not '${secondStageSha256}'`);
  const entries: PlannedEntry[] = [];
  const dir = (p: string, mode?: number) => entries.push({ type: 'dir', path: p, ...(mode ? { mode } : {}) });
  const add = (e: PlannedEntry) => entries.push(e);

  // The merged-/usr skeleton and the mount points /init uses.
  for (const e of MERGED_USR) add(e);
  for (const d of ['/proc', '/sys', '/dev', '/run', '/mnt', '/var/log', '/etc/installer', '/root']) dir(d);
  dir('/tmp', 0o1777);
  // The console exists before devtmpfs is mounted, so the kernel can open it for /init.
  add({ type: 'char', path: '/dev/console', major: 5, minor: 1, mode: 0o600 });

  add({ type: 'file', path: '/init', data: text(f.init), mode: 0o755, category: 'configuration' });
  add({
    type: 'file',
    path: '/build-timestamp',
    data: text(`${f.buildTime.toISOString()}\n`),
    mode: 0o644,
    category: 'configuration',
  });
  add({
    type: 'file',
    path: '/etc/passwd',
    data: text('root:x:0:0:root:/root:/bin/sh\n'),
    mode: 0o644,
    category: 'configuration',
  });
  add({ type: 'file', path: '/etc/group', data: text('root:x:0:\n'), mode: 0o644, category: 'configuration' });
  add({ type: 'symlink', path: '/etc/mtab', target: '../proc/self/mounts' });
  for (const [file, modules] of [
    ['modules.stage2', IMAGE_MODULES.secondStage],
    ['modules.early', IMAGE_MODULES.early],
  ] as const)
    add({
      type: 'file',
      path: `/etc/installer/${file}`,
      data: text(`${modules.join('\n')}\n`),
      mode: 0o644,
      category: 'configuration',
    });
  if (f.flags?.length)
    add({
      type: 'file',
      path: '/etc/installer/flags.default',
      data: text(`${f.flags.join('\n')}\n`),
      mode: 0o644,
      category: 'configuration',
    });
  for (const t of f.tftpdata ?? []) {
    if (t.name.includes('/') || t.name.startsWith('.'))
      throw new Error(`pre-injected configuration file '${t.name}': use a plain file name`);
    add({ type: 'file', path: `/tftpdata/${t.name}`, data: t.data, mode: 0o644, category: 'configuration' });
  }

  // The runtime and the installer are the second stage's: its mount point, its digest, and the
  // names the console and the remote shell type (`node`, `cradle`).
  dir(SECOND_STAGE_MOUNT);
  add({
    type: 'file',
    path: SECOND_STAGE_DIGEST,
    data: text(`${secondStageSha256}\n`),
    mode: 0o644,
    category: 'configuration',
  });
  add({
    type: 'symlink',
    path: '/usr/bin/node',
    target: path.posix.relative('/usr/bin', `${SECOND_STAGE_MOUNT}/node`),
  });
  if (f.tls) {
    add({ type: 'file', path: '/etc/ssl/CA.pem', data: f.tls.ca, mode: 0o644, category: 'configuration' });
    add({
      type: 'file',
      path: '/etc/ssl/installer/cert.pem',
      data: f.tls.cert,
      mode: 0o644,
      category: 'configuration',
    });
    add({ type: 'file', path: '/etc/ssl/installer/key.pem', data: f.tls.key, mode: 0o600, category: 'configuration' });
  }
  const wrapper = `#!/bin/sh\nexec /usr/bin/node --disable-warning=ExperimentalWarning ${SECOND_STAGE_MOUNT}/cradle.mjs "$@"\n`;
  add({ type: 'file', path: '/usr/bin/cradle', data: text(wrapper), mode: 0o755, category: 'installer' });

  // Real tools win over busybox applets of the same name (util-linux's mount knows offsets and
  // blkid probes; iproute2's ip knows bonds): add them first.
  for (const tool of f.tools) {
    const name = path.posix.basename(tool);
    if (name === 'kmod') {
      add({ type: 'file', path: '/usr/bin/kmod', from: tool, mode: 0o755, category: 'tools' });
      for (const alias of KMOD_NAMES) add({ type: 'symlink', path: `/usr/sbin/${alias}`, target: '../bin/kmod' });
    } else add({ type: 'file', path: usrPath(tool), from: tool, mode: 0o755, category: 'tools' });
  }
  const realNames = new Set([...f.tools.map((t) => path.posix.basename(t)), ...KMOD_NAMES]);
  for (const lib of f.libraries)
    add({ type: 'file', path: usrPath(lib), from: lib, mode: 0o755, category: 'libraries' });

  for (const e of busyboxEntries(f.busybox, f.busyboxApplets, realNames)) add(e);

  const modDir = `/usr/lib/modules/${f.kernelVersion}`;
  for (const m of f.modules)
    add({
      type: 'file',
      path: `${modDir}/${modulePathInTree(f.kernelVersion, m.path)}`,
      from: m.path,
      mode: 0o644,
      category: 'kernel modules',
    });
  for (const idx of f.moduleIndex)
    add({ type: 'file', path: `${modDir}/${idx.name}`, data: idx.data, mode: 0o644, category: 'kernel modules' });
  return inArchiveOrder(entries);
}
