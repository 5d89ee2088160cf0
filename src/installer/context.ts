// What every step of the install sees: the options (Dominator's installer's flags, with its
// defaults), the Executor (the one seam to the machine), the log, the progress reporter, and the
// record that cleanup and the status page read. Steps pass everything else as typed results.
import { IMAGESERVER_PORT } from '../util/ports.ts';
import type { ClientTls } from '../image/transfer/client.ts';
import type { MachineConfig } from '../netconfig/machine-config.ts';
import type { StorageLayout } from '../storage/layout.ts';
import type { StoragePlan } from '../storage/plan.ts';
import type { Drive } from '../storage/drives.ts';
import type { Executor } from '../system/executor.ts';
import type { UnpackStats } from '../image/unpack/unpack.ts';
import { DEFAULT_LOG_OPTIONS, type InstallerLog, type LogOptions } from './log.ts';
import type { Progress } from './progress.ts';
import type { EthernetInterface } from './interfaces.ts';

export interface InstallerOptions {
  dryRun: boolean;
  /**
   * A dry run's own scratch directory, made and removed by the run: what it must fetch or mount
   * to plan (configuration files, the old OS's mount point) goes there, never onto the system.
   */
  scratchDirectory?: string;
  tftpDirectory: string;
  tmpRoot: string;
  mountPoint: string;
  logDirectory: string;
  buildTimestamp: string;
  /** Roots of the kernel's views, overridable so tests can present loop devices as drives. */
  sysfs: string;
  proc: string;
  dev: string;
  /** The running OS scanned for objects ('' to skip). */
  bootedRoot: string;
  tftpServer?: string;
  dhcpTimeoutSeconds: number;
  configurationBaseUrl?: string;
  configurationLoader?: string;
  driveSelector?: string;
  networkConfigurator?: string;
  completionNotifier?: string;
  imageServer?: string;
  reportUrl?: string;
  skipNetwork: boolean;
  skipStorage: boolean;
  firmware?: 'uefi' | 'bios';
  /** Install although / is on a disk (development, tests): the drives must not be in use. */
  allowRunningSystem: boolean;
  /**
   * A file to wait for before the install begins: the installer image's /init starts the
   * installer beside the driver loading and makes this file once every driver is loaded.
   */
  waitFor?: string;
  /** Reboot at the end; off, the installer exits with its result (development and tests). */
  reboot: boolean;
  successWaitSeconds: number;
  failureWaitSeconds: number;
  /** The installer's identity and trust (Dominator's /etc/ssl files): client of the servers. */
  tls: ClientTls;
  /** Port 6978: status page, metrics, RPC, remote shell; undefined: not served. */
  status?: StatusOptions;
  /** The log's bounds and extras (Dominator's logbuf flags). */
  log: LogOptions;
  /** The image server's port when only its host is given (-imageServerPortNum). */
  imageServerPort: number;
  /** Flags of a flag file or the kernel line that this installer does not know: logged at start, ignored. */
  ignoredFlags: string[];
}

export interface StatusOptions {
  port: number;
  address?: string;
  shellCommand: string[];
  shellKeepSeconds: number;
  /**
   * A CA whose certificates identify a person but grant no method (Dominator's -identityCAfile):
   * they may read the status and the log, never open a shell or hold the reboot.
   */
  identityCa?: string;
  /** Serve HTTPS with a generated self-signed certificate when the installer has none (-generateMissingWebcert). */
  generateMissingCert: boolean;
}

export const DEFAULT_OPTIONS: InstallerOptions = {
  dryRun: false,
  tftpDirectory: '/tftpdata',
  tmpRoot: '/tmproot',
  mountPoint: '/mnt',
  logDirectory: '/var/log/installer',
  buildTimestamp: '/build-timestamp',
  sysfs: '/sys',
  proc: '/proc',
  dev: '/dev',
  bootedRoot: '/',
  dhcpTimeoutSeconds: 300,
  skipNetwork: false,
  skipStorage: false,
  allowRunningSystem: false,
  reboot: true,
  successWaitSeconds: 5,
  failureWaitSeconds: 300,
  tls: {},
  log: DEFAULT_LOG_OPTIONS,
  imageServerPort: IMAGESERVER_PORT,
  ignoredFlags: [],
};

/** Dominator's TLS files: the CA that signs client certificates, and the installer's own. */
export const SEED_TLS = {
  ca: '/etc/ssl/CA.pem',
  cert: '/etc/ssl/installer/cert.pem',
  key: '/etc/ssl/installer/key.pem',
  /** Certificates that identify a person and grant no method (Dominator's -identityCAfile). */
  identityCa: '/etc/ssl/IdentityCA.pem',
};

/** The configuration files, validated (load-configuration.ts). */
export interface Configuration {
  machine: MachineConfig;
  layout?: StorageLayout;
  imageName?: string;
  toolsImageName?: string;
  imageServer?: string;
  bootServer?: string;
}

/**
 * What the steps share beyond their results: only what cleanup and the status page read, written
 * by the step that learns it. Everything else a step finds it returns to install() (sequence.ts),
 * which hands it to the steps that need it.
 */
export interface InstallRecord {
  /** Ethernet interfaces found (the page lists them). */
  interfaces: EthernetInterface[];
  /** The interface the installer configured and talks through. */
  activeInterface?: string;
  /** This machine as config.json describes it (the page's host name and address). */
  machine?: MachineConfig['Machine'];
  /** The image being installed, once known (the page, the result). */
  imageName?: string;
  /** The drives selected and their plan (the page; after a failure, the boot drive is erased). */
  drives?: Drive[];
  plan?: StoragePlan;
  /** How the image was unpacked into memory: objects from the cache vs downloaded (the result). */
  imageStats?: UnpackStats;
  /** Storage has been changed: a failure from now on leaves a disk that must not boot. */
  disksTouched: boolean;
  /** The new system is complete and bootable: a later failure (a hook) must not wipe it. */
  installComplete: boolean;
  /** LUKS mappings this run opened (and only these are closed). */
  luksOpened: string[];
  /** Mounts this run made, for cleanup to undo. */
  mounted: string[];
  /** The LUKS key in memory, destroyed by cleanup. */
  keyFile?: string;
}

export interface InstallContext {
  opts: InstallerOptions;
  exec: Executor;
  log: InstallerLog;
  progress: Progress;
  record: InstallRecord;
}

export function newRecord(): InstallRecord {
  return { interfaces: [], disksTouched: false, installComplete: false, luksOpened: [], mounted: [] };
}

/** The boot server to report to: the flag, else the configuration's `bootserver` file. */
export function bootServerUrl(opts: InstallerOptions, config: Configuration | undefined): string | undefined {
  return opts.reportUrl ?? config?.bootServer;
}

/**
 * Where the installed system finds its boot server, to report in once it runs (POST {"mac"} to
 * URL/api/v1/report, docs/boot-server.md): the contract between the installer and the image.
 */
export const BOOT_SERVER_FILE = 'etc/cradle/boot-server';
