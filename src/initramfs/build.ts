// `cradle build-installer`: gathers the facts about the build host (kernel, modules, libraries,
// busybox applets), bundles the installer, and writes the kernel and the initramfs (cpio newc,
// zstd) planned by installer-image.ts, with a report of what takes the space.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { run } from '../system/run.ts';
import { buildDirFor, placeBuilt, pruneCache } from '../util/build-cache.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { type Bundle, bundleInstaller, packageFiles, UNBUNDLED_PACKAGES } from './bundle.ts';
import { cpioNewc, type CpioEntry } from './cpio.ts';
import { FIRST_STAGE, INSTALLER_KERNEL, SECOND_STAGE, SECOND_STAGE_MOUNT } from './installer-files.ts';
import {
  ALL_IMAGE_MODULES,
  IMAGE_TOOLS,
  planFirstStage,
  planSecondStage,
  type Category,
  type InstallerImageFacts,
  type PlannedEntry,
} from './installer-image.ts';
import { slimNodeRuntime } from './node-runtime.ts';
import { writeSecondStage } from './squashfs.ts';
import { hostProgram, modulePathInTree, RUNTIME_LIBRARIES, resolveLibraries, resolveModules } from './resolve.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface BuildOptions {
  out: string;
  /** Debian kernel image; default the newest /boot/vmlinuz-*. */
  kernel?: string;
  compression: 'zstd' | 'none';
  /** Directory of configuration files to pre-inject as /tftpdata (config.json, storage-layout.json, …). */
  tftpdata?: string;
  /** Flags written to /etc/installer/flags.default. */
  flags?: string[];
  iso?: boolean;
  buildTime?: Date;
  /** The bundled installer, when the caller has it already (cachedInstallerImage keys on it). */
  bundle?: Bundle;
  /** Dominator's TLS files for the image: /etc/ssl/CA.pem and /etc/ssl/installer/{cert,key}.pem. */
  tls?: { ca: string; cert: string; key: string };
}

export interface BuildReport {
  kernel: string;
  kernelVersion: string;
  /** The first stage. */
  initrd: string;
  /** The second stage (installer-files.ts). */
  stage2: string;
  iso?: string;
  /** The first stage's compression (the second stage is a squashfs, always compressed). */
  compression: 'zstd' | 'none';
  /** Uncompressed bytes per part of the image, both stages. */
  parts: Record<Category, number>;
  files: number;
  uncompressedBytes: number;
  initrdBytes: number;
  stage2Bytes: number;
  /** The squashfs's digest, as the first stage carries it. */
  stage2Sha256: string;
  kernelBytes: number;
  modules: string[];
  buildTime: string;
}

/** The newest Debian kernel under /boot. */
export function newestKernel(bootDir = '/boot'): string {
  const kernels = fs.readdirSync(bootDir).filter((n) => /^vmlinuz-\d/.test(n));
  if (!kernels.length) throw new Error(`no kernel in ${bootDir}: install linux-image-amd64 or pass --kernel FILE`);
  kernels.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return path.join(bootDir, kernels.at(-1)!);
}

export function kernelVersionOf(kernel: string): string {
  const m = /^vmlinuz-(.+)$/.exec(path.basename(kernel));
  if (!m)
    throw new Error(
      `${kernel}: the kernel's file name must be vmlinuz-VERSION (Debian's naming), so its modules can be found`,
    );
  if (!fs.existsSync(`/lib/modules/${m[1]}/modules.dep`))
    throw new Error(`no modules for kernel ${m[1]} in /lib/modules/${m[1]}`);
  return m[1];
}

function findLibrary(name: string): string {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`library ${name} is not installed here`);
}

