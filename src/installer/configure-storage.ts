// Step 6: the drives change. Erase and partition every selected drive, encrypt and make the file
// systems, mount those the install writes into, then install the image from memory while the
// /data file systems are still being made. Then fstab, crypttab and key, the configuration files
// kept in /var/log/installer, and the boot loader (or a kexec of the installed kernel).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stagedTreeFinder } from '../image/unpack/staged-tree.ts';
import { fetcherInWorker } from '../image/transfer/worker.ts';
import { unpackImage } from '../image/unpack/unpack.ts';
import { eraseDrive, mountFileSystems, partitionDrive, prepareFileSystem } from '../storage/apply.ts';
import {
  bootNextToInstalledSystem,
  DEFAULT_KERNEL_OPTIONS,
  installGrub,
  kexecLoad,
  renderGrubConfig,
} from '../storage/bootloader.ts';
import { KEY_FILE, renderCrypttab, renderFstab, type MadeFileSystem } from '../storage/fstab.ts';
import { partitionDevice } from '../storage/partitions.ts';
import type { FileSystemPlan } from '../storage/plan.ts';
import { syncFileSystem } from '../system/libc.ts';
import { formatBytes } from '../util/format.ts';
import { copyTreeInRoot, mkdirInRoot, writeInRoot } from '../util/in-root.ts';
import { BOOT_SERVER_FILE, bootServerUrl, type InstallContext } from './context.ts';
import { bindMounts } from './load-image-command.ts';

