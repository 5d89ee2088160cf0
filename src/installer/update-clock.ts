// Step 1: a machine whose clock is years behind would reject every TLS certificate. The installer
// image's build time (the mtime of /build-timestamp) is a lower bound for "now": move the clock
// forward to it if it is behind, and write the hardware clock later so the new OS starts right.
import fs from 'node:fs';
import type { InstallContext } from './context.ts';

/** The time to set, or undefined when the clock is already at or past the build time. */
export function clockCorrection(nowMs: number, buildMs: number): Date | undefined {
  return buildMs > nowMs ? new Date(buildMs) : undefined;
}

/** Moves the clock forward when it is behind; says whether it did (then the hardware clock is written later). */
export async function updateClock(ctx: InstallContext): Promise<{ clockAdvanced: boolean }> {
  const st = fs.statSync(ctx.opts.buildTimestamp, { throwIfNoEntry: false });
  if (!st) {
    ctx.log.info(`${ctx.opts.buildTimestamp} is missing: not checking the clock`);
    return { clockAdvanced: false };
  }
  const target = clockCorrection(Date.now(), st.mtimeMs);
  if (!target) return { clockAdvanced: false };
  ctx.log.info(`clock is behind the installer's build time: setting it to ${target.toISOString()}`);
  await ctx.exec.change('date', ['-u', '-s', `@${Math.floor(target.getTime() / 1000)}`]);
  return { clockAdvanced: true };
}

/** The clock was moved forward: keep it for the new system's first boot (failure is only logged). */
export async function writeHardwareClock(ctx: InstallContext): Promise<void> {
  try {
    await ctx.exec.change('hwclock', ['--systohc', '--utc']);
  } catch (err) {
    ctx.log.info(`cannot write the hardware clock: ${(err as Error).message}`);
  }
}
