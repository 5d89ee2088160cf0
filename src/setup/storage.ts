// The head node's storage plan as the commands that carry it out, in order: erase each disk's
// signatures, write its GPT (sfdisk, with exact sectors), make the physical volumes, the volume
// group and its logical volumes, the file systems and swap, and mount the new system under a root.
// A pure function from the planned layout, so `--dry-run` shows each command and the golden tests
// pin them; the install runs them through the Executor, the one seam to the machine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GPT_TYPES, type DrivePlan, sfdiskScript } from '../storage/partitions.ts';
import type { Executor } from '../system/executor.ts';
import { fsLabel, type HeadLayout, type PlannedPartition } from './layout.ts';

const MiB = 2 ** 20;

export interface StorageCommand {
  program: string;
  args: string[];
  /** Fed to the program's standard input (sfdisk's script). */
  stdin?: string;
}

const TYPE_OF: Record<PlannedPartition['role'], string> = {
  'bios-boot': GPT_TYPES.biosBoot,
  esp: GPT_TYPES.esp,
  plain: GPT_TYPES.linux,
  pv: GPT_TYPES.lvm,
};

const nameOf = (p: PlannedPartition) =>
  p.role === 'plain' ? (p.mount?.replace(/^\//, '').replace(/\//g, '-') ?? 'data') : p.role;

/** Each disk's GPT with exact offsets: 1 MiB aligned, the backup table's MiB at the end left free. */
export function headDrivePlans(layout: HeadLayout): DrivePlan[] {
  return layout.disks.map((disk) => {
    const end = Math.floor((disk.sizeBytes - MiB) / MiB) * MiB;
    let start = MiB;
    const partitions = layout.partitions
      .filter((p) => p.disk === disk.path)
      .map((p) => {
        const sizeBytes = p.size === 'rest' ? end - start : p.size;
        const planned = {
          number: p.number,
          name: nameOf(p),
          type: TYPE_OF[p.role],
          startBytes: start,
          sizeBytes,
          contentBytes: 0,
        };
        start += sizeBytes;
        return planned;
      });
    return { device: disk.path, sizeBytes: disk.sizeBytes, partitions };
  });
}

function mkfs(fs: string, device: string, mount: string): StorageCommand {
  switch (fs) {
    case 'vfat':
      return { program: 'mkfs.vfat', args: ['-F', '32', '-n', 'ESP', device] };
    case 'swap':
      return { program: 'mkswap', args: ['-L', 'swap', device] };
    case 'xfs':
      return { program: 'mkfs.xfs', args: ['-f', '-L', fsLabel(mount), device] };
    default:
      return { program: 'mkfs.ext4', args: ['-q', '-F', '-L', fsLabel(mount), device] };
  }
}

/** Where each file system is mounted under `root`, shallowest first so parents come first. */
export function headMounts(layout: HeadLayout, root: string): { device: string; fs: string; target: string }[] {
  const vg = layout.volumeGroup.name;
  const all = [
    ...layout.partitions
      .filter((p) => p.mount && p.fs && p.fs !== 'swap')
      .map((p) => ({ device: p.device, fs: p.fs as string, mount: p.mount as string })),
    ...layout.volumes
      .filter((v) => v.fs !== 'swap')
      .map((v) => ({ device: `/dev/${vg}/${v.name}`, fs: v.fs as string, mount: v.mount })),
  ];
  return all
    .sort((a, b) => a.mount.split('/').filter(Boolean).length - b.mount.split('/').filter(Boolean).length)
    .map((m) => ({ device: m.device, fs: m.fs, target: m.mount === '/' ? root : `${root}${m.mount}` }));
}

export function headStorageCommands(layout: HeadLayout, root: string): StorageCommand[] {
  const vg = layout.volumeGroup.name;
  const out: StorageCommand[] = [];
  for (const d of layout.disks) out.push({ program: 'wipefs', args: ['--all', '--force', d.path] });
  for (const plan of headDrivePlans(layout))
    out.push({ program: 'sfdisk', args: ['--wipe', 'always', '--no-reread', plan.device], stdin: sfdiskScript(plan) });
  // The kernel learns the new tables from partx; sfdisk's own re-read fails on a disk in use.
  for (const d of layout.disks) out.push({ program: 'partx', args: ['--update', d.path] });
  const pvs = layout.volumeGroup.physicalVolumes;
  out.push({ program: 'lvm', args: ['pvcreate', '--yes', '--force', '--force', ...pvs] });
  out.push({ program: 'lvm', args: ['vgcreate', '--yes', vg, ...pvs] });
  // Fixed sizes first, so the one that takes the rest gets what is really left.
  const ordered = [...layout.volumes].sort((a, b) => (a.size === 'rest' ? 1 : 0) - (b.size === 'rest' ? 1 : 0));
  for (const v of ordered)
    out.push({
      program: 'lvm',
      args: [
        'lvcreate',
        '--yes',
        '--wipesignatures',
        'y',
        ...(v.size === 'rest' ? ['--extents', '100%FREE'] : ['--size', `${Math.floor(v.size / MiB)}m`]),
        '--name',
        v.name,
        vg,
      ],
    });
  out.push({ program: 'lvm', args: ['vgchange', '--activate', 'y', vg] });
  for (const p of layout.partitions) if (p.fs && p.mount) out.push(mkfs(p.fs, p.device, p.mount));
  for (const v of layout.volumes) out.push(mkfs(v.fs, `/dev/${vg}/${v.name}`, v.mount));
  for (const m of headMounts(layout, root)) {
    out.push({ program: 'mkdir', args: ['-p', m.target] });
    out.push({ program: 'mount', args: ['-t', m.fs, m.device, m.target] });
  }
  return out;
}

/** The commands as a dry run shows them: one line each, stdin after a heredoc marker. */
export function describeCommands(cmds: StorageCommand[]): string {
  return cmds
    .map((c) => `${[c.program, ...c.args].join(' ')}${c.stdin ? ` <<EOF\n${c.stdin}EOF` : ''}`)
    .join('\n')
    .concat('\n');
}

/**
 * lvm's configuration for a system without udev (the setup's initramfs): lvm makes the device
 * nodes and /dev/VG/LV links itself instead of waiting for udev to.
 */
const LVM_CONF = 'activation {\n  udev_sync = 0\n  udev_rules = 0\n}\n';

/** Runs the commands through the Executor (a dry run records them); lvm with its own configuration. */
export async function applyHeadStorage(exec: Executor, cmds: StorageCommand[]): Promise<void> {
  const conf = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-lvm-'));
  try {
    fs.writeFileSync(path.join(conf, 'lvm.conf'), LVM_CONF);
    const lvmEnv = { ...process.env, LVM_SYSTEM_DIR: conf, LVM_SUPPRESS_FD_WARNINGS: '1' };
    for (const c of cmds)
      await exec.change(c.program, c.args, {
        ...(c.stdin ? { input: c.stdin } : {}),
        ...(c.program === 'lvm' ? { env: lvmEnv } : {}),
      });
  } finally {
    fs.rmSync(conf, { recursive: true, force: true });
  }
}