/** busybox's applets as `busybox --list-full` names them (`usr/bin/wget`, `sbin/ip`, …). */
export function busyboxApplets(busybox = hostProgram('busybox')): string[] {
  return execFileSync(busybox, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

/** depmod's index files (modules.dep, modules.alias, …) for exactly these modules. */
async function moduleIndex(
  kernelVersion: string,
  modules: { path: string }[],
  work: string,
): Promise<{ name: string; data: Uint8Array }[]> {
  const src = `/lib/modules/${kernelVersion}`;
  const dst = path.join(work, 'lib/modules', kernelVersion);
  for (const m of modules) {
    const rel = modulePathInTree(kernelVersion, m.path);
    fs.mkdirSync(path.dirname(path.join(dst, rel)), { recursive: true });
    fs.copyFileSync(m.path, path.join(dst, rel));
  }
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
    if (fs.existsSync(path.join(src, f))) fs.copyFileSync(path.join(src, f), path.join(dst, f));
  }
  await run('depmod', ['-b', work, kernelVersion]);
  return fs
    .readdirSync(dst)
    .filter((n) => n.startsWith('modules.'))
    .sort()
    .map((name) => ({ name, data: fs.readFileSync(path.join(dst, name)) }));
}

export async function gatherFacts(opts: BuildOptions, work: string): Promise<InstallerImageFacts> {
  const kernel = opts.kernel ?? newestKernel();
  const kernelVersion = kernelVersionOf(kernel);
  const modules = await resolveModules(kernelVersion, ALL_IMAGE_MODULES);
  const tools = IMAGE_TOOLS.map((t) => hostProgram(t));
  const node = path.join(work, 'node');
  await slimNodeRuntime(path.join(repoRoot, 'node_modules/.bin/node'), node, work);
  const packages = UNBUNDLED_PACKAGES.map((name) => ({ name, files: packageFiles(name) }));
  const addons = packages.flatMap((p) => p.files.filter((f) => f.rel.endsWith('.node')).map((f) => f.from));
  const libraries = [
    ...new Set([...(await resolveLibraries([...tools, node, ...addons])), ...RUNTIME_LIBRARIES.map(findLibrary)]),
  ].sort();
  const busybox = hostProgram('busybox');
  const tftpdata = opts.tftpdata
    ? fs
        .readdirSync(opts.tftpdata)
        .filter((n) => fs.statSync(path.join(opts.tftpdata!, n)).isFile())
        .sort()
        .map((name) => ({ name, data: fs.readFileSync(path.join(opts.tftpdata!, name)) }))
    : undefined;
  return {
    kernelVersion,
    modules,
    moduleIndex: await moduleIndex(kernelVersion, modules, path.join(work, 'modules')),
    busyboxApplets: busyboxApplets(busybox),
    busybox,
    tools,
    libraries,
    node,
    bundle: opts.bundle ?? (await bundleInstaller()),
    init: fs.readFileSync(path.join(import.meta.dirname, 'init.sh'), 'utf8'),
    buildTime: opts.buildTime ?? new Date(),
    ...(tftpdata ? { tftpdata } : {}),
    ...(opts.flags?.length ? { flags: opts.flags } : {}),
    packages,
    ...(opts.tls
      ? {
          tls: {
            ca: fs.readFileSync(opts.tls.ca),
            cert: fs.readFileSync(opts.tls.cert),
            key: fs.readFileSync(opts.tls.key),
          },
        }
      : {}),
  };
}

/** The planned entries as cpio entries, reading the host files; and bytes per category. */
export function materialise(plan: PlannedEntry[]): { entries: CpioEntry[]; parts: Record<Category, number> } {
  const parts = {
    'node runtime': 0,
    installer: 0,
    libraries: 0,
    'kernel modules': 0,
    tools: 0,
    busybox: 0,
    configuration: 0,
    layout: 0,
  } as Record<Category, number>;
  const entries = plan.map((e): CpioEntry => {
    if (e.type !== 'file') {
      parts.layout += e.type === 'symlink' ? e.target.length : 0;
      return e;
    }
    const data = 'data' in e ? e.data : fs.readFileSync(e.from);
    parts[e.category] += data.length;
    return { type: 'file', path: e.path, data, mode: e.mode };
  });
  return { entries, parts };
}

export async function buildInstallerImage(opts: BuildOptions): Promise<BuildReport> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-build-installer-'));
  const stage2 = path.join(opts.out, SECOND_STAGE);
  const stage2Tmp = `${stage2}.tmp-${process.pid}`;
  try {
    const facts = await gatherFacts(opts, work);
    const mtime = Math.floor(facts.buildTime.getTime() / 1000);
    fs.mkdirSync(opts.out, { recursive: true });
    // The second stage first: the first carries its digest.
    const second = materialise(planSecondStage(facts));
    const { sha256, bytes: stage2Bytes } = await writeSecondStage(second.entries, SECOND_STAGE_MOUNT, stage2Tmp, {
      work,
      mtime,
    });
    const first = materialise(planFirstStage(facts, sha256));
    const raw = Buffer.concat(cpioNewc(first.entries, mtime));
    const initrd =
      opts.compression === 'zstd'
        ? zlib.zstdCompressSync(raw, {
            params: {
              [zlib.constants.ZSTD_c_compressionLevel]: 19,
              [zlib.constants.ZSTD_c_nbWorkers]: os.availableParallelism(),
            },
          })
        : raw;
    const kernel = opts.kernel ?? newestKernel();
    writeFileAtomic(path.join(opts.out, INSTALLER_KERNEL), fs.readFileSync(kernel));
    // A plain zstd file, unpadded: what follows it at boot is compressed (the second stage,
    // squashfs.ts), which Linux finds at any offset; concatenatedInitrds pads before plain archives.
    writeFileAtomic(path.join(opts.out, FIRST_STAGE), initrd);
    fs.renameSync(stage2Tmp, stage2);
    const parts = { ...first.parts };
    for (const [k, n] of Object.entries(second.parts) as [Category, number][]) parts[k] += n;
    const secondBytes = second.entries.reduce((n, e) => n + (e.type === 'file' ? e.data.length : 0), 0);
    const report: BuildReport = {
      kernel: path.join(opts.out, INSTALLER_KERNEL),
      kernelVersion: facts.kernelVersion,
      initrd: path.join(opts.out, FIRST_STAGE),
      stage2,
      compression: opts.compression,
      parts,
      files: [...first.entries, ...second.entries].filter((e) => e.type === 'file').length,
      uncompressedBytes: raw.length + secondBytes,
      initrdBytes: initrd.length,
      stage2Bytes,
      stage2Sha256: sha256,
      kernelBytes: fs.statSync(kernel).size,
      modules: facts.modules.map((m) => m.name),
      buildTime: facts.buildTime.toISOString(),
    };
    if (opts.iso) {
      const { buildIso } = await import('./iso.ts');
      report.iso = await buildIso(opts.out, work);
    }
    writeFileAtomic(path.join(opts.out, 'build-info.json'), `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(stage2Tmp, { force: true });
  }
}

/**
 * The installer image for this source tree and build host, built once into the cache: keyed by
 * the bundled installer, the files that plan the image, the kernel, Node and busybox.
 */
export async function cachedInstallerImage(
  cacheDir: string,
  kernel = newestKernel(),
  tls?: BuildOptions['tls'],
): Promise<string> {
  const bundle = await bundleInstaller();
  const hash = createHash('sha256').update(bundle.main);
  for (const t of bundle.threads) hash.update(t.name).update(t.data);
  for (const name of UNBUNDLED_PACKAGES)
    for (const f of packageFiles(name)) hash.update(f.rel).update(fs.readFileSync(f.from));
  if (tls) for (const f of [tls.ca, tls.cert, tls.key]) hash.update(fs.readFileSync(f));
  for (const f of [
    'init.sh',
    'installer-image.ts',
    'installer-files.ts',
    'build.ts',
    'resolve.ts',
    'cpio.ts',
    'node-runtime.ts',
    'squashfs.ts',
  ])
    hash.update(fs.readFileSync(path.join(import.meta.dirname, f)));
  for (const f of [kernel, path.join(repoRoot, 'node_modules/.bin/node'), hostProgram('busybox')]) {
    const st = fs.statSync(f);
    hash.update(`${f} ${st.size} ${st.mtimeMs}\n`);
  }
  const dir = path.join(cacheDir, `installer-image-${hash.digest('hex').slice(0, 16)}`);
  if (fs.existsSync(path.join(dir, 'build-info.json'))) return dir;
  const tmp = buildDirFor(dir);
  await buildInstallerImage({ out: tmp, kernel, compression: 'zstd', bundle, tls });
  placeBuilt(tmp, dir, 'build-info.json');
  pruneCache('installer-image-');
  return dir;
}
