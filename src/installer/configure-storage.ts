// Step 6: the drives change. Erase and partition every selected drive, encrypt and make the file
// systems, mount those the install writes into, then install the image from memory while the
// /data file systems are still being made. Then fstab, crypttab and key, the configuration files
// kept in /var/log/installer, and the boot loader (or a kexec of the installed kernel).
// Partitioning, encryption and mkfs run chrooted in the tools root (step 5's tools image, else the
// target image), with /dev, /proc, /sys and /tmp bound in; grub-install runs in the new system.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stagedTreeFinder, type TrustedFiles } from '../image/unpack/staged-tree.ts';
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
import { directoryLstat, manifestLstat, toolsRoot, type ToolsRoot } from '../storage/tools-root.ts';
import { syncFileSystem } from '../system/libc.ts';
import { formatBytes } from '../util/format.ts';
import { copyTreeInRoot, mkdirInRoot, writeInRoot } from '../util/in-root.ts';
import { bindMounts, CHROOT_MOUNTS, mountPoints } from '../system/mounts.ts';
import type { Digest } from '../image/model/digest.ts';
import type { ObjectFinder } from '../image/model/objects.ts';
import { BOOT_SERVER_FILE, bootServerUrl, type Configuration, type InstallContext } from './context.ts';
import { stagingDirs, type StagedImage } from './load-tools.ts';
import type { Images, InstallPlan } from './plan-install.ts';

