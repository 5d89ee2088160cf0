// The installer daemon: the seed's sequence, one step per file, in the seed's order.
//   update the clock → configure the local network (and load the configuration) → resolve the
//   image and plan the storage → load the tools (object cache, image into memory) → configure
//   storage → configure the target network → copy logs → unmount → notify → reboot.
// A failure anywhere is logged and reported; a drive already changed is made unbootable, so the
// machine netboots the installer again instead of a half-written system.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Executor } from '../system/executor.ts';
import { bootServerUrl, type InstallContext, type InstallerOptions } from './context.ts';
import { configureNetwork } from './configure-network.ts';
import { configureStorage } from './configure-storage.ts';
import { renderDryRun, type CacheMeasure } from './dry-run.ts';
import { copyLogs, makeUnbootable, notifyCompletion, unmountAll } from './finish.ts';
import { fetchConfiguration, readConfiguration } from './load-configuration.ts';
import { loadTools, measureCache, mountOldRoot } from './load-tools.ts';
import { InstallerLog } from './log.ts';
import { bringUpInterfaces, configPresent, configureFromDhcp, configureFromInjected } from './local-network.ts';
import { planStorageStep, resolveImages } from './plan-install.ts';
import { Progress, type ObjectCounts } from './progress.ts';
import type { UnpackStats } from '../image/unpack/unpack.ts';
import { installRebootSignals, RebootGate, runsFromMemory, waitAndReboot } from './reboot.ts';
import { StatusServer } from '../status/server.ts';
import { updateClock, writeHardwareClock } from './update-clock.ts';

export function newContext(opts: InstallerOptions, log = newLog(opts)): InstallContext {
  return {
    opts,
    log,
    exec: new Executor({ dryRun: opts.dryRun, log: (l) => log.info(l) }),
    progress: new Progress(log),
    facts: {
      interfaces: [],
      disksTouched: false,
      installComplete: false,
      luksOpened: [],
      kexecLoaded: false,
      clockAdvanced: false,
      mounted: [],
    },
  };
}

function newLog(opts: InstallerOptions): InstallerLog {
  return new InstallerLog({ directory: opts.dryRun ? undefined : opts.logDirectory });
}

/**
 * Runs the daemon: the status server, then install attempts (a retry asked for over RPC after a
 * failure starts another); resolves to the exit status when it does not reboot.
 */
export async function runInstaller(opts: InstallerOptions): Promise<number> {
  const log = newLog(opts);
  const gate = new RebootGate((line) => log.info(line));
  installRebootSignals(gate);
  const status = opts.status && !opts.dryRun ? await startStatusServer(opts, log, gate) : undefined;
  try {
    for (;;) {
      const ctx = newContext(opts, log);
      status?.attach(ctx);
      const outcome = await attempt(ctx, gate);
      if (outcome !== 'retry') return outcome;
      log.info('retrying the install');
    }
  } finally {
    await status?.close();
    log.close();
  }
}

/** Port 6978; a port that cannot be opened is logged, never fatal (as in the seed). */
async function startStatusServer(
  opts: InstallerOptions,
  log: InstallerLog,
  gate: RebootGate,
): Promise<StatusServer | undefined> {
  const s = opts.status!;
  const { ca, cert, key } = opts.tls;
  const tls = ca && cert && key ? { ca, cert, key } : undefined;
  try {
    const server = new StatusServer({
      port: s.port,
      address: s.address,
      tls,
      gate,
      log,
      shellCommand: s.shellCommand,
      shellKeepSeconds: s.shellKeepSeconds,
    });
    const addr = await server.listen();
    const host =
      addr.address === '::' || addr.address === '0.0.0.0'
        ? 'THIS-MACHINE'
        : addr.family === 'IPv6'
          ? `[${addr.address}]`
          : addr.address;
    log.info(
      `status page on http://${host}:${addr.port}/${tls ? ` (https too; RPC and shell for clients of ${ca})` : ` (read-only: no ${ca ?? 'CA'}, installer certificate and key, so no RPC or shell)`}`,
    );
    return server;
  } catch (err) {
    log.info(`no status page: ${(err as Error).message}`);
    return undefined;
  }
}

