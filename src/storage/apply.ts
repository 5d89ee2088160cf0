// Carries out a StoragePlan through the Executor: erase, partition, encrypt, make file systems,
// mount. Each function is one step of Dominator's storage sequence; the plan already holds every
// decision (sizes, UUIDs, names), so nothing here chooses anything. Partitioning, encryption and
// mkfs run from the tools root when one is given (tools-root.ts); erasing and mounting run here.
import fs from 'node:fs';
import path from 'node:path';
import type { Executor } from '../system/executor.ts';
import { CommandError } from '../system/run.ts';
import type { MadeFileSystem } from './fstab.ts';
import { sfdiskScript, type DrivePlan } from './partitions.ts';
import { mkdirInRoot } from '../util/in-root.ts';
import type { FileSystemPlan, StoragePlan } from './plan.ts';
import { runTool, type ToolsRoot } from './tools-root.ts';

const MiB = 1024 * 1024;

/**
 * Erases a drive: blkdiscard (fast, and the fstab then gets `discard`), else zeros over the first
 * and last MiB, where partition tables (GPT keeps a backup at the end), RAID and LVM signatures
 * live. Returns whether the drive was discarded.
 */
export async function eraseDrive(exec: Executor, drive: DrivePlan): Promise<boolean> {
  try {
    // Without --force blkdiscard opens the drive exclusively, so a mounted one is refused.
    await exec.change('blkdiscard', [drive.device]);
    return true;
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
  }
  await exec.act(`zero the first and last MiB of ${drive.device}`, () => {
    // O_EXCL: the kernel refuses a drive that is mounted or held by md/LVM/dm.
    const fd = fs.openSync(drive.device, fs.constants.O_RDWR | fs.constants.O_EXCL);
    try {
      const zeros = Buffer.alloc(MiB);
      fs.writeSync(fd, zeros, 0, MiB, 0);
      fs.writeSync(fd, zeros, 0, MiB, Math.max(0, drive.sizeBytes - MiB));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
  return false;
}

/**
 * Writes the GPT, then makes sure the kernel knows the partitions: `partx -u` adds what a kernel
 * without partition parsers (or a busy re-read) missed, and we wait for the device nodes.
 */
export async function partitionDrive(
  exec: Executor,
  drive: DrivePlan,
  partitionPaths: string[],
  tools?: ToolsRoot,
): Promise<void> {
  await runTool(exec, tools, 'sfdisk', ['--quiet', '--wipe', 'always', '--wipe-partitions', 'always', drive.device], {
    input: sfdiskScript(drive),
  });
  await runTool(exec, tools, 'partx', ['--update', drive.device]);
  if (exec.dryRun) return;
  // `partx --update` deletes partitions whose geometry changed but may not add them back in the
  // same run (seen with util-linux 2.38): add whatever is still missing, one by one.
  for (const [i, device] of partitionPaths.entries()) {
    if (fs.existsSync(device)) continue;
    const n = drive.partitions[i].number;
    await runTool(exec, tools, 'partx', ['--add', '--nr', `${n}:${n}`, drive.device]).catch(() => {});
  }
  await Promise.all(partitionPaths.map(waitForBlockDevice));
  // A stale node left from the old table (a busy partition partx could not update) must not get a
  // file system: the kernel's idea of each partition's size must be the plan's.
  for (const [i, device] of partitionPaths.entries()) {
    const size = Number((await exec.read('blockdev', ['--getsize64', device])).stdout.trim());
    if (size !== drive.partitions[i].sizeBytes) {
      throw new Error(
        `${device} is ${size} bytes in the kernel, but the new partition table says ${drive.partitions[i].sizeBytes}: the old partition is still in use; reboot the installer and retry`,
      );
    }
  }
}

/** devtmpfs creates nodes asynchronously: poll with a short back-off for up to 10 s. */
export async function waitForBlockDevice(device: string): Promise<void> {
  let delay = 1;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (fs.statSync(device, { throwIfNoEntry: false })?.isBlockDevice()) return;
    if (Date.now() > deadline) throw new Error(`${device} did not appear within 10 s after partitioning`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/**
 * LUKS2 with the generated key file. The key is 512 random bits, not a passphrase, so a slow
 * key-derivation function adds no security; PBKDF2 with few iterations keeps opening fast (an
 * argon2id benchmark costs seconds per device, and 20 s under emulation).
 */
export async function luksFormat(exec: Executor, f: FileSystemPlan, keyFile: string, tools?: ToolsRoot): Promise<void> {
  if (!f.luks) return;
  await runTool(exec, tools, 'cryptsetup', [
    'luksFormat',
    '--batch-mode',
    '--type',
    'luks2',
    '--uuid',
    f.luks.uuid,
    '--label',
    f.label,
    '--cipher',
    'aes-xts-plain64',
    '--key-size',
    '512',
    '--pbkdf',
    'pbkdf2',
    '--pbkdf-force-iterations',
    '1000',
    '--key-file',
    keyFile,
    f.partition,
  ]);
}

export async function luksOpen(
  exec: Executor,
  f: FileSystemPlan,
  keyFile: string,
  discard: boolean,
  tools?: ToolsRoot,
): Promise<void> {
  if (!f.luks) return;
  await runTool(exec, tools, 'cryptsetup', [
    'open',
    '--type',
    'luks2',
    '--key-file',
    keyFile,
    ...(discard ? ['--allow-discards'] : []),
    f.partition,
    f.luks.name,
  ]);
  if (!exec.dryRun) await waitForBlockDevice(f.luks.device);
}

const MKFS = { ext4: 'mkfs.ext4', xfs: 'mkfs.xfs', vfat: 'mkfs.vfat' } as const;

/**
 * mkfs, from the tools root when it has it. Without a tools image that root is the image being
 * installed, so the file system has only features the new system's kernel, fsck and GRUB know (a
 * newer e2fsprogs enables ones an older GRUB cannot read); a tools image takes that on itself.
 */
export async function makeFileSystem(exec: Executor, f: FileSystemPlan, tools?: ToolsRoot): Promise<void> {
  const inode = f.bytesPerInode ? ['-i', String(f.bytesPerInode)] : [];
  const args =
    f.type === 'ext4'
      ? ['-q', '-F', '-L', f.label, '-U', f.uuid, ...inode, f.device]
      : f.type === 'xfs'
        ? ['-q', '-f', '-L', f.label, '-m', `uuid=${f.uuid}`, f.device]
        : ['-F', '32', '-n', f.label, '-i', f.uuid.replace('-', ''), f.device];
  await runTool(exec, tools, MKFS[f.type], args);
}

export interface PrepareOptions {
  /** The key, on this machine: inside the tools root, so a chrooted cryptsetup reads it too. */
  keyFile?: string;
  discarded: boolean;
  tools?: ToolsRoot;
  /** Called once a LUKS mapping is open, so cleanup closes exactly the ones this run opened. */
  onLuksOpened?: (name: string) => void;
}

/** Makes one file system: LUKS first when planned, then mkfs on what LUKS exposes. */
export async function prepareFileSystem(exec: Executor, f: FileSystemPlan, o: PrepareOptions): Promise<MadeFileSystem> {
  if (f.luks) {
    if (!o.keyFile) throw new Error(`${f.mountPoint} is to be encrypted but no key was generated`);
    await luksFormat(exec, f, o.keyFile, o.tools);
    await luksOpen(exec, f, o.keyFile, o.discarded, o.tools);
    o.onLuksOpened?.(f.luks.name);
  }
  await makeFileSystem(exec, f, o.tools);
  return {
    mountPoint: f.mountPoint,
    type: f.type,
    uuid: f.uuid,
    discard: o.discarded,
    ...(f.luks ? { luks: { uuid: f.luks.uuid, name: f.luks.name } } : {}),
  };
}

/** Mounts the file systems the install writes into, shallowest first; reports each mount made. */
export async function mountFileSystems(
  exec: Executor,
  plan: StoragePlan,
  root: string,
  onMounted: (dir: string) => void,
): Promise<void> {
  for (const f of plan.mounts) {
    const shown = path.join(path.resolve(root), f.mountPoint);
    // mkdirInRoot resolves the directory inside the root (no symlink of the image leads out).
    const target = await exec.act(`make the directory ${shown}`, () => {
      if (f.mountPoint !== '/') return mkdirInRoot(root, f.mountPoint);
      fs.mkdirSync(shown, { recursive: true });
      return shown;
    });
    await exec.change('mount', ['-t', f.type, f.device, target ?? shown]);
    onMounted(target ?? shown);
  }
}

/** Fails early, before any drive is touched, when encryption cannot work on this kernel. */
export function checkEncryptionSupport(plan: StoragePlan, procRoot: string): void {
  if (!plan.encrypt) return;
  const misc = fs.readFileSync(path.join(procRoot, 'misc'), 'utf8');
  if (!/\bdevice-mapper\b/.test(misc)) {
    const which = plan.fileSystems
      .filter((f) => f.luks)
      .map((f) => f.mountPoint)
      .join(', ');
    throw new Error(
      `the layout encrypts ${which}, but this kernel has no device-mapper (dm_mod/dm_crypt not loaded or not built): add the modules to the installer image, or set "Encrypt": false in storage-layout.json`,
    );
  }
}
