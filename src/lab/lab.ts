// The lab: Cradle's whole job on one host. A network namespace holds the boot server and the image
// server; QEMU machines with blank disks are plugged into its bridge, power on, PXE-boot through our
// DHCP, TFTP and HTTP into the installer image, install the OS image, kexec or reboot into it, and
// the installed system reports in. State (database, image store, disks, logs) stays in one
// directory, so a second run with `rebirth` reinstalls the same machines over their old systems.
import fs from 'node:fs';
import path from 'node:path';
import type { Role } from '../boot/server.ts';
import { addImage } from '../image/pack/add.ts';
import { ImageStore } from '../image/store/store.ts';
import { cachedInstallerImage } from '../initramfs/build.ts';
import { openInventory } from '../inventory/open.ts';
import type { Inventory, Machine, MachinePatch } from '../inventory/types.ts';
import { IMAGESERVER_PORT } from '../util/ports.ts';
import { debianRootfs, DEMO_VERSION } from './debian-rootfs.ts';
import { cacheDir } from '../util/build-cache.ts';
import { DIE_WITH_PARENT, LabNetwork } from './network.ts';
import { OVMF_VARS, qemuArgs, RunningMachine, type Firmware } from './qemu.ts';
import { done, type Timeline, timelineFrom } from './report.ts';
import { labPki, type LabPki } from './lab-pki.ts';
import { TINY_OS_VERSION, tinyOs } from './tiny-os.ts';

const cradleBin = path.resolve(import.meta.dirname, '../../bin/cradle');

export type LabImage = 'demo' | 'tiny';

export interface LabOptions {
  /** Where the lab keeps its database, image store, disks and logs. */
  dir: string;
  machines: number;
  image: LabImage;
  firmware: Firmware;
  /** NICs per machine: 1, or 3 for Dominator's management NIC plus a bonded VLAN trunk. */
  nics: number;
  diskGiB: number;
  memoryMiB: number;
  /** The installed system is started with kexec (else through the firmware and GRUB). */
  kexec: boolean;
  /** Encrypt /home, /data and the rest (LUKS2). */
  encrypt: boolean;
  /**
   * The machines belong to this node group of the lab's depot (the lab directory: its store is
   * the depot's) and install its newest image with its layout, instead of the lab's OS image.
   * The group must exist and be built (`cradle nodegroup add|build` with the lab's --db).
   */
  nodeGroup?: string;
  /** Extra kernel arguments for the installer, e.g. cradle.failure-wait=10. */
  installerArgs?: string;
  /** Start the image server (a test of failure leaves it off). */
  imageServer: boolean;
  /**
   * Mutual TLS between the parts, as a fleet runs: the lab's CA signs the servers', the
   * installer image's and the operator's certificates (kept in the cache, so the image is too).
   */
  tls: boolean;
  /**
   * What the boot server serves (`cradle server --roles`; default all three). Without dhcp, no
   * DHCP server is on the lab's network: a site without DHCP, whose machines boot their own
   * installer medium (LabMachine.cdrom).
   */
  bootServerRoles?: Role[];
  namespace: string;
  /**
   * The link between the servers and the machines at this rate, in Mbit/s, shared by every
   * machine in each direction (link-shaping.ts); unlimited when absent.
   */
  linkMbit?: number;
  log: (line: string) => void;
}

export const LAB_DEFAULTS: Omit<LabOptions, 'log'> = {
  dir: '/var/tmp/cradle-lab',
  machines: 2,
  image: 'demo',
  firmware: 'bios',
  nics: 1,
  diskGiB: 8,
  memoryMiB: 1536,
  kexec: true,
  encrypt: false,
  imageServer: true,
  tls: true,
  namespace: 'cradle-lab',
};

/** The line each role's start ends with in the boot server's log (src/boot/server.ts). */
const ROLE_STARTED: Record<Role, RegExp> = { http: /HTTP boot on /, tftp: /TFTP on /, dhcp: /DHCP on / };

export const SERVER = '10.77.0.1';
const IMAGE_NAMES: Record<LabImage, string> = {
  demo: `demo/bookworm-v${DEMO_VERSION}`,
  tiny: `tiny/v${TINY_OS_VERSION}`,
};

