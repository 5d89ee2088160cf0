// The last step: wait (5 s after success, 5 min after a failure, so an operator can look), honour
// a held reboot (SIGTSTP holds it, SIGCONT releases it, as often as wanted), then boot the new
// system with kexec when it was loaded, else restart through the firmware. An installer started
// on a system that runs from a disk never reboots it.
import fs from 'node:fs';
import path from 'node:path';
import type { InstallContext } from './context.ts';

let held = false;

export function installRebootSignals(ctx: InstallContext): void {
  process.on('SIGTSTP', () => {
    held = true;
    ctx.log.info('SIGTSTP: reboot held until SIGCONT');
  });
  process.on('SIGCONT', () => {
    if (held) ctx.log.info('SIGCONT: reboot released');
    held = false;
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * True when / is the installer's own (in memory from a netboot, or a live ISO/USB's squashfs or
 * overlay); false on a system booted from its disk.
 */
export function runsFromMemory(procRoot: string): boolean {
  const mounts = fs.readFileSync(path.join(procRoot, 'mounts'), 'utf8').split('\n');
  const root = mounts.map((l) => l.split(' ')).filter((f) => f[1] === '/').at(-1);
  return !!root && ['rootfs', 'tmpfs', 'ramfs', 'overlay', 'squashfs', 'iso9660'].includes(root[2]);
}

export async function waitAndReboot(ctx: InstallContext, ok: boolean): Promise<void> {
  const { opts, log, exec } = ctx;
  const wait = ok ? opts.successWaitSeconds : opts.failureWaitSeconds;
  if (wait > 0) {
    log.info(`${opts.reboot ? 'rebooting' : 'exiting'} in ${wait} s (SIGTSTP holds it, SIGCONT releases it)`);
    await sleep(wait * 1000);
  }
  if (held) {
    log.info('reboot held: waiting for SIGCONT');
    while (held) await sleep(250);
  }
  if (!opts.reboot || exec.dryRun) return;
  if (!runsFromMemory(opts.proc)) {
    log.info('not rebooting: / is on a disk, so this is not a netbooted installer (pass --no-reboot to silence this)');
    return;
  }
  await exec.change('sync', []);
  if (ok && ctx.facts.kexecLoaded) {
    log.info('booting the new system with kexec');
    try {
      await exec.change('kexec', ['--exec']);
    } catch (err) {
      log.info(`kexec failed: ${(err as Error).message}; restarting through the firmware`);
    }
  }
  log.info('restarting');
  await exec.change('reboot', ['-f']);
}