/** Like Promise.all, but waits for every task before reporting the first failure. */
export async function allSettled<T>(tasks: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

export async function configureStorage(ctx: InstallContext): Promise<void> {
  const { exec, facts, opts } = ctx;
  const plan = facts.plan!;
  const root = path.resolve(opts.mountPoint);
  if (plan.encrypt && !exec.dryRun) facts.keyFile = writeKey(facts.stagedTarget!);
  // The image's own mkfs and grub-install run inside the unpacked image: give it /dev, /proc, /sys.
  if (!exec.dryRun) {
    await bindMounts(facts.stagedTarget!, (dir) => facts.mounted.push(dir));
  }

  facts.disksTouched = true;
  facts.discarded = new Set();
  await allSettled(
    plan.drives.map(async (drive) => {
      if (await eraseDrive(exec, drive)) facts.discarded!.add(drive.device);
      await partitionDrive(
        exec,
        drive,
        drive.partitions.map((p) => partitionDevice(drive.device, p.number)),
      );
    }),
  );
  const prepare = (f: FileSystemPlan) =>
    prepareFileSystem(exec, f, {
      keyFile: facts.keyFile,
      discarded: facts.discarded!.has(f.drive),
      imageRoot: exec.dryRun ? undefined : facts.stagedTarget,
      onLuksOpened: (name) => facts.luksOpened.push(name),
    });
  const made: MadeFileSystem[] = [];
  for (const f of plan.mounts) made.push(await prepare(f));
  await mountFileSystems(exec, plan, root, (dir) => facts.mounted.push(dir));

  // The /data file systems are not written during the install: make them while the image goes in.
  const [restMade] = await allSettled<unknown>([
    allSettled(plan.fileSystems.filter((f) => !f.mountWhileInstalling).map(prepare)),
    installImage(ctx),
  ]);
  made.push(...(restMade as MadeFileSystem[]));
  facts.made = made;

  await writeSystemFiles(ctx, made);
  await makeBootable(ctx);
  facts.installComplete = !exec.dryRun;
}

/** 512 random bits in the in-memory copy of the image (tmpfs), readable by root only. */
function writeKey(stagedRoot: string): string {
  const rel = `run/cradle-crypt-${process.pid}.key`;
  writeInRoot(stagedRoot, rel, randomBytes(64), 0o600);
  return path.join(stagedRoot, rel);
}

async function installImage(ctx: InstallContext): Promise<void> {
  const { facts, opts } = ctx;
  if (ctx.exec.dryRun) return;
  const started = performance.now();
  const stats = await unpackImage(facts.image!.manifest, opts.mountPoint, {
    fetcher: fetcherInWorker(facts.client!),
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
  ctx.log.info(
    `installed ${facts.image!.record.name}: ${stats.entries} entries, ${formatBytes(stats.bytesWritten)} in ${s.toFixed(2)} s including sync; ${stats.objectsFetched} objects had to be downloaded again`,
  );
}

/** fstab, crypttab and key, the configuration kept for reference, and the image's name. */
async function writeSystemFiles(ctx: InstallContext, made: MadeFileSystem[]): Promise<void> {
  const { facts, opts, exec } = ctx;
  const root = opts.mountPoint;
  await exec.act('write /etc/fstab, /etc/crypttab and the key, /var/log/installer, /var/lib/initial-image', () => {
    writeInRoot(root, 'etc/fstab', renderFstab(made));
    for (const f of made) if (f.mountPoint !== '/') mkdirInRoot(root, f.mountPoint);
    if (facts.keyFile) {
      writeInRoot(root, 'etc/crypttab', renderCrypttab(made));
      writeInRoot(root, KEY_FILE, fs.readFileSync(facts.keyFile), 0o400);
    }
    copyTreeInRoot(root, opts.tftpDirectory, 'var/log/installer');
    if (fs.existsSync(path.join(opts.logDirectory, 'dhcp')))
      copyTreeInRoot(root, path.join(opts.logDirectory, 'dhcp'), 'var/log/installer/dhcp');
    const oldEtc = path.join(opts.logDirectory, 'old-etc.tar.gz');
    if (fs.existsSync(oldEtc)) writeInRoot(root, 'var/log/installer/old-etc.tar.gz', fs.readFileSync(oldEtc), 0o600);
    writeInRoot(root, 'var/lib/initial-image', `${facts.image!.record.name}\n`);
    // The installed system has no client certificate (the installer's stays in the installer
    // image): it reports over plain HTTP, which the boot server serves on the same port. The report
    // only confirms an install the boot server recorded, and only from the machine's own address.
    const bootServer = bootServerUrl(ctx)?.replace(/^https:/, 'http:');
    if (bootServer) writeInRoot(root, BOOT_SERVER_FILE, `${bootServer}\n`);
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
    try {
      await kexecLoad(exec, root, facts.boot!, `root=UUID=${rootFs.uuid} ${kernelOptions}`);
      facts.kexecLoaded = !exec.dryRun;
    } catch (err) {
      ctx.log.info(
        `kexec load failed, the machine will restart through its firmware instead: ${(err as Error).message}`,
      );
    }
  }
  if (!facts.grubInstall) return; // planning made sure UseKexec boots this one
  const grubCfg = renderGrubConfig({
    boot: facts.boot!,
    bootFsUuid: bootFs.uuid,
    separateBoot: bootFs !== rootFs,
    rootUuid: rootFs.uuid,
    kernelOptions,
  });
  await exec.act('write /boot/grub/grub.cfg', () => writeInRoot(root, 'boot/grub/grub.cfg', grubCfg));
  if (!exec.dryRun) {
    await bindMounts(root, (dir) => facts.mounted.push(dir));
  }
  const esp = plan.fileSystems.find((f) => f.type === 'vfat' && f.drive === plan.drives[0].device);
  await installGrub(exec, root, plan.firmware, plan.drives[0].device, esp?.mountPoint);
  if (plan.firmware === 'uefi' && esp && !facts.kexecLoaded) {
    try {
      const entry = await bootNextToInstalledSystem(exec, plan.drives[0].device, esp.partition);
      ctx.log.info(`the next boot starts the installed system (${entry}, once)`);
    } catch (err) {
      // Without it the firmware still gets there, after its network boot options fail.
      ctx.log.info(`cannot set the firmware's next boot: ${(err as Error).message}`);
    }
  }
}
