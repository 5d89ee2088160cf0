// The install, as Dominator's installer sequences it: one step per file, in its order, each step
// taking what it needs from the steps before it and returning what it found.
//   update the clock → configure the local network (and load the configuration) → resolve the
//   image and plan the storage → load the tools (object cache, image into memory) → configure
//   storage → configure the target network → copy logs → unmount → notify.
// The steps' inputs and outputs are tabled in docs/architecture.md. daemon.ts runs this and
// handles what follows: cleanup, the result, the wait and the reboot.
import type { Manifest } from '../image/model/manifest.ts';
import { bootServerUrl, type InstallContext } from './context.ts';
import { configureNetwork } from './configure-network.ts';
import { configureStorage } from './configure-storage.ts';
import type { DryRunFacts } from './dry-run.ts';
import { copyLogs, notifyCompletion, unmountAll } from './finish.ts';
import { configureLocalNetworkAndLoadConfiguration } from './local-network.ts';
import { loadTools, measureCache, mountOldRoot, unmountOldRoot } from './load-tools.ts';
import { type Images, type InstallPlan, planInstall, resolveImages } from './plan-install.ts';
import { runsFromMemory } from './reboot.ts';
import { updateClock, writeHardwareClock } from './update-clock.ts';

export interface InstallResult {
  /** The installed kernel is loaded for kexec: the reboot starts it directly. */
  kexecLoaded: boolean;
  /** In a dry run: what it found, for the plan it prints. */
  dryRun?: DryRunFacts;
}

export async function install(ctx: InstallContext): Promise<InstallResult> {
  const { opts, progress } = ctx;
  if (!opts.dryRun && !opts.skipStorage && !opts.allowRunningSystem && !runsFromMemory(opts.proc)) {
    throw new Error(
      'this system runs from a disk, not from an installer image: a real install here could erase the wrong drives; use --dry-run, or --allow-running-system when the selected drives are not in use',
    );
  }
  const { clockAdvanced } = await progress.phase('clock', () => updateClock(ctx));
  const local = await progress.phase('network', () => configureLocalNetworkAndLoadConfiguration(ctx));
  const { config, interfaces, activeInterface } = local;
  const reportUrl = bootServerUrl(opts, config);
  // A dry run is not an install: the boot server must not see one starting.
  if (reportUrl && !opts.dryRun)
    progress.reportTo(
      reportUrl,
      {
        macs: interfaces.map((i) => i.mac),
        hostname: config.machine.Machine.Hostname,
        ip: config.machine.Machine.HostIpAddress,
      },
      opts.tls,
    );
  const result: InstallResult = { kexecLoaded: false };
  let manifest: Manifest | undefined;
  if (!opts.skipStorage) {
    const { images, plan } = await progress.phase('plan', async () => {
      const images = await resolveImages(ctx, config);
      try {
        return { images, plan: await planInstall(ctx, config, images.image, interfaces, images.tools) };
      } catch (err) {
        images.client.close();
        throw err;
      }
    });
    try {
      manifest = images.image.manifest;
      if (opts.dryRun) result.dryRun = await findWhatADryRunShows(ctx, images, plan, config.layout?.UseKexec ?? false);
      const staged = opts.dryRun ? undefined : await progress.phase('tools', () => loadTools(ctx, images, plan));
      const storage = await progress.phase('storage', () => configureStorage(ctx, { config, images, plan, staged }));
      result.kexecLoaded = storage.kexecLoaded;
      if (clockAdvanced) await writeHardwareClock(ctx);
    } finally {
      images.client.close();
    }
  }
  if (!opts.skipNetwork) {
    const network = { machine: config.machine, interfaces, activeInterface, manifest };
    await progress.phase('target-network', () => configureNetwork(ctx, network));
  }
  await progress.phase('logs', () => copyLogs(ctx));
  await progress.phase('unmount', () => unmountAll(ctx));
  await progress.phase('notify', () => notifyCompletion(ctx, activeInterface));
  return result;
}

/** What the old OS's cache would give, measured by hashing: mounted read-only, then let go. */
async function findWhatADryRunShows(
  ctx: InstallContext,
  images: Images,
  plan: InstallPlan,
  useKexec: boolean,
): Promise<DryRunFacts> {
  const oldRoot = await mountOldRoot(ctx, plan);
  try {
    return { images, plan, useKexec, cache: await measureCache(ctx, images.image.manifest, oldRoot) };
  } finally {
    if (oldRoot) await unmountOldRoot(ctx, oldRoot);
  }
}
