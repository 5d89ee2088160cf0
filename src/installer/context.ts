// What every step of the install sees: the options (the seed's flags, with its defaults), the
// Executor (the one seam to the machine), the log and the progress reporter, and the facts the
// steps gather for the steps after them.
import type { ClientTls, ImageServerClient } from '../image/transfer/client.ts';
import type { ImageRecord } from '../image/store/store.ts';
import type { Manifest } from '../image/model/manifest.ts';
import type { MachineConfig } from '../netconfig/machine-config.ts';
import type { StorageLayout } from '../storage/layout.ts';
import type { StoragePlan } from '../storage/plan.ts';
import type { Drive } from '../storage/drives.ts';
import type { DriveContents } from '../storage/contents.ts';
import type { BootInfo } from '../storage/bootloader.ts';
import type { MadeFileSystem } from '../storage/fstab.ts';
import type { Executor } from '../system/executor.ts';
import type { UnpackStats } from '../image/unpack/unpack.ts';
import type { InstallerLog } from './log.ts';
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
  /** Reboot at the end; off, the installer exits with its result (development and tests). */
  reboot: boolean;
  successWaitSeconds: number;
  failureWaitSeconds: number;
  /** The installer's identity and trust (the seed's /etc/ssl files): client of the servers. */
  tls: ClientTls;
  /** Port 6978: status page, metrics, RPC, remote shell; undefined: not served. */
  status?: { port: number; address?: string; shellCommand: string[]; shellKeepSeconds: number };
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
};

/** The seed's TLS files: the CA that signs client certificates, and the installer's own. */
export const SEED_TLS = {
  ca: '/etc/ssl/CA.pem',
  cert: '/etc/ssl/installer/cert.pem',
  key: '/etc/ssl/installer/key.pem',
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

export interface Facts {
  interfaces: EthernetInterface[];
  /** The interface the installer configured and talks through. */
  activeInterface?: string;
  config?: Configuration;
  client?: ImageServerClient;
  image?: { record: ImageRecord; manifest: Manifest };
  tools?: { record: ImageRecord; manifest: Manifest };
  drives?: Drive[];
  contents?: Map<string, DriveContents>;
  plan?: StoragePlan;
  boot?: BootInfo;
  keyFile?: string;
  discarded?: Set<string>;
  made?: MadeFileSystem[];
  /** Where the target image is unpacked in memory (the tools root, or its own tmpfs). */
  stagedTarget?: string;
  /** How the target image was unpacked into memory: objects from the cache vs downloaded. */
  imageStats?: UnpackStats;
  /** The old OS, mounted read-only, to seed the object cache. */
  oldRoot?: string;
  oldRootLabel?: string;
  /** Storage has been changed: a failure from now on leaves a disk that must not boot. */
  disksTouched: boolean;
  /** The new system is complete and bootable: a later failure (a hook) must not wipe it. */
  installComplete: boolean;
  /** LUKS mappings this run opened (and only these are closed). */
  luksOpened: string[];
  /** The image's grub-install, when it has one for this firmware. */
  grubInstall?: string;
  kexecLoaded: boolean;
  clockAdvanced: boolean;
  mounted: string[];
}

export interface InstallContext {
  opts: InstallerOptions;
  exec: Executor;
  log: InstallerLog;
  progress: Progress;
  facts: Facts;
}

/** The boot server to report to: the flag, else the configuration's `bootserver` file. */
export function bootServerUrl(ctx: InstallContext): string | undefined {
  return ctx.opts.reportUrl ?? ctx.facts.config?.bootServer;
}

/**
 * Where the installed system finds its boot server, to report in once it runs (POST {"mac"} to
 * URL/api/v1/report, docs/boot-server.md): the contract between the installer and the image.
 */
export const BOOT_SERVER_FILE = 'etc/cradle/boot-server';
