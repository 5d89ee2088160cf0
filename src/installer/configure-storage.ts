// Step 6: the drives change. Erase and partition every selected drive, encrypt and make the file
// systems, mount those the install writes into, then install the image from memory while the
// /data file systems are still being made. Then fstab, crypttab and key, the configuration files
// kept in /var/log/installer, and the boot loader (or a kexec of the installed kernel).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stagedTreeFinder } from '../image/staged-tree.ts';
import { unpackImage } from '../image/unpack.ts';
import { eraseDrive, mountFileSystems, partitionDrive, prepareFileSystem } from '../storage/apply.ts';
import { DEFAULT_KERNEL_OPTIONS, installGrub, kexecLoad, renderGrubConfig } from '../storage/bootloader.ts';
import { KEY_FILE, renderCrypttab, renderFstab, type MadeFileSystem } from '../storage/fstab.ts';
import { partitionDevice } from '../storage/plan.ts';
import { bindMounts } from './load-image.ts';
import { formatBytes } from '../util/format.ts';
import { syncFileSystem } from '../system/libc.ts';
import type { InstallContext } from './context.ts';

export async function configureStorage(ctx: InstallContext): Promise<void> {
  const { exec, facts, opts } = ctx;
  const plan = facts.plan!;
  const root = opts.mountPoint;
  if (plan.encrypt) facts.keyFile = writeKey(`${opts.tmpRoot}.crypt.key`);

  facts.disksTouched = true;
  facts.discarded = new Set();
  await Promise.all(
    plan.drives.map(async (drive) => {
      if (await eraseDrive(exec, drive)) facts.discarded!.add(drive.device);
      await partitionDrive(exec, drive, drive.partitions.map((p) => partitionDevice(drive.device, p.number)));
    }),
  );
  const prepare = (f: (typeof plan.fileSystems)[number]) => prepareFileSystem(exec, f, facts.keyFile, facts.discarded!.has(f.drive));
  const made: MadeFileSystem[] = [];
  for (const f of plan.mounts) made.push(await prepare(f));
  await mountFileSystems(exec, plan, root);
  facts.mounted.push(...plan.mounts.map((f) => path.join(root, f.mountPoint)));

  // The /data file systems are not written during the install: make them while the image goes in.
  const rest = Promise.all(plan.fileSystems.filter((f) => !f.mountWhileInstalling).map(prepare));
  const [restMade] = await Promise.all([rest, installImage(ctx)]);
  made.push(...restMade);
  facts.made = made;

  await writeSystemFiles(ctx, made);
  await makeBootable(ctx);
}

function writeKey(file: string): string {
  fs.writeFileSync(file, randomBytes(64), { mode: 0o600 });
  return file;
}

async function installImage(ctx: InstallContext): Promise<void> {
  const { facts, opts } = ctx;
  if (ctx.exec.dryRun) return;
  const started = performance.now();
  const stats = await unpackImage(facts.image!.manifest, opts.mountPoint, {
    fetcher: facts.client!.fetcher(),
    cache: stagedTreeFinder(facts.stagedTarget!),
    ownMounts: true,
    onProgress: (p) => ctx.progress.bytes('storage', p.bytesDone, p.bytesTotal),
  });
  // Written means on the drive: a power cut after "installed" must not lose the image.
  for (const f of facts.plan!.mounts) {
    const dir = path.join(opts.mountPoint, f.mountPoint);
    const fd = fs.openSync(dir, 'r');
    try {
      syncFileSystem(fd, dir);
    } finally {
      fs.closeSync(fd);
    }
  }
  const s = (performance.now() - started) / 1000;
  ctx.log.info(`installed ${facts.image!.record.name}: ${stats.entries} entries, ${formatBytes(stats.bytesWritten)} in ${s.toFixed(2)} s including sync; ${stats.objectsFetched} objects had to be downloaded again`);
}

/** fstab, crypttab and key, the configuration kept for reference, and the image's name. */
async function writeSystemFiles(ctx: InstallContext, made: MadeFileSystem[]): Promise<void> {
  const { facts, opts, exec } = ctx;
  const root = opts.mountPoint;
  const inRoot = (p: string) => path.join(root, p);
  await exec.act('write /etc/fstab, /etc/crypttab and the key, /var/log/installer, /var/lib/initial-image', () => {
    fs.mkdirSync(inRoot('etc'), { recursive: true });
    fs.writeFileSync(inRoot('etc/fstab'), renderFstab(made), { mode: 0o644 });
    for (const f of made) if (f.mountPoint !== '/') fs.mkdirSync(inRoot(f.mountPoint), { recursive: true });
    if (facts.keyFile) {
      fs.writeFileSync(inRoot('etc/crypttab'), renderCrypttab(made), { mode: 0o644 });
      fs.copyFileSync(facts.keyFile, inRoot(KEY_FILE));
      fs.chmodSync(inRoot(KEY_FILE), 0o400);
    }
    const logDir = inRoot('var/log/installer');
    fs.mkdirSync(logDir, { recursive: true, mode: 0o755 });
    fs.cpSync(opts.tftpDirectory, logDir, { recursive: true });
    for (const extra of ['dhcp', 'old-etc.tar.gz']) {
      const from = path.join(opts.logDirectory, extra);
      if (fs.existsSync(from)) fs.cpSync(from, path.join(logDir, extra), { recursive: true });
    }
    fs.mkdirSync(inRoot('var/lib'), { recursive: true });
    fs.writeFileSync(inRoot('var/lib/initial-image'), `${facts.image!.record.name}\n`, { mode: 0o644 });
  });
}

async function makeBootable(ctx: InstallContext): Promise<void> {
  const { facts, opts, exec } = ctx;
  const plan = facts.plan!;
  const root = opts.mountPoint;
  const rootFs = plan.fileSystems.find((f) => f.mountPoint === '/')!;
  const bootFs = plan.fileSystems.find((f) => f.mountPoint === '/boot') ?? rootFs;
  const kernelOptions = DEFAULT_KERNEL_OPTIONS;
  if (facts.config!.layout!.UseKexec) {
    await kexecLoad(exec, root, facts.boot!, `root=UUID=${rootFs.uuid} ${kernelOptions}`);
    facts.kexecLoaded = !exec.dryRun;
  }
  if (!fs.existsSync(path.join(root, 'usr/sbin/grub-install')) && !exec.dryRun) {
    ctx.log.info('the image has no grub-install: the drive will not boot on its own (UseKexec boots it this time)');
    return;
  }
  const grubCfg = renderGrubConfig({ boot: facts.boot!, bootFsUuid: bootFs.uuid, separateBoot: bootFs !== rootFs, rootUuid: rootFs.uuid, kernelOptions });
  await exec.act('write /boot/grub/grub.cfg', () => {
    fs.mkdirSync(path.join(root, 'boot/grub'), { recursive: true });
    fs.writeFileSync(path.join(root, 'boot/grub/grub.cfg'), grubCfg, { mode: 0o644 });
  });
  if (!exec.dryRun) {
    await bindMounts(root);
    facts.mounted.push(...['dev', 'proc', 'sys', 'tmp'].map((d) => path.join(root, d)));
  }
  await installGrub(exec, root, plan.firmware, plan.drives[0].device);
}
