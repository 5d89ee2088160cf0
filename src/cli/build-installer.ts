// `cradle build-installer`: the installer image (kernel + initramfs, optionally an ISO).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { formatBytes } from '../util/format.ts';
import type { BuildReport } from '../initramfs/build.ts';
import type { MachineFile } from '../initramfs/machine-iso.ts';
import { HEAD_PATHS, readEnv } from '../setup/services.ts';
import { dbOption, readLayout, withDb } from './db.ts';
import { tlsTriple } from './program.ts';

export function sizeTable(r: BuildReport): string {
  const rows = Object.entries(r.parts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const labels = {
    all: 'both stages, uncompressed',
    first: `first stage (initrd.img), ${r.compression === 'zstd' ? 'zstd' : 'as written'}`,
    second: 'second stage (stage2.img), squashfs',
  };
  const width = Math.max(...rows.map(([k]) => k.length), ...Object.values(labels).map((l) => l.length));
  const line = (label: string, n: number, share?: number) =>
    `  ${label.padEnd(width)}  ${formatBytes(n).padStart(10)}${share === undefined ? '' : `  ${(share * 100).toFixed(1).padStart(5)}%`}`;
  return [
    ...rows.map(([k, n]) => line(k, n, n / r.uncompressedBytes)),
    line(labels.all, r.uncompressedBytes),
    line(labels.first, r.initrdBytes),
    line(labels.second, r.stage2Bytes),
    line('kernel', r.kernelBytes),
  ].join('\n');
}

/** A line of Dominator's flag file: `name=value` (a leading `--` is accepted and dropped). */
export function flagLine(flag: string): string {
  const line = flag.replace(/^--?/, '');
  if (!/^[A-Za-z][A-Za-z0-9-]*(=.*)?$/.test(line))
    throw new Error(
      `--flag takes NAME=VALUE with an installer flag's name (e.g. image-server-hostname=10.0.0.1), not '${flag}'`,
    );
  return line;
}

/**
 * A head-node ISO's kits and answers, checked before anything is built: every kit whole (its
 * objects verified), at least one OS kit and the Cradle kit, the answers valid.
 */
async function checkHeadNodeInputs(kits: string[], answers: string | undefined): Promise<void> {
  const { readKitFile } = await import('../kit/container.ts');
  const found = [];
  for (const k of kits) found.push((await readKitFile(k, () => {})).kit);
  if (!found.some((k) => k.kind === 'os'))
    throw new Error('--head-node needs an OS kit (--kit FILE): the head node installs its operating system from it');
  if (!found.some((k) => k.name === 'cradle'))
    throw new Error("--head-node needs the Cradle kit (--kit FILE, made by 'cradle kit build-cradle')");
  if (answers) {
    const { parseAnswers } = await import('../setup/answers.ts');
    parseAnswers(fs.readFileSync(answers, 'utf8'), answers);
  }
}

interface MachineIsoFlags {
  machine?: string;
  db: string;
  from?: string;
  address?: string;
  https?: boolean;
  imageServer?: string;
  bootServerUrl?: string;
  defaultImage?: string;
  defaultLayout?: string;
  toolsImage?: string;
}

/** A head node's own settings (its services' environment file), the defaults of a machine's ISO there. */
function headNodeSettings(): Record<string, string> {
  try {
    return readEnv(fs.readFileSync(HEAD_PATHS.env, 'utf8'));
  } catch {
    return {}; // not a head node
  }
}

/**
 * The machine's configuration files for its ISO, as the boot server would serve them: read (and
 * checked) before the image is built, so an unknown or unready machine costs no build.
 */
async function machineFiles(o: MachineIsoFlags & { machine: string }, scratch: string): Promise<MachineFile[]> {
  const { machineIsoSettings, machineTftpdata } = await import('../initramfs/machine-iso.ts');
  const head = headNodeSettings();
  const settings = machineIsoSettings({
    address: o.address ?? (head.CRADLE_ADDRESS || undefined),
    https: o.https ?? !!head.CRADLE_TLS,
    imageServer: o.imageServer,
    bootServerUrl: o.bootServerUrl,
    defaultImage: o.defaultImage ?? (head.CRADLE_DEFAULT_IMAGE || undefined),
    defaultLayout: o.defaultLayout ? readLayout(o.defaultLayout) : undefined,
    toolsImage: o.toolsImage,
  });
  return withDb(o.db, (inv) => machineTftpdata(inv, o.machine, settings, scratch));
}

/** --machine and --from against the other options: what each combination would mean is refused plainly. */
function checkMachineIsoFlags(
  o: MachineIsoFlags & { iso?: boolean; headNode?: boolean; tftpdata?: string },
  buildFlagsGiven: string[],
): void {
  if (o.machine) {
    if (!o.iso) throw new Error(`--machine ${o.machine} writes that machine's ISO: give --iso too`);
    if (o.headNode) throw new Error('--machine and --head-node make different ISOs: build them one at a time');
    if (o.tftpdata) throw new Error('--machine fills /tftpdata from the machine database: leave out --tftpdata');
  }
  if (o.from) {
    if (!o.machine)
      throw new Error("--from makes a machine's ISO from an image already built: give --machine HOST --iso");
    if (buildFlagsGiven.length)
      throw new Error(`--from takes the image as it was built: leave out ${buildFlagsGiven.join(', ')}`);
    for (const f of ['vmlinuz', 'initrd.img'])
      if (!fs.existsSync(path.join(o.from, f)))
        throw new Error(
          `--from ${o.from}: no ${f} there (an installer image is what 'cradle build-installer --out DIR' writes)`,
        );
  }
}

export function registerBuildInstallerCommand(program: Command): void {
  program
    .command('build-installer')
    .description('build the installer image: kernel and its two stages to boot over the network (and an ISO)')
    .requiredOption(
      '--out <dir>',
      'where to write vmlinuz, initrd.img, stage2.img, build-info.json (and installer.iso)',
    )
    .option('--kernel <file>', 'Debian kernel (vmlinuz-VERSION) whose modules to use (default: the newest in /boot)')
    .option(
      '--compression <kind>',
      "the first stage's compression: zstd, or none (faster to boot under emulation)",
      'zstd',
    )
    .option(
      '--tftpdata <dir>',
      'pre-inject these configuration files (config.json, storage-layout.json, …) as /tftpdata',
    )
    .option(
      '--flag <name=value...>',
      'installer flags for /etc/installer/flags.default, e.g. --flag image-server-hostname=10.0.0.1',
    )
    .option('--iso', 'also write installer.iso (BIOS and UEFI, for USB, CD or BMC virtual media)')
    .option('--head-node', 'also write head-node.iso: the setup (cradle setup) with --kit kits and --answers')
    .option(
      '--kit <file>',
      'a kit the head-node ISO carries (repeatable): the Cradle kit and an OS kit at least',
      (v: string, a: string[]) => [...a, v],
      [] as string[],
    )
    .option('--answers <file>', 'answers the head-node ISO carries (cradle/answers.yaml), checked now')
    .option('--setup-args <args>', "more kernel arguments for the head-node ISO's setup entry, e.g. cradle.wipe=yes")
    .option('--tls-ca <file>', "CA whose client certificates may use the installer's RPC and shell: /etc/ssl/CA.pem")
    .option(
      '--tls-cert <file>',
      "the installer's certificate (cradle pki issue installer installer): /etc/ssl/installer/cert.pem",
    )
    .option('--tls-key <file>', 'its key: /etc/ssl/installer/key.pem')
    .option(
      '--machine <hostname>',
      "with --iso: write HOSTNAME.iso, whose initramfs carries that machine's configuration files (/tftpdata) from the machine database, as the boot server would serve them: it installs the machine without DHCP or TFTP",
    )
    .addOption(dbOption())
    .option(
      '--from <dir>',
      'with --machine: the installer image already built there (vmlinuz, initrd.img), not a new build',
    )
    .option(
      '--address <ip>',
      "with --machine: the boot server's address as machines reach it (cradle server --address; on a head node its CRADLE_ADDRESS)",
    )
    .option(
      '--https',
      'with --machine: the servers serve HTTPS (cradle server --tls-cert; on a head node, when it has CRADLE_TLS)',
    )
    .option('--no-https', 'with --machine: the servers serve plain HTTP')
    .option('--image-server <address>', 'with --machine: the image server as machines reach it (default ADDRESS:6971)')
    .option('--boot-server-url <url>', 'with --machine: where the installer reports (default http://ADDRESS:6977)')
    .option(
      '--default-image <name>',
      'with --machine: the image when the machine names none (cradle server --default-image)',
    )
    .option(
      '--default-layout <file>',
      "with --machine: storage-layout.json when neither the machine nor its group has one (default: Dominator's default)",
    )
    .option('--tools-image <name>', 'with --machine: the installer tools image (tools-imagename)')
    .action(async (o: MachineIsoFlags & BuildFlags, cmd: Command) => {
      const buildFlags = ['kernel', 'compression', 'tftpdata', 'flag', 'tlsCa', 'tlsCert', 'tlsKey'];
      checkMachineIsoFlags(
        o,
        buildFlags
          .filter((k) => cmd.getOptionValueSource(k) === 'cli')
          .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`),
      );
      if (o.machine) await buildMachineIsoCommand({ ...o, machine: o.machine });
      else await buildImage(o);
    });
}

interface BuildFlags {
  out: string;
  kernel?: string;
  compression: string;
  tftpdata?: string;
  flag?: string[];
  iso?: boolean;
  headNode?: boolean;
  kit: string[];
  answers?: string;
  setupArgs?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  machine?: string;
}

/** The installer image into OUT (and its ISO, or the head-node ISO). */
async function buildImage(o: BuildFlags): Promise<void> {
  const tls = tlsTriple(o, 'an installer whose status page is read-only (no RPC, no remote shell)');
  for (const f of [o.tlsCa, o.tlsCert, o.tlsKey])
    if (f && !fs.existsSync(f)) throw new Error(`${f}: no such file (cradle pki, docs/pki.md)`);
  if (o.compression !== 'zstd' && o.compression !== 'none')
    throw new Error(`--compression takes zstd or none, not '${o.compression}'`);
  if (o.headNode) await checkHeadNodeInputs(o.kit, o.answers);
  const { buildInstallerImage } = await import('../initramfs/build.ts');
  const started = performance.now();
  const flags = (o.flag ?? []).map(flagLine);
  const r = await buildInstallerImage({
    out: o.out,
    kernel: o.kernel,
    compression: o.compression,
    tftpdata: o.tftpdata,
    flags,
    iso: o.iso && !o.machine,
    tls,
  });
  console.log(
    `installer image for kernel ${r.kernelVersion}: ${r.files} files, ${r.modules.length} modules, built in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  console.log(sizeTable(r));
  console.log(`wrote ${r.kernel}, ${r.initrd}, ${r.stage2}${r.iso ? `, ${r.iso}` : ''}`);
  if (o.headNode) {
    const { buildHeadNodeIso } = await import('../initramfs/iso.ts');
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-head-iso-'));
    try {
      const iso = await buildHeadNodeIso(o.out, work, path.join(o.out, 'head-node.iso'), {
        kits: o.kit,
        answers: o.answers,
        setupArgs: o.setupArgs,
      });
      console.log(
        `wrote ${iso}: ${o.kit.length} kits${o.answers ? ', answers' : ''}; its first entry runs cradle setup`,
      );
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
}

/** HOST.iso in OUT: the machine's files checked first, then the image built (or --from), then the ISO. */
async function buildMachineIsoCommand(o: MachineIsoFlags & BuildFlags & { machine: string }): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-machine-iso-'));
  try {
    const files = await machineFiles(o, work);
    if (!o.from) await buildImage(o);
    fs.mkdirSync(o.out, { recursive: true });
    const { buildMachineIso } = await import('../initramfs/iso.ts');
    const iso = await buildMachineIso(o.from ?? o.out, work, path.join(o.out, `${o.machine}.iso`), o.machine, files);
    console.log(
      `wrote ${iso}: the installer image${o.from ? ` of ${o.from}` : ''} with ${o.machine}'s configuration at /tftpdata (${files.map((f) => f.name).join(', ')}); booted from it, the installer needs no DHCP or TFTP`,
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
