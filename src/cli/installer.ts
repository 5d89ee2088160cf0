// `cradle installer`: the installer daemon (no sub-command) with Dominator's flags, and Dominator's
// sub-commands for custom workflows and debugging.
import { Option, type Command } from 'commander';
import fs from 'node:fs';
import { DEFAULT_OPTIONS, SEED_TLS, type InstallerOptions } from '../installer/context.ts';
import { INSTALLER_STATUS_PORT } from '../util/ports.ts';
import { seconds, wholeNumber } from './program.ts';
import { subcommandTls } from '../installer/subcommand-server.ts';
import pkg from '../../package.json' with { type: 'json' };
import { DEFAULT_LOG_OPTIONS } from '../installer/log.ts';
import { byteSize, goDurationSeconds } from '../util/go-values.ts';

const collect = (v: string, acc: string[]) => [...acc, v];
import { registerInstallerSubcommands } from './installer-commands.ts';

export interface DaemonFlags {
  dryRun?: boolean;
  tftpDirectory: string;
  tmpRoot: string;
  mountPoint: string;
  logDirectory: string;
  buildTimestamp: string;
  sysfsDirectory: string;
  procDirectory: string;
  devDirectory: string;
  bootedRoot: string;
  tftpServerHostname?: string;
  dhcpTimeout: string;
  configurationBaseUrl?: string;
  configurationLoader?: string;
  driveSelector?: string;
  networkConfigurator?: string;
  completionNotifier?: string;
  imageServerHostname?: string;
  reportUrl?: string;
  skipNetwork?: boolean;
  skipStorage?: boolean;
  firmware?: 'uefi' | 'bios';
  reboot: boolean;
  allowRunningSystem?: boolean;
  waitFor?: string;
  successWait: string;
  failureWait: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  status: boolean;
  statusPort: string;
  statusAddress?: string;
  shellCommand: string;
  shellKeep: string;
  imageServerPort: string;
  logDebugLevel: string;
  logbufLines: string;
  logFileMaxSize: string;
  logQuota: string;
  alsoLogToStderr: boolean;
  idleMarkTimeout: string;
  identityCaFile?: string;
  generateMissingWebcert?: boolean;
  version?: boolean;
  ignoredFlag: string[];
}

export function daemonOptions(f: DaemonFlags): InstallerOptions {
  const d = DEFAULT_OPTIONS;
  return {
    // Like Dominator's installer, a non-root run is a dry run unless told otherwise.
    dryRun: f.dryRun ?? process.geteuid?.() !== 0,
    tftpDirectory: f.tftpDirectory,
    tmpRoot: f.tmpRoot,
    mountPoint: f.mountPoint,
    logDirectory: f.logDirectory,
    buildTimestamp: f.buildTimestamp,
    sysfs: f.sysfsDirectory,
    proc: f.procDirectory,
    dev: f.devDirectory,
    bootedRoot: f.bootedRoot === 'none' ? '' : f.bootedRoot,
    tftpServer: f.tftpServerHostname,
    dhcpTimeoutSeconds: seconds(f.dhcpTimeout, '--dhcp-timeout'),
    configurationBaseUrl: f.configurationBaseUrl,
    configurationLoader: f.configurationLoader,
    driveSelector: f.driveSelector,
    networkConfigurator: f.networkConfigurator,
    completionNotifier: f.completionNotifier,
    imageServer: f.imageServerHostname,
    reportUrl: f.reportUrl,
    skipNetwork: f.skipNetwork ?? d.skipNetwork,
    skipStorage: f.skipStorage ?? d.skipStorage,
    firmware: f.firmware,
    reboot: f.reboot,
    allowRunningSystem: f.allowRunningSystem ?? false,
    ...(f.waitFor ? { waitFor: f.waitFor } : {}),
    successWaitSeconds: seconds(f.successWait, '--success-wait'),
    failureWaitSeconds: seconds(f.failureWait, '--failure-wait'),
    tls: subcommandTls({ ca: f.tlsCa, cert: f.tlsCert, key: f.tlsKey }),
    log: {
      bufferLines: wholeNumber(f.logbufLines, '--logbuf-lines', 100, 10_000_000),
      fileMaxBytes: byteSize(f.logFileMaxSize, '--log-file-max-size'),
      quotaBytes: byteSize(f.logQuota, '--log-quota'),
      debugLevel: wholeNumber(f.logDebugLevel, '--log-debug-level', -1, 100),
      alsoToStderr: f.alsoLogToStderr,
      idleMarkSeconds: goDurationSeconds(f.idleMarkTimeout, '--idle-mark-timeout'),
    },
    imageServerPort: wholeNumber(f.imageServerPort, '--image-server-port', 1, 65535),
    ignoredFlags: f.ignoredFlag,
    status: f.status
      ? {
          port: wholeNumber(f.statusPort, '--status-port', 0, 65535),
          address: f.statusAddress,
          shellCommand: shellCommand(f.shellCommand),
          shellKeepSeconds: seconds(f.shellKeep, '--shell-keep'),
          identityCa: identityCa(f.identityCaFile),
          generateMissingCert: !!f.generateMissingWebcert,
        }
      : undefined,
  };
}