async function attempt(ctx: InstallContext, gate: RebootGate): Promise<number | 'retry'> {
  if (!ctx.opts.dryRun) return attemptInstall(ctx, gate);
  // A dry run changes nothing at all: what it must write to plan goes to a scratch directory.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-dry-run-'));
  ctx.opts = { ...ctx.opts, scratchDirectory: scratch };
  try {
    return await attemptInstall(ctx, gate);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function attemptInstall(ctx: InstallContext, gate: RebootGate): Promise<number | 'retry'> {
  const { opts, log, progress } = ctx;
  const started = performance.now();
  let error: Error | undefined;
  let cache: CacheMeasure | undefined;
  try {
    cache = await install(ctx);
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
  ctx.facts.client?.close();
  if (opts.dryRun) {
    if (!error) process.stdout.write(renderDryRun(ctx, cache));
    return error ? 1 : 0;
  }
  const seconds = (performance.now() - started) / 1000;
  progress.result(!error, seconds, {
    ...(error ? { error: error.message } : {}),
    ...(ctx.facts.image ? { image: ctx.facts.image.record.name } : {}),
    ...(ctx.facts.imageStats ? { objects: objectCounts(ctx.facts.imageStats) } : {}),
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
  const next = await waitAndReboot(ctx, !error, gate);
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

async function install(ctx: InstallContext): Promise<CacheMeasure | undefined> {
  const { opts, progress, facts } = ctx;
  if (!opts.dryRun && !opts.skipStorage && !opts.allowRunningSystem && !runsFromMemory(opts.proc)) {
    throw new Error(
      'this system runs from a disk, not from an installer image: a real install here could erase the wrong drives; use --dry-run, or --allow-running-system when the selected drives are not in use',
    );
  }
  await progress.phase('clock', () => updateClock(ctx));
  await progress.phase('network', () => configureLocalNetworkAndLoadConfiguration(ctx));
  const config = facts.config!;
  const reportUrl = bootServerUrl(ctx);
  // A dry run is not an install: the boot server must not see one starting.
  if (reportUrl && !opts.dryRun)
    progress.reportTo(
      reportUrl,
      {
        macs: facts.interfaces.map((i) => i.mac),
        hostname: config.machine.Machine.Hostname,
        ip: config.machine.Machine.HostIpAddress,
      },
      opts.tls,
    );
  let cache: CacheMeasure | undefined;
  if (!opts.skipStorage) {
    await progress.phase('plan', async () => {
      await resolveImages(ctx);
      await planStorageStep(ctx);
    });
    if (opts.dryRun) {
      await mountOldRoot(ctx);
      cache = await measureCache(ctx);
    } else await progress.phase('tools', () => loadTools(ctx));
    await progress.phase('storage', () => configureStorage(ctx));
    if (facts.clockAdvanced) await writeHardwareClock(ctx);
  }
  if (!opts.skipNetwork) await progress.phase('target-network', () => configureNetwork(ctx));
  await progress.phase('logs', () => copyLogs(ctx));
  await progress.phase('unmount', () => unmountAll(ctx));
  await progress.phase('notify', () => notifyCompletion(ctx));
  return cache;
}

async function configureLocalNetworkAndLoadConfiguration(ctx: InstallContext): Promise<void> {
  const { opts, facts } = ctx;
  await bringUpInterfaces(ctx);
  if (configPresent(opts.tftpDirectory)) {
    ctx.log.info(`${path.join(opts.tftpDirectory, 'config.json')} is present: using it, no DHCP`);
    facts.config = readConfiguration(opts.tftpDirectory, !opts.skipStorage);
    facts.activeInterface = (await configureFromInjected(ctx, facts.config.machine)).activeInterface;
    return;
  }
  const net = await configureFromDhcp(ctx);
  facts.activeInterface = net.activeInterface;
  if (opts.scratchDirectory) {
    // Fetched files go to the dry run's scratch directory: left in --tftp-directory they would
    // make the next real run skip DHCP.
    ctx.opts = { ...opts, tftpDirectory: path.join(opts.scratchDirectory, 'config') };
  }
  await fetchConfiguration(ctx, net.activeInterface, net.tftpServer);
  facts.config = readConfiguration(ctx.opts.tftpDirectory, !opts.skipStorage);
}
