// Steps 8-10: the log goes onto the new system, everything the installer mounted is unmounted
// (the new system's file systems, LUKS mappings, the in-memory trees, the old OS), and the
// -completionNotifier programme is told the new system is about to boot.
import fs from 'node:fs';
import path from 'node:path';
import { mountPoints } from '../system/mounts.ts';
import { CommandError } from '../system/run.ts';
import type { InstallContext } from './context.ts';
import { hookEnv } from './load-configuration.ts';
import { unmountOldRoot } from './load-tools.ts';

export async function copyLogs(ctx: InstallContext): Promise<void> {
  const { log, opts, exec } = ctx;
  if (!log.file) return;
  await exec.act('copy the installer log to /var/log/installer/log', () => {
    const dir = path.join(opts.mountPoint, 'var/log/installer');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(log.file!, path.join(dir, 'log'));
    fs.chmodSync(path.join(dir, 'log'), 0o644);
  });
}

/** Unmounts, deepest first, what this installer mounted that is still mounted; closes LUKS. */
export async function unmountAll(ctx: InstallContext): Promise<void> {
  const { facts, exec } = ctx;
  if (exec.dryRun) {
    // A dry run mounts only the old OS, read-only, to measure the cache.
    await unmountOldRoot(ctx).catch(() => {});
    return;
  }
  const errors: string[] = [];
  const live = () => new Set(mountPoints());
  for (const m of [...facts.mounted].sort((a, b) => b.length - a.length)) {
    if (!live().has(m)) continue;
    try {
      await exec.change('umount', ['--detach-loop', m]);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  facts.mounted = facts.mounted.filter((m) => live().has(m));
  for (const f of facts.plan?.fileSystems ?? []) {
    if (!f.luks || !fs.existsSync(f.luks.device)) continue;
    await exec.change('cryptsetup', ['close', f.luks.name]).catch((err: CommandError) => errors.push(err.message));
  }
  if (facts.keyFile && fs.existsSync(facts.keyFile)) {
    fs.writeFileSync(facts.keyFile, Buffer.alloc(64)); // the key lives on only in the new root
    fs.rmSync(facts.keyFile);
  }
  if (errors.length) throw new Error(`cannot unmount: ${errors.join('; ')}`);
}

export async function notifyCompletion(ctx: InstallContext): Promise<void> {
  const program = ctx.opts.completionNotifier;
  if (!program) return;
  ctx.log.info(`running completion notifier ${program}`);
  await ctx.exec.change(program, [ctx.opts.tftpDirectory, ctx.facts.activeInterface ?? ''], { env: hookEnv() });
}

/**
 * After a failure that touched the drives: erase the boot drive's partition tables, so firmware
 * falls through to the network and boots the installer again instead of a half-written system.
 */
export async function makeUnbootable(ctx: InstallContext): Promise<void> {
  const boot = ctx.facts.plan?.drives[0];
  if (!boot || !ctx.facts.disksTouched || ctx.exec.dryRun) return;
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
