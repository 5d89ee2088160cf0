// The installed image's object record (image/unpack/previous-install.ts) onto the new system, for
// the next install over it: step 5 keeps it beside the log while the image is staged (it has the
// manifest), step 8 (finish.ts copyLogs) writes it into the new root once the tree is there.
import fs from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../image/model/manifest.ts';
import { PREVIOUS_INSTALL_RECORD, previousInstallRecord } from '../image/unpack/previous-install.ts';
import { writeInRoot } from '../util/in-root.ts';
import type { InstallContext } from './context.ts';

const staged = (ctx: InstallContext) => path.join(ctx.opts.logDirectory, 'installed-objects.json');

/** Keeps the record of installing `manifest` until the new root is ready (step 5). */
export function stageObjectRecord(ctx: InstallContext, manifest: Manifest, image: string): void {
  fs.mkdirSync(ctx.opts.logDirectory, { recursive: true });
  fs.writeFileSync(staged(ctx), previousInstallRecord(manifest, image));
}

/** Writes the staged record into the new root, if this run staged one (step 8). */
export async function installObjectRecord(ctx: InstallContext): Promise<void> {
  const file = staged(ctx);
  // A dry run stages nothing, and must not remove what a failed real run left either.
  if (ctx.exec.dryRun || !fs.existsSync(file)) return;
  await ctx.exec.act(`record the installed objects in /${PREVIOUS_INSTALL_RECORD}`, () =>
    writeInRoot(ctx.opts.mountPoint, PREVIOUS_INSTALL_RECORD, fs.readFileSync(file)),
  );
  fs.rmSync(file);
}
