// The last step: wait (5 s after success, 5 min after a failure, so an operator can look, longer
// while remote shells are open), honour a held reboot (the RPC's block or SIGTSTP; released by the
// RPC's unblock or SIGCONT, as often as wanted), take a retry (the RPC's, or SIGHUP's), then boot the new
// system with kexec when it was loaded, else restart through the firmware. An installer started
// on a system that runs from a disk never reboots it.
import fs from 'node:fs';
import path from 'node:path';
import type { InstallContext } from './context.ts';

/**
 * What stands between the end of an install and the reboot: an operator's hold (the RPC's block,
 * or SIGTSTP), remote shells still open, and a retry asked for after a failure. One per daemon;
 * it outlives the attempts a retry starts.
 */
export class RebootGate {
  /** Who holds the reboot ('' when nobody does). */
  heldBy = '';
  private retryWanted = false;
  /** Set while the daemon waits after a failure: only then is a retry possible. */
  failedWaiting = false;
  /** Remote shells open now (the status server sets this). */
  shellsOpen: () => number = () => 0;
  private readonly log: (line: string) => void;

  constructor(log: (line: string) => void) {
    this.log = log;
  }

  get held(): boolean {
    return this.heldBy !== '';
  }

  /** Past the last wait: the machine reboots (or the daemon exits) now, a hold comes too late. */
  committed = false;

  /** Holds the reboot; false when it is too late for that. */
  hold(by: string): boolean {
    if (this.committed) return false;
    if (!this.held) this.log(`reboot held by ${by} until released`);
    this.heldBy = by;
    return true;
  }

  release(by: string): void {
    if (this.held) this.log(`reboot released by ${by}`);
    this.heldBy = '';
  }

  /** An operator is done looking: end the waits now (a hold too). */
  rebootNow(by: string): boolean {
    if (!this.waiting) return false;
    this.log(`reboot now, asked for by ${by}`);
    this.heldBy = '';
    this.retryWanted = false;
    this.nowWanted = true;
    return true;
  }

  /** Set while the daemon waits before its reboot. */
  waiting = false;
  private nowWanted = false;

  /** The waits end early: a retry or a reboot now was asked for. */
  get interrupted(): boolean {
    return this.retryWanted || this.nowWanted;
  }

  /** Asks for another attempt; false unless the daemon is waiting after a failure. */
  retry(by: string): boolean {
    if (!this.failedWaiting || this.nowWanted) return false;
    this.log(`retry asked for by ${by}`);
    this.retryWanted = true;
    return true;
  }

  /**
   * Dominator's SIGHUP: the install starts over. While the daemon waits (after a failure or a
   * success) that is at once; during an attempt, as soon as the attempt has cleaned up, so no
   * mount or LUKS mapping of the old attempt is left behind (Dominator's installer re-executes
   * itself on the spot and leaves them).
   */
  restart(by: string): boolean {
    if (this.committed) return false;
    this.log(`restart asked for by ${by}: installing again${this.waiting ? '' : ' once this attempt has ended'}`);
    this.nowWanted = false;
    this.retryWanted = true;
    return true;
  }

  /** The wait is over: a reboot-now request is spent. */
  endWait(): void {
    this.nowWanted = false;
  }

  /** Takes the pending retry request, if any. */
  takeRetry(): boolean {
    const wanted = this.retryWanted;
    this.retryWanted = false;
    return wanted;
  }
}

export function installRebootSignals(gate: RebootGate): void {
  process.on('SIGTSTP', () => gate.hold('SIGTSTP'));
  process.on('SIGCONT', () => gate.release('SIGCONT'));
  process.on('SIGHUP', () => gate.restart('SIGHUP'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * True when / is the installer's own (in memory from a netboot, or a live ISO/USB's squashfs or
 * overlay); false on a system booted from its disk.
 */
export function runsFromMemory(procRoot: string): boolean {
  const mounts = fs.readFileSync(path.join(procRoot, 'mounts'), 'utf8').split('\n');
  const root = mounts
    .map((l) => l.split(' '))
    .filter((f) => f[1] === '/')
    .at(-1);
  return !!root && ['rootfs', 'tmpfs', 'ramfs', 'overlay', 'squashfs', 'iso9660'].includes(root[2]);
}

/** Seconds more a reboot waits for remote shells to close (Dominator's installer's: 5 min, or 1 h after a failure). */
const SHELL_GRACE_SECONDS = { ok: 300, failed: 3600 };

/**
 * Waits, then reboots (or returns, without --reboot). Resolves to 'retry' when an operator asked
 * for another attempt while the daemon waited after a failure.
 */
export async function waitAndReboot(
  ctx: InstallContext,
  ok: boolean,
  gate: RebootGate,
  kexecLoaded: boolean,
): Promise<'retry' | 'done'> {
  const { opts, log, exec } = ctx;
  const wait = ok ? opts.successWaitSeconds : opts.failureWaitSeconds;
  gate.failedWaiting = !ok;
  gate.waiting = true;
  try {
    if (wait > 0) {
      log.info(
        `${opts.reboot ? 'rebooting' : 'exiting'} in ${wait} s (the reboot can be held: RPC /api/v1/reboot/block, or SIGTSTP until SIGCONT; ended now: /api/v1/reboot/now; started over: SIGHUP${ok ? '' : ' or /api/v1/retry'})`,
      );
      await sleepUntil(wait * 1000, () => gate.interrupted);
    }
    if (gate.shellsOpen() > 0 && !gate.interrupted) {
      const grace = ok ? SHELL_GRACE_SECONDS.ok : SHELL_GRACE_SECONDS.failed;
      log.info(`waiting up to ${grace} s for ${gate.shellsOpen()} remote shell(s) to close`);
      await sleepUntil(grace * 1000, () => gate.shellsOpen() === 0 || gate.interrupted);
    }
    if (gate.held && !gate.interrupted) {
      log.info(`reboot held by ${gate.heldBy}: waiting for its release`);
      await sleepUntil(Infinity, () => !gate.held || gate.interrupted);
    }
  } finally {
    gate.failedWaiting = false;
    gate.waiting = false;
  }
  gate.endWait();
  if (gate.takeRetry()) return 'retry';
  gate.committed = true;
  if (!opts.reboot || exec.dryRun) return 'done';
  if (!runsFromMemory(opts.proc)) {
    log.info('not rebooting: / is on a disk, so this is not a netbooted installer (pass --no-reboot to silence this)');
    return 'done';
  }
  await exec.change('sync', []);
  if (ok && kexecLoaded) {
    log.info('booting the new system with kexec');
    try {
      await exec.change('kexec', ['--exec']);
    } catch (err) {
      log.info(`kexec failed: ${(err as Error).message}; restarting through the firmware`);
    }
  }
  log.info('restarting');
  await exec.change('reboot', ['-f']);
  return 'done';
}

/** Sleeps up to `ms`, waking early once `done()` holds. */
async function sleepUntil(ms: number, done: () => boolean): Promise<void> {
  const end = performance.now() + ms;
  while (!done() && performance.now() < end) await sleep(Math.min(250, end - performance.now()));
}
