// The installer daemon around the install sequence (sequence.ts): one log and one reboot gate for
// the whole run, install attempts (an operator's retry after a failure starts another), and for
// each attempt its end: cleanup, the result reported, the wait and the reboot. A failure after the
// drives changed makes the boot drive unbootable, so the machine netboots the installer again
// instead of a half-written system. Whoever shows the install (the status page on port 6978) is
// attached from outside, through InstallObserver: the daemon does not know it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout } from 'node:timers/promises';
import type { UnpackStats } from '../image/unpack/unpack.ts';
import { Executor } from '../system/executor.ts';
import { type InstallContext, type InstallerOptions, newRecord } from './context.ts';
import { renderDryRun } from './dry-run.ts';
import { makeUnbootable, unmountAll } from './finish.ts';
import { InstallerLog } from './log.ts';
import { type ObjectCounts, Progress } from './progress.ts';
import { installRebootSignals, RebootGate, waitAndReboot } from './reboot.ts';
import { install } from './sequence.ts';

/** What an observer of the install sees of an attempt (the status page reads it). */
export type InstallView = Pick<InstallContext, 'record' | 'progress' | 'log'>;

/** Shows the install, attempt after attempt (the status server is one). */
export interface InstallObserver {
  attach(view: InstallView): void;
  close(): Promise<void>;
}

/** Starts an observer once the daemon has its log and gate; undefined when there is none. */
export type StartObserver = (log: InstallerLog, gate: RebootGate) => Promise<InstallObserver | undefined>;

export function newContext(opts: InstallerOptions, log = newLog(opts)): InstallContext {
  return {
    opts,
    log,
    exec: new Executor({ dryRun: opts.dryRun, log: (l) => log.info(l), debug: (level, l) => log.debug(level, l) }),
    progress: new Progress(log),
    record: newRecord(),
  };
}

function newLog(opts: InstallerOptions): InstallerLog {
  return new InstallerLog({ directory: opts.dryRun ? undefined : opts.logDirectory, bounds: opts.log });
}

/**
 * Runs the daemon: install attempts until one is not retried; resolves to the exit status when it
 * does not reboot. `observe` starts what shows the install (not for a dry run).
 */
export async function runInstaller(opts: InstallerOptions, observe?: StartObserver): Promise<number> {
  const log = newLog(opts);
  for (const why of opts.ignoredFlags) log.info(why);
  const gate = new RebootGate((line) => log.info(line));
  installRebootSignals(gate);
  const observer = observe && !opts.dryRun ? await observe(log, gate) : undefined;
  try {
    if (opts.waitFor) await waitForFile(opts.waitFor, log);
    for (;;) {
      const ctx = newContext(opts, log);
      observer?.attach(ctx);
      const outcome = opts.dryRun ? await dryRun(ctx) : await attempt(ctx, gate);
      if (outcome !== 'retry') return outcome;
      log.info('retrying the install');
    }
  } finally {
    await observer?.close();
    log.close();
  }
}

/**
 * Waits until `file` exists. The installer image starts the installer while /init still loads
 * drivers, so that Node's start (seconds under emulation) overlaps them; /init makes the file once
 * they are loaded, and no step looks at drives or interfaces before.
 */
export async function waitForFile(file: string, log: InstallerLog): Promise<void> {
  if (fs.existsSync(file)) return;
  log.info(`waiting for ${file} (the drivers) before the install begins`);
  while (!fs.existsSync(file)) await setTimeout(50);
  log.info(`${file} is there: the install begins`);
}

/**
 * A dry run changes nothing at all: what it must fetch or mount to plan goes to a scratch
 * directory it removes. It prints the plan.
 */
async function dryRun(ctx: InstallContext): Promise<number> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-dry-run-'));
  ctx.opts = { ...ctx.opts, scratchDirectory: scratch };
  try {
    const found = await install(ctx);
    process.stdout.write(renderDryRun(found.dryRun ?? { useKexec: false }, ctx.exec.skipped));
    return 0;
  } catch (err) {
    ctx.log.info(`install failed: ${(err as Error).message}`);
    return 1;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function attempt(ctx: InstallContext, gate: RebootGate): Promise<number | 'retry'> {
  const { log, progress, record } = ctx;
  const started = performance.now();
  let error: Error | undefined;
  let kexecLoaded = false;
  try {
    kexecLoaded = (await install(ctx)).kexecLoaded;
  } catch (err) {
    error = err as Error;
    log.info(`install failed: ${error.message}`);
  }
  try {
    await unmountAll(ctx);
  } catch (err) {
    log.info(`${(err as Error).message}`);
    error ??= err as Error;
  }
  if (error)
    await makeUnbootable(ctx).catch((err) => log.info(`cannot erase the partition tables: ${(err as Error).message}`));
  const seconds = (performance.now() - started) / 1000;
  progress.result(!error, seconds, {
    ...(error ? { error: error.message } : {}),
    ...(record.imageName ? { image: record.imageName } : {}),
    ...(record.imageStats ? { objects: objectCounts(record.imageStats) } : {}),
  });
  log.info(
    error
      ? `FAILED after ${seconds.toFixed(1)} s`
      : `installed in ${seconds.toFixed(1)} s: ${phaseSummary(progress.phaseSeconds)}`,
  );
  // From here an operator may retry (the page shows the failure already).
  gate.failedWaiting = !!error;
  await progress.flush();
  // Reporting goes on through the wait (holds, the reboot); a retry's attempt reports anew.
  const next = await waitAndReboot(ctx, !error, gate, kexecLoaded);
  await progress.flush(2000);
  progress.stop();
  if (next === 'retry') return 'retry';
  return error ? 1 : 0;
}

function objectCounts(s: UnpackStats): ObjectCounts {
  return {
    objectsFromCache: s.objectsFromCache,
    bytesFromCache: s.bytesFromCache,
    objectsFetched: s.objectsFetched,
    bytesFetched: s.bytesFetched,
  };
}

function phaseSummary(phases: Record<string, number>): string {
  return Object.entries(phases)
    .map(([p, s]) => `${p} ${s.toFixed(2)} s`)
    .join(', ');
}