export interface LabMachine {
  hostname: string;
  macs: string[];
  ip: string;
  disk: string;
  uefiVars?: string;
  serialLog: string;
  /**
   * An installer medium in its CD drive (a machine's ISO): it starts from its disks, then the CD,
   * never from the network.
   */
  cdrom?: string;
  running?: RunningMachine;
  /** When this run marked it for install (birth or rebirth), and powered it on. */
  markedAt?: number;
  poweredOnAt?: number;
}

/** Dominator's example networks: management on the first NIC; VLANs 100 and 120 bridged on a trunk. */
const SUBNETS = [
  { id: 'lab', gateway: SERVER, mask: '255.255.255.0', domainName: 'lab.test', dnsServers: [SERVER], manage: false },
  {
    id: 'dev',
    gateway: '10.77.100.1',
    mask: '255.255.255.0',
    domainName: 'dev.lab.test',
    dnsServers: [SERVER],
    manage: true,
    vlanId: 100,
  },
  {
    id: 'prod',
    gateway: '10.77.120.1',
    mask: '255.255.255.0',
    domainName: 'prod.lab.test',
    dnsServers: [SERVER],
    manage: true,
    vlanId: 120,
  },
];

export function labLayout(o: Pick<LabOptions, 'encrypt' | 'kexec' | 'firmware'>): Record<string, unknown> {
  return {
    BootDriveLayout: [
      { FileSystemType: 'ext4', MountPoint: '/', MinimumFreeBytes: 1 << 30 },
      { FileSystemType: 'ext4', MountPoint: '/home', MinimumFreeBytes: 256 << 20 },
    ],
    ExtraMountPointsBasename: '/data/',
    Encrypt: o.encrypt,
    UseKexec: o.kexec,
  };
}

const hex = (n: number) => n.toString(16).padStart(2, '0');

export class Lab {
  readonly opts: LabOptions;
  readonly net: LabNetwork;
  readonly machines: LabMachine[] = [];
  inventory?: Inventory;
  installerDir?: string;
  /** The lab's certificates, with TLS. */
  pki?: LabPki;
  readonly db: string;
  readonly store: string;
  readonly logs: string;
  private readonly taps = new Set<string>();

  constructor(opts: LabOptions) {
    this.opts = opts;
    this.net = new LabNetwork({ namespace: opts.namespace, address: SERVER, prefix: 24 });
    this.db = `sqlite:${path.join(opts.dir, 'inventory.db')}`;
    this.store = path.join(opts.dir, 'images');
    this.logs = path.join(opts.dir, 'logs');
    for (let i = 1; i <= opts.machines; i++) {
      const hostname = `lab${i}`;
      this.machines.push({
        hostname,
        macs: Array.from({ length: opts.nics }, (_, n) => `52:54:00:77:${hex(n)}:${hex(i)}`),
        ip: `10.77.0.${10 + i}`,
        disk: path.join(opts.dir, `${hostname}.disk`),
        ...(opts.firmware === 'uefi' ? { uefiVars: path.join(opts.dir, `${hostname}.uefi-vars`) } : {}),
        serialLog: path.join(this.logs, `${hostname}.console.log`),
      });
    }
  }

  get imageName(): string {
    return IMAGE_NAMES[this.opts.image];
  }

