// Checks made before any drive is touched, so that what can be known to fail fails first: drives
// in use by the running system, programs and kernel support the plan needs, an image whose mount
// points are not directories, a network configuration that cannot be rendered.
import fs from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../image/model/manifest.ts';
import type { MachineConfig } from '../netconfig/machine-config.ts';
import { planNetwork } from '../netconfig/plan.ts';
import type { Drive } from '../storage/drives.ts';
import type { StoragePlan } from '../storage/plan.ts';
import { findProgram, manifestLstat, toolPrograms } from '../storage/tools-root.ts';
import type { InstallContext } from './context.ts';
import { type EthernetInterface, hasCarrier } from './interfaces.ts';

export class PreflightError extends Error {
  override name = 'PreflightError';
}

/** Mount sources and swap devices of the running system, by device number "major:minor". */
function devicesInUse(procRoot: string): Map<string, string> {
  const inUse = new Map<string, string>();
  const info = fs.readFileSync(path.join(procRoot, 'self', 'mountinfo'), 'utf8');
  for (const line of info.split('\n').filter(Boolean)) {
    const f = line.split(' ');
    inUse.set(f[2], `mounted at ${f[4]}`);
  }
  return inUse;
}

/**
 * A drive is in use when it or one of its partitions is mounted, is swap, or is held by md, LVM or
 * dm. The kernel knows best: an exclusive open fails with EBUSY for any of these.
 */
export function checkDrivesUnused(drives: Drive[], procRoot: string): void {
  const mounts = devicesInUse(procRoot);
  for (const d of drives) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(d.path, fs.constants.O_RDONLY | fs.constants.O_EXCL);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
      const name = path.basename(fs.realpathSync(d.path));
      const why = [...mounts]
        .filter(([dev]) => {
          try {
            return fs.realpathSync(`/sys/dev/block/${dev}`).split('/').includes(name);
          } catch {
            return false;
          }
        })
        .map(([, w]) => w);
      throw new PreflightError(
        `drive ${d.path} is in use by the running system${why.length ? ` (${why.join(', ')})` : ' (mounted, swap, or held by md/LVM/dm)'}: refusing to erase it; choose other drives with --drive-selector`,
      );
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
}

/** The image's directory for each mount point must be a directory (or absent), never a symlink. */
export function checkMountPoints(manifest: Manifest, mountPoints: string[]): void {
  const byPath = new Map(manifest.entries.map((e) => [e.path, e]));
  for (const mp of mountPoints) {
    if (mp === '/') continue;
    const e = byPath.get(mp.slice(1));
    if (e && e.type !== 'dir')
      throw new PreflightError(
        `the image has a ${e.type} at ${mp}, where the installer mounts a file system: make it a directory in the image${['/dev', '/proc', '/sys', '/tmp'].includes(mp) ? '' : ' or change the layout'}`,
      );
  }
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, program), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Programs this plan runs, on the installer's PATH or (mkfs) in the image. */
export function checkPrograms(plan: StoragePlan, useKexec: boolean, toolsHave: (program: string) => boolean): void {
  const own = ['blkdiscard', 'blockdev', 'blkid', 'mount', 'umount', ...(useKexec ? ['kexec'] : [])];
  // The tools root's own sfdisk, partx, cryptsetup and mkfs run when it has them (storage/tools-root.ts).
  const tools = toolPrograms(plan).filter((p) => !toolsHave(p));
  const missing = [...own, ...tools].filter((p) => !onPath(p));
  if (missing.length)
    throw new PreflightError(
      `the installer lacks ${missing.join(', ')}: add them to the installer image (or ${tools.length ? 'those of partitioning, encryption and file systems ' : ''}to the tools image, or the image being installed)`,
    );
}

/** File-system types the plan mounts must be known to the kernel (after a best-effort modprobe). */
export function checkFileSystemSupport(plan: StoragePlan, procRoot: string): void {
  const known = fs.readFileSync(path.join(procRoot, 'filesystems'), 'utf8');
  const kernelName = { ext4: 'ext4', xfs: 'xfs', vfat: 'vfat' } as const;
  const missing = [...new Set(plan.mounts.map((f) => kernelName[f.type]))].filter(
    (t) => !new RegExp(`\\s${t}$`, 'm').test(known),
  );
  if (missing.length)
    throw new PreflightError(
      `this kernel cannot mount ${missing.join(', ')} (not in ${procRoot}/filesystems): add the module to the installer image or change FileSystemType in the layout`,
    );
}

/** What preflight checks: the plan, the image, and the machine's own network. */
export interface PreflightInput {
  storage: StoragePlan;
  manifest: Manifest;
  /** The tools root's manifest: the tools image's, else the target's. */
  tools: Manifest;
  useKexec: boolean;
  machine: MachineConfig;
  interfaces: EthernetInterface[];
  drives: Drive[];
}

export async function preflight(ctx: InstallContext, i: PreflightInput): Promise<void> {
  const { opts } = ctx;
  const plan = i.storage;
  const manifest = i.manifest;
  checkDrivesUnused(i.drives, opts.proc);
  // File systems go on the layout's mount points; /dev, /proc, /sys and /tmp are bound in for the
  // image's own mkfs and grub-install.
  checkMountPoints(manifest, [...plan.mounts.map((f) => f.mountPoint), '/dev', '/proc', '/sys', '/tmp']);
  const toolsRoot = manifestLstat(i.tools);
  checkPrograms(plan, i.useKexec, (p) => findProgram(toolsRoot, p) !== undefined);
  for (const fsType of new Set(plan.mounts.map((f) => f.type))) {
    await ctx.exec.read('modprobe', ['-q', fsType]).catch(() => {}); // built in, or absent: the check says
  }
  checkFileSystemSupport(plan, opts.proc);
  if (!opts.skipNetwork && !opts.networkConfigurator) {
    // Errors in the network part of config.json (unknown subnet ids, MACs) surface now.
    planNetwork(
      i.machine,
      i.interfaces.map((n) => ({ name: n.name, mac: n.mac, up: hasCarrier(opts.sysfs, n.name) })),
    );
  }
}