/** Dominator's identity CA (/etc/ssl/IdentityCA.pem) when it exists; a file named must exist. */
function identityCa(given: string | undefined): string | undefined {
  if (given && !fs.existsSync(given)) throw new Error(`--identity-ca-file ${given}: no such file`);
  return given ?? (fs.existsSync(SEED_TLS.identityCa) ? SEED_TLS.identityCa : undefined);
}

function shellCommand(value: string): string[] {
  const argv = value.split(',').filter(Boolean);
  if (!argv.length || !argv[0].startsWith('/'))
    throw new Error(`--shell-command takes PROGRAM,ARG,... with an absolute PROGRAM path, got '${value}'`);
  return argv;
}

export function registerInstallerCommands(program: Command): void {
  const d = DEFAULT_OPTIONS;
  const l = DEFAULT_LOG_OPTIONS;
  const installer = program
    .command('installer')
    .description("install the configured image onto this machine (Dominator's sequence); or run a sub-command")
    .option(
      '--dry-run',
      'print the whole plan (drives to wipe, partitions, file systems, objects from cache vs network) and change nothing (default when not root)',
    )
    .option('--no-dry-run', 'really install, even when not root')
    .option(
      '--tftp-directory <dir>',
      'configuration files (fetched, or already present: then no DHCP)',
      d.tftpDirectory,
    )
    .option('--tmp-root <dir>', 'tmpfs for the tools root and the image in memory', d.tmpRoot)
    .option('--mount-point <dir>', 'where the new root file system is mounted', d.mountPoint)
    .option('--log-directory <dir>', 'installer logs, DHCP packets, the old /etc', d.logDirectory)
    .option('--build-timestamp <file>', "the clock is moved forward to this file's mtime", d.buildTimestamp)
    .option('--sysfs-directory <dir>', 'sysfs root (drives, interfaces, firmware)', d.sysfs)
    .option('--proc-directory <dir>', 'procfs root (kernel command line, mounts)', d.proc)
    .option('--dev-directory <dir>', 'device nodes of the drives', d.dev)
    .option('--booted-root <dir>', "running OS scanned for objects ('none' to skip)", d.bootedRoot)
    .option('--dhcp-timeout <seconds>', 'give up on DHCP after this long', String(d.dhcpTimeoutSeconds))
    .option(
      '--tftp-server-hostname <host>',
      'TFTP server for the configuration (default: tftpserver= on the kernel command line, then DHCP)',
    )
    .option('--configuration-base-url <url>', 'fetch the configuration files over HTTP(S) from here instead of TFTP')
    .option('--configuration-loader <program>', 'run PROGRAM DIR IFACE to write the configuration files instead')
    .option('--drive-selector <program>', 'run PROGRAM DRIVE... and install on the drives it prints, boot drive first')
    .option(
      '--network-configurator <program>',
      'run PROGRAM CONFIGDIR ROOT IFACE TMPROOT instead of writing the network configuration',
    )
    .option('--completion-notifier <program>', 'run PROGRAM CONFIGDIR IFACE after the drives are unmounted')
    .option('--image-server-hostname <address>', 'image server, overriding the imageserver file')
    .option('--report-url <url>', 'boot server to report progress to, overriding the bootserver file')
    .option('--skip-network', "do not configure the new system's network")
    .option('--skip-storage', 'do not touch drives (and install nothing)')
    .addOption(
      new Option('--firmware <kind>', 'boot firmware (default: UEFI when /sys/firmware/efi exists)').choices([
        'uefi',
        'bios',
      ]),
    )
    .option('--no-reboot', 'exit with the result instead of rebooting (development, tests)')
    .option(
      '--allow-running-system',
      'install although / is on a disk, not an installer image (development, tests; drives in use are still refused)',
    )
    .option(
      '--wait-for <file>',
      "wait until FILE exists before the install begins (the installer image's /init makes it once the drivers are loaded)",
    )
    .option('--success-wait <seconds>', 'pause before rebooting after success', String(d.successWaitSeconds))
    .option('--failure-wait <seconds>', 'pause before rebooting after a failure', String(d.failureWaitSeconds))
    .option(
      '--tls-ca <file>',
      `CA that signs the servers' and the operators' certificates (default ${SEED_TLS.ca} when it exists)`,
    )
    .option(
      '--tls-cert <file>',
      `the installer's certificate: served on the status port, and its client identity to the servers (default ${SEED_TLS.cert} when it exists)`,
    )
    .option('--tls-key <file>', `key of --tls-cert (default ${SEED_TLS.key} when it exists)`)
    .option(
      '--status-port <port>',
      'status page, metrics, RPC and remote shell (HTTP and HTTPS)',
      String(INSTALLER_STATUS_PORT),
    )
    .option('--status-address <ip>', 'listen on this address only (default: all)')
    .option('--no-status', 'serve no status page, RPC or remote shell')
    .option('--shell-command <argv>', 'remote shell program and arguments, comma-separated', '/bin/sh,-i')
    .option('--shell-keep <seconds>', 'how long a remote shell outlives a dropped connection, for a resume', '300')
    .option(
      '--identity-ca-file <file>',
      `CA whose certificates may read the status and log but call no method (default ${SEED_TLS.identityCa} when it exists)`,
    )
    .option('--generate-missing-webcert', 'serve HTTPS with a generated self-signed certificate when there is none')
    .option(
      '--image-server-port <port>',
      'port of the image server when its address names only a host',
      String(d.imageServerPort),
    )
    .option('--log-debug-level <n>', 'log debug lines up to this level (1: programs read, 2: their output)', '-1')
    .option('--logbuf-lines <n>', 'log lines kept in memory for the status page and shells', String(l.bufferLines))
    .option('--log-file-max-size <size>', 'start a new log file past this size', '10M')
    .option('--log-quota <size>', 'remove the oldest log files beyond this total', '100M')
    .option('--no-also-log-to-stderr', 'do not copy the log to the console')
    .option(
      '--idle-mark-timeout <duration>',
      'write MARK to the log file after this long without a line (0: never)',
      '0',
    )
    .option('--version', "print Cradle's version")
    // The other half of each boolean, so a flag file's `name=false` can undo a default's `name=true`.
    .addOption(new Option('--no-skip-network').hideHelp())
    .addOption(new Option('--no-skip-storage').hideHelp())
    .addOption(new Option('--no-allow-running-system').hideHelp())
    .addOption(new Option('--no-generate-missing-webcert').hideHelp())
    .addOption(new Option('--reboot').hideHelp())
    .addOption(new Option('--status').hideHelp())
    .addOption(new Option('--also-log-to-stderr').hideHelp())
    // What flag files and the kernel line held that this installer does not know (program.ts), for the log.
    .addOption(new Option('--ignored-flag <why>').hideHelp().argParser(collect).default([]))
    .action(async (f: DaemonFlags) => {
      if (f.version) return void console.log(pkg.version);
      const opts = daemonOptions(f);
      // Imported here, not with this module: the install sequence, and the status server's metrics
      // and WebSocket libraries (about 100 modules), are a running daemon's alone, not its
      // sub-commands' or its --help's.
      const { runInstaller } = await import('../installer/daemon.ts');
      const { startStatusServer } = await import('../status/server.ts');
      // The status page, RPC and remote shell on port 6978 watch the daemon from outside it.
      process.exitCode = await runInstaller(opts, (log, gate) => startStatusServer(opts, log, gate));
      // Nothing may keep a finished installer alive (a shell's PTY held by a background job).
      setTimeout(() => process.exit(), 3000).unref();
    });

  registerInstallerSubcommands(installer);
}
