// The head-node lab: a cluster from one ISO, on one host. A network namespace holds two switches,
// a public one (the lab's DHCP reserves the head node's address, and nothing else answers) and a
// provisioning one (nothing answers but the head node). A QEMU head node with two blank disks
// boots the head-node ISO, installs itself from its answers with no question, restarts through
// GRUB into its LVM root, moves its database into PostgreSQL and starts its services; then the
// compute nodes power on, network-boot from it alone and install its `compute` node group's image.
// The lab follows the head node on its serial console and, once it serves, through its API (as an
// operator whose CA the answers named); src/lab/head-lab-plan.ts is the lab on paper.
import { randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { buildHeadNodeIso } from '../initramfs/iso.ts';
import { cachedInstallerImage } from '../initramfs/build.ts';
import { missing, parseAnswers } from '../setup/answers.ts';
import { cacheDir } from '../util/build-cache.ts';
import { headLabKits } from './head-kits.ts';
import { type HeadLabPlan, HEAD_DISK_GIB, headLabPlan, labHeadAnswers, PROVISIONING, PUBLIC } from './head-lab-plan.ts';
import { labPki, type LabPki } from './lab-pki.ts';
import { DIE_WITH_PARENT, LabNetwork } from './network.ts';
import { ANSWERS_PATH, serveAnswersCommand } from './serve-answers.ts';
import { OVMF_VARS, qemuArgs, RunningMachine, type Firmware } from './qemu.ts';

export interface HeadLabOptions {
  dir: string;
  compute: number;
  firmware: Firmware;
  /** An answer file of the operator's (the lab adds its compute nodes and operators' CA if absent). */
  answers?: string;
  /**
   * The head node fetches its answers from the lab's web server on the public network (HTTPS, the
   * certificate pinned on the kernel line), not from the ISO: `cradle lab --answers` does.
   */
  answersOverHttps?: boolean;
  /** More setup arguments on the ISO's kernel line; default `cradle.wipe=yes` (the consent). */
  setupArgs?: string;
  /**
   * The previous run's cluster again: the head node starts from its disks, and the compute nodes
   * are reinstalled over their installed systems (marked by an operator at the head node).
   */
  rebirth: boolean;
  /**
   * A person answers the wizard on the head node's console: the ISO carries only the compute
   * nodes and the operators' CA, and no consent (the wizard's own confirmation is it).
   */
  interactive: boolean;
  headMemoryMiB: number;
  computeMemoryMiB: number;
  computeDiskGiB: number;
  accel: 'kvm' | 'tcg';
  namespace: string;
  log: (line: string) => void;
}

/** The answers server's port on the lab's public address. */
const ANSWERS_PORT = 8443;

export const HEAD_LAB_DEFAULTS: Omit<HeadLabOptions, 'log'> = {
  dir: '/var/tmp/cradle-head-lab',
  compute: 2,
  firmware: 'bios',
  headMemoryMiB: 2048,
  // The installer unpacks the image in memory (a tmpfs of half of it), and the head node's OS
  // image its compute nodes take is 770 MB: 1.5 GiB is not enough.
  computeMemoryMiB: 2048,
  computeDiskGiB: 8,
  accel: 'tcg',
  rebirth: false,
  interactive: false,
  namespace: 'cradle-head-lab',
};

/** Blank sparse disk files (and the firmware's own variables for UEFI). */
function blankDisk(file: string, gib: number): void {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, gib * 2 ** 30);
}

export class HeadLab {
  readonly opts: HeadLabOptions;
  readonly plan: HeadLabPlan;
  readonly net: LabNetwork;
  readonly logs: string;
  /** The lab's CA (the head node's operators' CA), its operator certificate and its server's. */
  pki?: LabPki;
  /** The head node's root password, kept in the lab directory (mode 600) for a login. */
  password = '';
  head?: RunningMachine;
  readonly computes = new Map<string, RunningMachine>();
  headPoweredOnAt = 0;
  readonly computePoweredOnAt = new Map<string, number>();

  constructor(opts: HeadLabOptions) {
    this.opts = opts;
    this.plan = headLabPlan(opts);
    this.logs = path.join(opts.dir, 'logs');
    this.net = new LabNetwork({
      namespace: opts.namespace,
      address: PROVISIONING.lab,
      prefix: PROVISIONING.prefix,
      bridge: PROVISIONING.bridge,
      ipv6: false,
    });
  }

  get passwordFile(): string {
    return path.join(this.opts.dir, 'head-root-password');
  }

