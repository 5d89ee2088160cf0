// Carries out a StoragePlan through the Executor: erase, partition, encrypt, make file systems,
// mount. Each function is one step of the seed's storage sequence; the plan already holds every
// decision (sizes, UUIDs, names), so nothing here chooses anything.
import fs from 'node:fs';
import path from 'node:path';
import type { Executor } from '../system/executor.ts';
import { CommandError } from '../system/run.ts';
import type { MadeFileSystem } from './fstab.ts';
import { sfdiskScript, type DrivePlan } from './plan.ts';
import type { FileSystemPlan, StoragePlan } from './storage-plan.ts';

const MiB = 1024 * 1024;

/**
 * Erases a drive: blkdiscard (fast, and the fstab then gets `discard`), else zeros over the first
 * and last MiB, where partition tables (GPT keeps a backup at the end), RAID and LVM signatures
 * live. Returns whether the drive was discarded.
 */
export async function eraseDrive(exec: Executor, drive: DrivePlan): Promise<boolean> {
  try {
    await exec.change('blkdiscard', ['--force', drive.device]);
    return true;
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
  }
  await exec.act(`zero the first and last MiB of ${drive.device}`, () => {
    const fd = fs.openSync(drive.device, 'r+');
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
export async function partitionDrive(exec: Executor, drive: DrivePlan, partitionPaths: string[]): Promise<void> {
  await exec.change('sfdisk', ['--quiet', '--wipe', 'always', '--wipe-partitions', 'always', drive.device], { input: sfdiskScript(drive) });
  await exec.change('partx', ['--update', drive.device]);
  if (exec.dryRun) return;
  // `partx --update` deletes partitions whose geometry changed but may not add them back in the
  // same run (seen with util-linux 2.38): add whatever is still missing, one by one.
  for (const [i, device] of partitionPaths.entries()) {
    if (fs.existsSync(device)) continue;
    const n = drive.partitions[i].number;
    await exec.change('partx', ['--add', '--nr', `${n}:${n}`, drive.device]).catch(() => {});
  }
  await Promise.all(partitionPaths.map(waitForBlockDevice));
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
export async function luksFormat(exec: Executor, f: FileSystemPlan, keyFile: string): Promise<void> {
  if (!f.luks) return;
  await exec.change('cryptsetup', [
    'luksFormat', '--batch-mode', '--type', 'luks2', '--uuid', f.luks.uuid, '--label', f.label,
    '--cipher', 'aes-xts-plain64', '--key-size', '512', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000',
    '--key-file', keyFile, f.partition,
  ]);
}

export async function luksOpen(exec: Executor, f: FileSystemPlan, keyFile: string, discard: boolean): Promise<void> {
  if (!f.luks) return;
  await exec.change('cryptsetup', ['open', '--type', 'luks2', '--key-file', keyFile, ...(discard ? ['--allow-discards'] : []), f.partition, f.luks.name]);
  if (!exec.dryRun) await waitForBlockDevice(f.luks.device);
}

export async function makeFileSystem(exec: Executor, f: FileSystemPlan): Promise<void> {
  const inode = f.bytesPerInode ? ['-i', String(f.bytesPerInode)] : [];
  if (f.type === 'ext4') await exec.change('mkfs.ext4', ['-q', '-F', '-L', f.label, '-U', f.uuid, ...inode, f.device]);
  else if (f.type === 'xfs') await exec.change('mkfs.xfs', ['-q', '-f', '-L', f.label, '-m', `uuid=${f.uuid}`, f.device]);
  else await exec.change('mkfs.vfat', ['-F', '32', '-n', f.label, '-i', f.uuid.replace('-', ''), f.device]);
}

/** Makes one file system: LUKS first when planned, then mkfs on what LUKS exposes. */
export async function prepareFileSystem(exec: Executor, f: FileSystemPlan, keyFile: string | undefined, discarded: boolean): Promise<MadeFileSystem> {
  if (f.luks) {
    if (!keyFile) throw new Error(`${f.mountPoint} is to be encrypted but no key was generated`);
    await luksFormat(exec, f, keyFile);
    await luksOpen(exec, f, keyFile, discarded);
  }
  await makeFileSystem(exec, f);
  return { mountPoint: f.mountPoint, type: f.type, uuid: f.uuid, discard: discarded, ...(f.luks ? { luks: { uuid: f.luks.uuid, name: f.luks.name } } : {}) };
}

/** Mounts the file systems the install writes into, shallowest first, under `root`. */
export async function mountFileSystems(exec: Executor, plan: StoragePlan, root: string): Promise<void> {
  for (const f of plan.mounts) {
    const target = path.join(root, f.mountPoint);
    await exec.act(`mkdir -p ${target}`, () => fs.mkdirSync(target, { recursive: true }));
    await exec.change('mount', ['-t', f.type, f.device, target]);
  }
}

/** Fails early, before any drive is touched, when encryption cannot work on this kernel. */
export function checkEncryptionSupport(plan: StoragePlan, procRoot: string): void {
  if (!plan.encrypt) return;
  const misc = fs.readFileSync(path.join(procRoot, 'misc'), 'utf8');
  if (!/\bdevice-mapper\b/.test(misc)) {
    const which = plan.fileSystems.filter((f) => f.luks).map((f) => f.mountPoint).join(', ');
    throw new Error(`the layout encrypts ${which}, but this kernel has no device-mapper (dm_mod/dm_crypt not loaded or not built): add the modules to the installer image, or set "Encrypt": false in storage-layout.json`);
  }
}
