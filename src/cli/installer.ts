// `cradle installer`: the installer daemon (no sub-command) with Dominator's flags, and Dominator's
// sub-commands for custom workflows and debugging.
import { Option, type Command } from 'commander';
import fs from 'node:fs';
import { DEFAULT_OPTIONS, SEED_TLS, type InstallerOptions } from '../installer/context.ts';
import { INSTALLER_STATUS_PORT } from '../util/ports.ts';
import {
  decodeBase64,
  dhcpRequestCommand,
  generateRandom,
  kexecImage,
  listDrivesTable,
} from '../installer/debug-commands.ts';
import { runInstaller } from '../installer/daemon.ts';
import { startStatusServer } from '../status/server.ts';
import { ImageServerClient, type ClientTls } from '../image/transfer/client.ts';
import { loadImage } from '../installer/load-image-command.ts';
import { formatBytes, formatRate } from '../util/format.ts';
import { imagesTable } from './image.ts';
import { wholeNumber } from './program.ts';

interface ServerOpts {
  imageserver?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

function client(o: ServerOpts): ImageServerClient {
  const address = o.imageserver ?? process.env.CRADLE_IMAGESERVER;
  if (!address) throw new Error('no image server: pass --imageserver HOST[:PORT] or a URL (or set CRADLE_IMAGESERVER)');
  const tls: ClientTls = { ca: o.tlsCa, cert: o.tlsCert, key: o.tlsKey };
  return new ImageServerClient(address, { tls, log: (l) => console.error(l) });
}

function withServerOptions(cmd: Command): Command {
  return cmd
    .option('--imageserver <address>', 'image server: HOST[:PORT] or URL (env CRADLE_IMAGESERVER)')
    .option('--tls-ca <file>', 'CA that signed the image server certificate')
    .option('--tls-cert <file>', 'client certificate, for servers that require one')
    .option('--tls-key <file>', 'key of --tls-cert');
}

interface DaemonFlags {
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
}

function seconds(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} takes seconds (0 or more), got '${value}'`);
  return n;
}

function daemonOptions(f: DaemonFlags): InstallerOptions {
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
    successWaitSeconds: seconds(f.successWait, '--success-wait'),
    failureWaitSeconds: seconds(f.failureWait, '--failure-wait'),
    tls: installerTls(f),
    status: f.status
      ? {
          port: wholeNumber(f.statusPort, '--status-port', 0, 65535),
          address: f.statusAddress,
          shellCommand: shellCommand(f.shellCommand),
          shellKeepSeconds: seconds(f.shellKeep, '--shell-keep'),
        }
      : undefined,
  };
}

/**
 * Dominator's files (/etc/ssl/CA.pem, /etc/ssl/installer/{cert,key}.pem) when they exist; a file
 * named on the command line must exist. The key goes with the certificate.
 */
function installerTls(f: DaemonFlags): ClientTls {
  const pick = (given: string | undefined, seed: string, flag: string) => {
    if (given && !fs.existsSync(given))
      throw new Error(`${flag} ${given}: no such file (make one with 'cradle pki', docs/pki.md)`);
    return given ?? (fs.existsSync(seed) ? seed : undefined);
  };
  const tls = {
    ca: pick(f.tlsCa, SEED_TLS.ca, '--tls-ca'),
    cert: pick(f.tlsCert, SEED_TLS.cert, '--tls-cert'),
    key: pick(f.tlsKey, SEED_TLS.key, '--tls-key'),
  };
  if (!!tls.cert !== !!tls.key)
    throw new Error(
      `the installer certificate and key go together: found only ${tls.cert ?? tls.key} (pass --tls-cert and --tls-key)`,
    );
  return tls;
}

function shellCommand(value: string): string[] {
  const argv = value.split(',').filter(Boolean);
  if (!argv.length || !argv[0].startsWith('/'))
    throw new Error(`--shell-command takes PROGRAM,ARG,... with an absolute PROGRAM path, got '${value}'`);
  return argv;
}

export function registerInstallerCommands(program: Command): void {
  const d = DEFAULT_OPTIONS;
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
    .action(async (f: DaemonFlags) => {
      const opts = daemonOptions(f);
      // The status page, RPC and remote shell on port 6978 watch the daemon from outside it.
      process.exitCode = await runInstaller(opts, (log, gate) => startStatusServer(opts, log, gate));
      // Nothing may keep a finished installer alive (a shell's PTY held by a background job).
      setTimeout(() => process.exit(), 3000).unref();
    });

  withServerOptions(installer.command('list-images').description('list the images on the image server')).action(
    async (o: ServerOpts) => {
      const c = client(o);
      try {
        const images = await c.listImages();
        console.log(imagesTable(images));
      } finally {
        c.close();
      }
    },
  );

  installer
    .command('decode-base64')
    .description('decode base64 from standard input to standard output')
    .action(() => decodeBase64(process.stdin, process.stdout));
  installer
    .command('generate-random')
    .description('write pseudo-random data (NOT cryptographically secure) to standard output until it is closed')
    .action(() => generateRandom(process.stdout));
  // These take the installer's own --sysfs-directory, --dev-directory and --log-directory
  // (given before the sub-command name).
  installer
    .command('list-drives')
    .description('list the usable drives in boot-priority order (the first is the boot drive)')
    .action((_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<DaemonFlags>();
      console.log(listDrivesTable({ sysfs: g.sysfsDirectory, dev: g.devDirectory }));
    });
  installer
    .command('dhcp-request')
    .description('ask DHCP on every Ethernet interface and log the answer; configures nothing')
    .option('--timeout <seconds>', 'give up after this long', '60')
    .action(async (o: { timeout: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<DaemonFlags>();
      const lease = await dhcpRequestCommand(g.sysfsDirectory, g.logDirectory, seconds(o.timeout, '--timeout') * 1000);
      const { options: _o, packet: _p, ...shown } = lease;
      console.log(JSON.stringify(shown, null, 2));
      if (lease.hostname) console.log(`hostname: ${lease.hostname}`);
    });
  withServerOptions(
    installer
      .command('kexec-image')
      .description("boot another image's /vmlinuz and /initrd.img with kexec (e.g. a different installer)")
      .argument('<name>', 'image name, or a stream for its latest image')
      .option('--no-exec', 'only load the kernel (kexec -l), do not boot it'),
  ).action(async (name: string, o: ServerOpts & { exec: boolean }, cmd: Command) => {
    const c = client(o);
    try {
      // The installer's --tftp-server-hostname is passed on as tftpserver= to the new kernel.
      console.log(
        await kexecImage(c, name, { tftpServer: cmd.optsWithGlobals<DaemonFlags>().tftpServerHostname, exec: o.exec }),
      );
    } finally {
      c.close();
    }
  });

  const collect = (v: string, acc: string[]) => [...acc, v];
  withServerOptions(
    installer
      .command('load-image')
      .description('unpack an image into DIR and bind-mount /dev /proc /sys /tmp for chroot use')
      .argument('<name>', 'image name, or a stream for its latest image')
      .argument('<dir>', 'target directory')
      .option(
        '--cache-from <dir>',
        'take matching files from this tree instead of downloading (repeatable)',
        collect,
        [] as string[],
      )
      .option('--no-mounts', 'do not bind-mount /dev /proc /sys /tmp'),
  ).action(async (name: string, dir: string, o: ServerOpts & { cacheFrom: string[]; mounts: boolean }) => {
    const c = client(o);
    try {
      const r = await loadImage(c, name, dir, { cacheFrom: o.cacheFrom, mounts: o.mounts });
      const u = r.unpack;
      console.log(
        `loaded ${r.image.name} into ${dir} in ${r.seconds.toFixed(2)} s (${formatRate(u.bytesWritten, r.seconds)})`,
      );
      console.log(`  ${u.entries} entries, ${formatBytes(u.bytesWritten)} written`);
      console.log(
        `  ${u.objectsFetched} objects fetched (${formatBytes(u.bytesFetched)}, ${formatBytes(r.wireBytes)} on the wire), ${u.objectsFromCache} from cache (${formatBytes(u.bytesFromCache)})`,
      );
      if (r.retries) console.log(`  ${r.retries} interrupted downloads resumed`);
      if (o.mounts) console.log(`  /dev /proc /sys /tmp bind-mounted: 'umount ${dir}/{dev,proc,sys,tmp}' when done`);
    } finally {
      c.close();
    }
  });
}