  get fingerprintFile(): string {
    return path.join(this.opts.dir, 'head-fingerprint');
  }

  /**
   * The kits, the answers and the ISO carrying both; blank disks for the head node. For a rebirth,
   * the previous run's head node as it is.
   */
  async prepare(): Promise<void> {
    const { opts, plan } = this;
    fs.mkdirSync(this.logs, { recursive: true });
    this.pki = await labPki(path.join(cacheDir, 'lab-pki-head'), PUBLIC.router);
    if (opts.rebirth) {
      const missing = [plan.iso, ...plan.head.disks, this.passwordFile, ...plan.compute.map((c) => c.disk)].filter(
        (f) => !fs.existsSync(f),
      );
      if (missing.length)
        throw new Error(
          `--rebirth needs the previous run's cluster in ${opts.dir} (with as many compute nodes) and root's password for a login at the head node (not known after --interactive, or answers with a hashed password); missing ${missing.join(', ')}: run cradle lab --head-node first`,
        );
      this.password = fs.readFileSync(this.passwordFile, 'utf8').trim();
      opts.log(`rebirth: the head node starts from its disks in ${opts.dir}`);
      return;
    }
    const kits = await headLabKits(cacheDir, (l) => opts.log(`  ${l}`));
    const image = await cachedInstallerImage(cacheDir);
    this.password = randomBytes(12).toString('base64url');
    const answers = this.answersText();
    fs.writeFileSync(plan.answersFile, answers, { mode: 0o600 });
    // Root's password, for a login at the head node's console (a rebirth): the lab's own, or the
    // operator's when their answers give it in plain; the wizard's is the person's to know.
    const known = opts.interactive
      ? undefined
      : (parseAnswers(answers, plan.answersFile).rootPassword?.plain ?? undefined);
    fs.rmSync(this.passwordFile, { force: true });
    if (known) {
      this.password = known;
      fs.writeFileSync(this.passwordFile, `${known}\n`, { mode: 0o600 });
    }
    opts.log(`answers: ${plan.answersFile}${opts.answers ? ` (from ${opts.answers})` : ''}`);
    opts.log('head-node ISO: the installer image, the kits and the answers');
    const work = path.join(opts.dir, 'iso-work');
    fs.rmSync(work, { recursive: true, force: true });
    const consent = opts.setupArgs ?? (opts.interactive ? '' : 'cradle.wipe=yes');
    await buildHeadNodeIso(image, work, plan.iso, {
      kits,
      ...(opts.answersOverHttps
        ? { setupArgs: `cradle.answers=${this.answersUrl} cradle.answers-fingerprint=${this.answersPin()} ${consent}` }
        : { answers: plan.answersFile, setupArgs: consent }),
    });
    fs.rmSync(work, { recursive: true, force: true });
    for (const d of plan.head.disks) blankDisk(d, HEAD_DISK_GIB);
    if (plan.head.uefiVars) fs.copyFileSync(OVMF_VARS, plan.head.uefiVars);
  }

  /**
   * The lab's answers, or the operator's with the lab's compute nodes and operators' CA added
   * where the file names none (checked by the setup's own parser first).
   */
  answersText(): string {
    const lab = labHeadAnswers(this.plan, {
      password: this.password,
      operatorCa: fs.readFileSync(this.pki!.ca, 'utf8'),
    });
    if (this.opts.interactive)
      return toYaml({ cradleSetup: lab.cradleSetup, nodes: lab.nodes, operators: lab.operators });
    if (!this.opts.answers) return toYaml(lab);
    const text = fs.readFileSync(this.opts.answers, 'utf8');
    const parsed = parseAnswers(text, this.opts.answers);
    // Unattended: a gap would leave the wizard waiting on a console nobody watches.
    const gaps = missing(parsed);
    if (gaps.length)
      throw new Error(
        `${this.opts.answers} leaves out ${gaps.join(', ')}: the head node installs from it unattended; complete it (the lab's own is ${this.plan.answersFile}), or answer the wizard with --interactive`,
      );
    const given = parsed as Record<string, unknown>;
    return toYaml({ ...given, nodes: given.nodes ?? lab.nodes, operators: given.operators ?? lab.operators });
  }

  /** The lab's web server for the answers (answersOverHttps), on the public network. */
  get answersUrl(): string {
    return `https://${PUBLIC.router}:${ANSWERS_PORT}${ANSWERS_PATH}`;
  }