  /** The installer image and the OS image (built once, cached), the store and the database. */
  async prepare(): Promise<void> {
    const { opts } = this;
    const { log } = opts;
    fs.mkdirSync(this.logs, { recursive: true });
    log('installer image: building or taking it from the cache');
    this.pki = opts.tls ? await labPki(path.join(cacheDir, 'lab-pki')) : undefined;
    this.installerDir = await cachedInstallerImage(cacheDir, undefined, this.pki?.installer);
    const store = new ImageStore(this.store).init();
    if (!opts.nodeGroup && !store.getRecord(this.imageName)) {
      log(
        `OS image ${this.imageName}: building it (${opts.image === 'demo' ? 'mmdebstrap, once per host' : "from this host's kernel and busybox"}) and adding it to the store`,
      );
      const source = opts.image === 'demo' ? debianRootfs('demo') : await tinyOs();
      await addImage(store, this.imageName, source, { warn: (w: string) => log(`  ${w}`) });
    }
    this.inventory = await openInventory(this.db);
    const inv = this.inventory;
    for (const s of SUBNETS) if (!(await inv.getSubnet(s.id))) await inv.addSubnet(s);
    for (const m of this.machines) {
      // A machine of a node group takes the group's image and layout: it names neither.
      const fields: MachinePatch & { macs: string[]; tags: Record<string, string> } = {
        macs: m.macs,
        ip: m.ip,
        subnetId: 'lab',
        ...(opts.nodeGroup
          ? { nodeGroup: opts.nodeGroup, tags: {}, storageLayout: undefined }
          : { nodeGroup: undefined, tags: { RequiredImage: this.imageName }, storageLayout: labLayout(opts) }),
      };
      const existing = await inv.getMachine(m.hostname);
      if (existing) await inv.updateMachine(m.hostname, fields);
      else await inv.addMachine({ hostname: m.hostname, ...fields, state: 'unknown' });
    }
  }

  /** Machines to install: blank disks and `birth`, or their installed disks and `rebirth`. */
  async markForInstall(rebirth: boolean): Promise<void> {
    for (const m of this.machines) {
      const blank = !rebirth || !fs.existsSync(m.disk);
      if (blank) {
        fs.rmSync(m.disk, { force: true });
        fs.writeFileSync(m.disk, '');
        fs.truncateSync(m.disk, this.opts.diskGiB * 2 ** 30);
      }
      // A blank machine starts with the firmware's own variables too.
      if (m.uefiVars && (blank || !fs.existsSync(m.uefiVars))) fs.copyFileSync(OVMF_VARS, m.uefiVars);
      m.markedAt = Date.now();
      await this.inventory!.setState(
        m.hostname,
        rebirth ? 'rebirth' : 'birth',
        rebirth ? 'lab: reinstall over the old system' : 'lab: install on blank disks',
      );
    }
  }

  /** The network namespace, the image server and the boot server in it. */
  async startServers(): Promise<void> {
    const { opts } = this;
    this.net.create();
    if (opts.linkMbit) {
      this.net.shapeLink(opts.linkMbit);
      opts.log(`the lab's link: ${opts.linkMbit} Mbit/s each way, shared by the machines`);
    }
    this.taps.clear();
    this.net.startRouterAdvertisements(path.join(this.logs, 'router-advertisements.log'));
    const tlsArgs = (p: { cert: string; key: string }) =>
      this.pki ? ['--tls-cert', p.cert, '--tls-key', p.key, '--tls-ca', this.pki.ca] : [];
    if (opts.imageServer)
      this.net.spawn(
        [
          cradleBin,
          'imageserver',
          ...(opts.nodeGroup ? ['--depot', opts.dir] : ['--store', this.store]),
          '--listen',
          SERVER,
          ...(this.pki ? tlsArgs(this.pki.server) : []),
        ],
        path.join(this.logs, 'imageserver.log'),
      );
    const installerArgs = ['console=ttyS0,115200n8', 'quiet', opts.installerArgs ?? ''].join(' ').trim();
    const roles = opts.bootServerRoles ?? ['dhcp', 'tftp', 'http'];
    const log = path.join(this.logs, 'bootserver.log');
    // The log is kept across runs: only what this server writes counts.
    const from = fs.existsSync(log) ? fs.statSync(log).size : 0;
    const server = this.net.spawn(
      [
        cradleBin,
        'server',
        '--roles',
        roles.join(','),
        '--db',
        this.db,
        '--interface',
        this.net.bridge,
        '--address',
        SERVER,
        '--installer-dir',
        this.installerDir!,
        '--image-server',
        `${this.pki ? 'https://' : ''}${SERVER}:${IMAGESERVER_PORT}`,
        '--kernel-args',
        installerArgs,
        ...(this.pki ? tlsArgs(this.pki.server) : []),
      ],
      log,
    );
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      // Listening on every role: they start HTTP, TFTP, DHCP in turn, so the last one's line says all are.
      const last = (['dhcp', 'tftp', 'http'] as const).find((r) => roles.includes(r)) ?? 'http';
      if (ROLE_STARTED[last].test(fs.readFileSync(log).subarray(from).toString())) {
        const ns = `ip netns exec ${opts.namespace}`;
        opts.log(
          this.pki
            ? `boot server up (mutual TLS); dashboard: ${ns} curl --cacert ${this.pki.ca} --cert ${this.pki.operator.cert} --key ${this.pki.operator.key} https://${SERVER}:6977/`
            : `boot server up; dashboard: ${ns} curl http://${SERVER}:6977/`,
        );
        return;
      }
      if (server.exitCode !== null || server.signalCode !== null)
        throw new Error(`the boot server stopped (exit ${server.exitCode ?? server.signalCode}): see ${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the boot server did not start within 30 s: see ${log}`);
  }

