// Steps 8-10: the log goes onto the new system, everything the installer mounted is unmounted
// (the new system's file systems, LUKS mappings, the in-memory trees, the old OS), and the
// -completionNotifier programme is told the new system is about to boot.
import fs from 'node:fs';
import path from 'node:path';
import { mountPoints, mountsUnder } from '../system/mounts.ts';
import type { CommandError } from '../system/run.ts';
import type { InstallContext } from './context.ts';
import { hookEnv } from './load-configuration.ts';
import { writeInRoot } from '../util/in-root.ts';
import { installObjectRecord } from './object-record.ts';

/** The run's whole log (its files, in order, when --log-file-max-size split it) as /var/log/installer/log. */
export async function copyLogs(ctx: InstallContext): Promise<void> {
  const { log, opts, exec } = ctx;
  // Where this image's objects now lie, for the next install over this system (object-record.ts).
  await installObjectRecord(ctx);
  if (!log.file) return;
  await exec.act('copy the installer log to /var/log/installer/log', () =>
    writeInRoot(
      opts.mountPoint,
      'var/log/installer/log',
      Buffer.concat(log.files.map((f) => fs.readFileSync(f))),
      0o644,
    ),
  );
}

/**
 * Unmounts, deepest first, everything this installer mounted that is still mounted (what it
 * recorded, and anything under the new root it mounted), then
 * closes the LUKS mappings it opened and destroys the in-memory key.
 */
export async function unmountAll(ctx: InstallContext): Promise<void> {
  const { record, exec, opts } = ctx;
  // A dry run mounts nothing but the old OS, read-only, and lets it go itself (sequence.ts).
  if (exec.dryRun) return;
  const errors: string[] = [];
  const root = path.resolve(opts.mountPoint);
  const live = () => new Set(mountPoints());
  const recorded = record.mounted.map((m) => path.resolve(m));
  // Only what this run mounted: mounts under the new root count only when this run mounted the
  // root itself (a mount point such as /mnt may hold the host's own mounts).
  const ours = new Set([...recorded, ...(recorded.includes(root) ? mountsUnder(root) : [])]);
  for (const m of [...ours].sort((a, b) => b.length - a.length)) {
    if (!live().has(m)) continue;
    try {
      await exec.change('umount', ['--detach-loop', m]);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  record.mounted = [...ours].filter((m) => live().has(m));
  for (const name of record.luksOpened.splice(0)) {
    await exec.change('cryptsetup', ['close', name]).catch((err: CommandError) => errors.push(err.message));
  }
  destroyKey(record.keyFile);
  record.keyFile = undefined;
  if (errors.length) throw new Error(`cannot unmount: ${errors.join('; ')}`);
}

/** Overwrites the key where it lies (truncating would leave its bytes in memory), then removes it. */
function destroyKey(file: string | undefined): void {
  if (!file || !fs.existsSync(file)) return;
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.alloc(fs.fstatSync(fd).size), 0, undefined, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.rmSync(file);
}

export async function notifyCompletion(ctx: InstallContext, activeInterface: string): Promise<void> {
  const program = ctx.opts.completionNotifier;
  if (!program) return;
  ctx.log.info(`running completion notifier ${program}`);
  await ctx.exec.change(program, [ctx.opts.tftpDirectory, activeInterface], { env: hookEnv() });
}

/**
 * After a failure that touched the drives: erase the boot drive's partition tables, so firmware
 * falls through to the network and boots the installer again instead of a half-written system.
 */
export async function makeUnbootable(ctx: InstallContext): Promise<void> {
  const boot = ctx.record.plan?.drives[0];
  if (!boot || !ctx.record.disksTouched || ctx.record.installComplete || ctx.exec.dryRun) return;
  await ctx.exec.act(`erase the partition tables of ${boot.device}`, () => {
    const fd = fs.openSync(boot.device, 'r+');
    try {
      const zeros = Buffer.alloc(1024 * 1024);
      fs.writeSync(fd, zeros, 0, zeros.length, 0);
      fs.writeSync(fd, zeros, 0, zeros.length, Math.max(0, boot.sizeBytes - zeros.length));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
  ctx.log.info(`${boot.device}: partition tables erased, so this machine will not boot the unfinished install`);
}