  /** The SHA-256 fingerprint of the answers server's certificate, which the ISO pins. */
  answersPin(): string {
    return new X509Certificate(fs.readFileSync(this.pki!.server.cert)).fingerprint256;
  }

  /** The namespace, its two switches, and the public side's DHCP (the head node's address only). */
  startNetworks(): void {
    this.net.create();
    this.net.addBridge(PUBLIC.bridge, `${PUBLIC.router}/24`);
    this.net.startDhcpReservations(
      PUBLIC.bridge,
      {
        network: PUBLIC.network,
        mask: PUBLIC.mask,
        router: PUBLIC.router,
        hosts: [{ mac: this.plan.head.nics[0].mac, ip: PUBLIC.head }],
        leases: path.join(this.opts.dir, 'public.leases'),
      },
      path.join(this.logs, 'public-dhcp.log'),
    );
    if (this.opts.answersOverHttps)
      this.net.spawn(
        serveAnswersCommand({
          cert: this.pki!.server.cert,
          key: this.pki!.server.key,
          file: this.plan.answersFile,
          listen: `${PUBLIC.router}:${ANSWERS_PORT}`,
        }),
        path.join(this.logs, 'answers-server.log'),
      );
    for (const n of this.plan.head.nics) this.net.addTap(n.tap, n.bridge);
    for (const c of this.plan.compute) this.net.addTap(c.tap, PROVISIONING.bridge);
  }

  private qemu(args: string[], log: string, console: 'stdio' | 'pty' = 'stdio'): RunningMachine {
    fs.appendFileSync(log, `\n=== power on ${new Date().toISOString()} ===\n`);
    return new RunningMachine(
      ['ip', 'netns', 'exec', this.opts.namespace, ...DIE_WITH_PARENT, 'qemu-system-x86_64', ...args],
      log,
      { console },
    );
  }

  /** The head node: its disks first (blank, the firmware falls through to the ISO), then the CD. */
  powerOnHead(): RunningMachine {
    const h = this.plan.head;
    this.head = this.qemu(
      qemuArgs({
        console: 'pty',
        consoleLog: h.serialLog,
        name: 'head',
        nics: h.nics.map((n) => ({ tap: n.tap, mac: n.mac })),
        disks: h.disks,
        firmware: this.opts.firmware,
        memoryMiB: this.opts.headMemoryMiB,
        accel: this.opts.accel,
        uefiVars: h.uefiVars,
        cdrom: this.plan.iso,
        netBoot: false,
      }),
      h.serialLog,
      'pty',
    );
    this.headPoweredOnAt = Date.now();
    return this.head;
  }

  /** The planned compute nodes, or those named (in the plan's order); a name not planned is refused. */
  computeNodes(names?: string[]): HeadLabPlan['compute'] {
    if (!names) return this.plan.compute;
    const planned = this.plan.compute.map((c) => c.hostname);
    const unknown = names.filter((n) => !planned.includes(n));
    if (unknown.length)
      throw new Error(
        `compute node ${unknown.join(', ')}: not in this lab (it has ${planned.join(', ') || 'none'}); name planned nodes, or plan more with compute: N`,
      );
    return this.plan.compute.filter((c) => names.includes(c.hostname));
  }

  /**
   * The compute nodes, or those named (a benchmark powers on a few at a time): they network-boot
   * from the head node (blank disks, unless a rebirth).
   */
  powerOnComputes(names?: string[]): void {
    for (const c of this.computeNodes(names)) {
      if (!this.opts.rebirth) blankDisk(c.disk, this.opts.computeDiskGiB);
      if (c.uefiVars && (!this.opts.rebirth || !fs.existsSync(c.uefiVars))) fs.copyFileSync(OVMF_VARS, c.uefiVars);
      this.computes.set(
        c.hostname,
        this.qemu(
          qemuArgs({
            name: c.hostname,
            nics: [{ tap: c.tap, mac: c.mac }],
            disks: [c.disk],
            firmware: this.opts.firmware,
            memoryMiB: this.opts.computeMemoryMiB,
            accel: this.opts.accel,
            uefiVars: c.uefiVars,
          }),
          c.serialLog,
        ),
      );
      this.computePoweredOnAt.set(c.hostname, Date.now());
    }
  }

  private destroying?: Promise<void>;

  /** Stops the machines and whatever runs in the namespace, and removes it; safe to call again. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      await Promise.all([this.head?.stop(), ...[...this.computes.values()].map((m) => m.stop())]);
      await this.net.destroy();
    })().finally(() => {
      this.destroying = undefined;
    });
    return this.destroying;
  }
}