/** Like Promise.all, but waits for every task before reporting the first failure. */
export async function allSettled<T>(tasks: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** What step 6 needs from the steps before it. */
export interface StorageInput {
  config: Configuration;
  images: Images;
  plan: InstallPlan;
  /** The image in memory (step 5); a dry run has none. */
  staged?: StagedImage;
}

export interface StorageResult {
  made: MadeFileSystem[];
  /** The installed kernel is loaded for kexec (UseKexec): the reboot starts it directly. */
  kexecLoaded: boolean;
}

export async function configureStorage(ctx: InstallContext, input: StorageInput): Promise<StorageResult> {
  const { exec, opts, record } = ctx;
  const { storage } = input.plan;
  const staged = input.staged;
  const root = path.resolve(opts.mountPoint);
  const tools = toolsRootOf(ctx, input);
  ctx.log.info(`partitioning, encryption and file systems: programs from the ${tools.what}, chrooted in ${tools.dir}`);
  // What cleanup unmounts: the bind mounts are recorded as they are made.
  await bindMounts(exec, tools.dir, (dir) => record.mounted.push(dir));
  await hookView(ctx, tools.dir);
  if (storage.encrypt) record.keyFile = await writeKey(ctx, tools.dir);

  record.disksTouched = true;
  const discarded = new Set<string>();
  await allSettled(
    storage.drives.map(async (drive) => {
      if (await eraseDrive(exec, drive)) discarded.add(drive.device);
      await partitionDrive(
        exec,
        drive,
        drive.partitions.map((p) => partitionDevice(drive.device, p.number)),
        tools,
      );
    }),
  );
  const prepare = (f: FileSystemPlan) =>
    prepareFileSystem(exec, f, {
      keyFile: record.keyFile,
      discarded: discarded.has(f.drive),
      tools,
      onLuksOpened: (name) => record.luksOpened.push(name),
    });
  const made: MadeFileSystem[] = [];
  for (const f of storage.mounts) made.push(await prepare(f));
  await mountFileSystems(exec, storage, root, (dir) => record.mounted.push(dir));

  // The /data file systems are not written during the install: make them while the image goes in.
  const [restMade] = await allSettled<unknown>([
    allSettled(storage.fileSystems.filter((f) => !f.mountWhileInstalling).map(prepare)),
    staged ? installImage(ctx, input, staged) : Promise.resolve(),
  ]);
  made.push(...(restMade as MadeFileSystem[]));

  await bindTarget(ctx, tools.dir, root);
  await writeSystemFiles(ctx, input, made);
  const kexecLoaded = await makeBootable(ctx, input);
  record.installComplete = !exec.dryRun;
  return { made, kexecLoaded };
}

/**
 * The tools root (a real run's, unpacked in memory; a dry run's, looked up in its manifest at the
 * directory a real run would unpack it to). Its log line names each program it lacks.
 */
function toolsRootOf(ctx: InstallContext, input: StorageInput): ToolsRoot {
  const { images, staged } = input;
  const what = images.tools ? `tools image ${images.tools.record.name}` : `image ${images.image.record.name}`;
  const onMissing = (_program: string, line: string) => ctx.log.info(line);
  if (staged) return toolsRoot(staged.tools, what, directoryLstat(staged.tools), onMissing);
  const dir = stagingDirs(ctx.opts.tmpRoot, Boolean(images.tools)).tools;
  return toolsRoot(dir, what, manifestLstat((images.tools ?? images.image).manifest), onMissing);
}

/** 512 random bits in the tools root (tmpfs), readable by root only: a chrooted cryptsetup reads it. */
async function writeKey(ctx: InstallContext, toolsDir: string): Promise<string> {
  const rel = `run/cradle-crypt-${process.pid}.key`;
  await ctx.exec.act(`write the encryption key to ${path.join(toolsDir, rel)}`, () =>
    writeInRoot(toolsDir, rel, randomBytes(64), 0o600),
  );
  return path.join(toolsDir, rel);
}

/**
 * The target image in memory as the install's object source. When it is the tools root too, the
 * host's /dev, /proc, /sys, /tmp (and the configuration directory) are bound into it: a file the image has there is not read from
 * the tree (it would be the host's), but downloaded.
 */
export function stagedTargetFinder(
  staged: StagedImage,
  boundDirs: string[] = CHROOT_MOUNTS,
): ObjectFinder & TrustedFiles {
  const tree = stagedTreeFinder(staged.target);
  if (staged.target !== staged.tools) return tree;
  const bound = boundDirs.map((d) => `${d}/`);
  const usable = (wanted: Map<Digest, { size: number; paths: string[] }>) => {
    const out = new Map<Digest, { size: number; paths: string[] }>();
    for (const [d, w] of wanted) {
      const paths = w.paths.filter((p) => !bound.some((b) => p.startsWith(b)));
      if (paths.length) out.set(d, { size: w.size, paths });
    }
    return out;
  };
  return {
    find: (wanted, onObject) => tree.find(usable(wanted), onObject),
    trustedFiles: (wanted) => tree.trustedFiles(usable(wanted)),
  };
}

async function installImage(ctx: InstallContext, input: StorageInput, staged: StagedImage): Promise<void> {
  const { opts } = ctx;
  const { image, client } = input.images;
  const started = performance.now();
  const stats = await unpackImage(image.manifest, opts.mountPoint, {
    fetcher: client,
    // The configuration directory is bound in too (hookView).
    cache: stagedTargetFinder(staged, [...CHROOT_MOUNTS, path.resolve(opts.tftpDirectory).slice(1)]),
    ownMounts: true,
    onProgress: (p) => ctx.progress.bytes('storage', p.bytesDone, p.bytesTotal),
  });
  // Written means on the drive: a power cut after "installed" must not lose the image.
  for (const f of input.plan.storage.mounts) {
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
    `installed ${image.record.name}: ${stats.entries} entries, ${formatBytes(stats.bytesWritten)} in ${s.toFixed(2)} s including sync; ${stats.objectsFetched} objects had to be downloaded again`,
  );
}

/** fstab, crypttab and key, the configuration kept for reference, and the image's name. */
async function writeSystemFiles(ctx: InstallContext, input: StorageInput, made: MadeFileSystem[]): Promise<void> {
  const { opts, exec, record } = ctx;
  const root = opts.mountPoint;
  await exec.act('write /etc/fstab, /etc/crypttab and the key, /var/log/installer, /var/lib/initial-image', () => {
    writeInRoot(root, 'etc/fstab', renderFstab(made));
    for (const f of made) if (f.mountPoint !== '/') mkdirInRoot(root, f.mountPoint);
    if (record.keyFile) {
      writeInRoot(root, 'etc/crypttab', renderCrypttab(made));
      writeInRoot(root, KEY_FILE, fs.readFileSync(record.keyFile), 0o400);
    }
    copyTreeInRoot(root, opts.tftpDirectory, 'var/log/installer');
    if (fs.existsSync(path.join(opts.logDirectory, 'dhcp')))
      copyTreeInRoot(root, path.join(opts.logDirectory, 'dhcp'), 'var/log/installer/dhcp');
    const oldEtc = path.join(opts.logDirectory, 'old-etc.tar.gz');
    if (fs.existsSync(oldEtc)) writeInRoot(root, 'var/log/installer/old-etc.tar.gz', fs.readFileSync(oldEtc), 0o600);
    writeInRoot(root, 'var/lib/initial-image', `${input.images.image.record.name}\n`);
    // The installed system has no client certificate (the installer's stays in the installer
    // image): it reports over plain HTTP, which the boot server serves on the same port. The report
    // only confirms an install the boot server recorded, and only from the machine's own address.
    const bootServer = bootServerUrl(opts, input.config)?.replace(/^https:/, 'http:');
    if (bootServer) writeInRoot(root, BOOT_SERVER_FILE, `${bootServer}\n`);
  });
}

/** The boot loader, or the installed kernel loaded for kexec; says whether kexec is ready. */
async function makeBootable(ctx: InstallContext, input: StorageInput): Promise<boolean> {
  const { opts, exec, record } = ctx;
  const plan = input.plan.storage;
  const { boot, grubInstall } = input.plan;
  let kexecLoaded = false;
  const root = opts.mountPoint;
  const rootFs = plan.fileSystems.find((f) => f.mountPoint === '/')!;
  const bootFs = plan.fileSystems.find((f) => f.mountPoint === '/boot') ?? rootFs;
  const kernelOptions = DEFAULT_KERNEL_OPTIONS;
  if (input.config.layout?.UseKexec) {
    try {
      await kexecLoad(exec, root, boot, `root=UUID=${rootFs.uuid} ${kernelOptions}`);
      kexecLoaded = !exec.dryRun;
    } catch (err) {
      ctx.log.info(
        `kexec load failed, the machine will restart through its firmware instead: ${(err as Error).message}`,
      );
    }
  }
  if (!grubInstall) return kexecLoaded; // planning made sure UseKexec boots this one
  const grubCfg = renderGrubConfig({
    boot,
    bootFsUuid: bootFs.uuid,
    separateBoot: bootFs !== rootFs,
    rootUuid: rootFs.uuid,
    kernelOptions,
  });
  await exec.act('write /boot/grub/grub.cfg', () => writeInRoot(root, 'boot/grub/grub.cfg', grubCfg));
  await bindMounts(exec, root, (dir) => record.mounted.push(dir));
  const esp = plan.fileSystems.find((f) => f.type === 'vfat' && f.drive === plan.drives[0].device);
  await installGrub(exec, root, plan.firmware, plan.drives[0].device, esp?.mountPoint);
  if (plan.firmware === 'uefi' && esp && !kexecLoaded) {
    try {
      const entry = await bootNextToInstalledSystem(exec, plan.drives[0].device, esp.partition);
      ctx.log.info(`the next boot starts the installed system (${entry}, once)`);
    } catch (err) {
      // Without it the firmware still gets there, after its network boot options fail.
      ctx.log.info(`cannot set the firmware's next boot: ${(err as Error).message}`);
    }
  }
  return kexecLoaded;
}

/**
 * Dominator's installRoot binds: the new root at its own path in the tools root, and the
 * configuration directory in the new root, for hooks chrooted in either. Made once the image is
 * in (the tools tree is read as the image's source until then); cleanup undoes them.
 */
async function bindTarget(ctx: InstallContext, toolsDir: string, root: string): Promise<void> {
  const { opts } = ctx;
  await bindAt(ctx, root, toolsDir);
  await bindAt(ctx, path.resolve(opts.tftpDirectory), root);
}

/**
 * Binds the host directory `dir` at its own path under `into`; a directory under /dev, /proc,
 * /sys or /tmp is there already, through their binds (a bind of its own would be hidden under them).
 */
async function bindAt(ctx: InstallContext, dir: string, into: string): Promise<void> {
  const { exec, record } = ctx;
  const target = path.join(into, dir);
  if (CHROOT_MOUNTS.some((d) => dir.startsWith(`/${d}/`)) || mountPoints().includes(target)) return;
  await exec.act(`make the directory ${target}`, () => mkdirInRoot(into, dir));
  await exec.change('mount', ['--bind', dir, target]);
  if (!exec.dryRun) record.mounted.push(target);
}

/**
 * What Dominator's installer also gives its tools root, for hook programs (-networkConfigurator
 * gets its path) that chroot into it: the configuration directory at its own path, and etc/mtab.
 */
async function hookView(ctx: InstallContext, dir: string): Promise<void> {
  const { exec, opts } = ctx;
  await bindAt(ctx, path.resolve(opts.tftpDirectory), dir);
  const mtab = path.join(dir, 'etc', 'mtab');
  if (!fs.lstatSync(mtab, { throwIfNoEntry: false }))
    await exec.act(`link ${mtab} to /proc/mounts`, () => {
      mkdirInRoot(dir, 'etc');
      fs.symlinkSync('/proc/mounts', mtab);
    });
}