  /** Plugs the machine's NICs into the lab's switch and powers it on. */
  powerOn(m: LabMachine, accel: 'kvm' | 'tcg' = 'tcg'): RunningMachine {
    const taps = m.macs.map((_, n) => `tap-${m.hostname}-${n}`);
    for (const t of taps) {
      if (this.taps.has(t)) continue;
      this.net.addTap(t);
      this.taps.add(t);
    }
    const args = qemuArgs({
      name: m.hostname,
      nics: m.macs.map((mac, n) => ({ mac, tap: taps[n] })),
      disks: [m.disk],
      firmware: this.opts.firmware,
      memoryMiB: this.opts.memoryMiB,
      accel,
      uefiVars: m.uefiVars,
      ...(m.cdrom ? { cdrom: m.cdrom, netBoot: false } : {}),
    });
    fs.appendFileSync(m.serialLog, `\n=== power on ${new Date().toISOString()} ===\n`);
    m.running = new RunningMachine(
      ['ip', 'netns', 'exec', this.opts.namespace, ...DIE_WITH_PARENT, 'qemu-system-x86_64', ...args],
      m.serialLog,
    );
    m.poweredOnAt = Date.now();
    return m.running;
  }

  async machineState(
    m: LabMachine,
  ): Promise<{ machine: Machine; progress: Awaited<ReturnType<Inventory['getProgress']>> }> {
    const inv = this.inventory!;
    return { machine: (await inv.getMachine(m.hostname))!, progress: await inv.getProgress(m.hostname) };
  }

  private destroying?: Promise<void>;

  /** Stops machines and servers and removes the namespace; safe to call again, or concurrently. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      await Promise.all(this.machines.map((m) => m.running?.stop()));
      await this.net.destroy();
      const inv = this.inventory;
      this.inventory = undefined;
      await inv?.close();
    })().finally(() => {
      this.destroying = undefined;
    });
    return this.destroying;
  }
}

export interface RunOptions {
  rebirth: boolean;
  timeoutSeconds: number;
  accel?: 'kvm' | 'tcg';
  /** Called about once a second with every machine's timeline. */
  onTick?: (timelines: Timeline[]) => void;
}

/** Where a machine is, from the database and its QEMU. */
export async function timelineOf(lab: Lab, m: LabMachine): Promise<Timeline> {
  const inv = lab.inventory!;
  return timelineFrom(
    {
      machine: (await inv.getMachine(m.hostname))!,
      progress: await inv.getProgress(m.hostname),
      history: await inv.history(m.hostname),
    },
    { ...m, exited: m.running?.hasExited },
  );
}

/** Installs every machine of the lab: servers up, machines on, until each runs its new system or fails. */
export async function runLab(lab: Lab, o: RunOptions): Promise<Timeline[]> {
  await lab.prepare();
  await lab.markForInstall(o.rebirth);
  await lab.startServers();
  for (const m of lab.machines) lab.powerOn(m, o.accel);
  const deadline = Date.now() + o.timeoutSeconds * 1000;
  for (;;) {
    if (!lab.inventory) throw new Error('the lab was stopped');
    const timelines = await Promise.all(lab.machines.map((m) => timelineOf(lab, m)));
    const late = Date.now() > deadline;
    if (late) for (const t of timelines) if (!done(t)) t.problem = `not done after ${o.timeoutSeconds} s`;
    o.onTick?.(timelines);
    if (timelines.every(done)) return timelines;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
