// `cradle installer`'s sub-commands: Dominator's (list-images, load-image, load-configuration-from-
// tftp, list-drives, dhcp-request, kexec-image, decode-base64, generate-random) for custom
// workflows and debugging. They take the installer's own flags (given before the sub-command name)
// through optsWithGlobals: --tftp-directory (whose `imageserver` file names the image server),
// --tftp-server-hostname, --image-server-hostname, --tls-*, --sysfs-directory, ...
//
// Each sub-command imports what it runs when it runs: one sub-command (or --help) does not pay for
// loading the others' modules (the drives, DHCP, kexec, the unpacker), nor the daemon's.
import type { Command } from 'commander';
import type { ImageServerClient } from '../image/transfer/client.ts';
import type { ImageRecord } from '../image/store/store.ts';
import { subcommandImageServer, subcommandTls } from '../installer/subcommand-server.ts';
import { formatBytes, formatRate } from '../util/format.ts';
import { sortVersions } from '../util/verstr.ts';
import { seconds } from './program.ts';

const debugCommands = () => import('../installer/debug-commands.ts');

/** The installer's own flags the sub-commands read (given before the sub-command name). */
interface DaemonFlags {
  sysfsDirectory: string;
  devDirectory: string;
  logDirectory: string;
  tftpDirectory: string;
  tftpServerHostname?: string;
  imageServerHostname?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  imageServerPort: string;
}

interface ServerOpts {
  imageserver?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * The image server client: the sub-command's --imageserver, CRADLE_IMAGESERVER, the installer's
 * --image-server-hostname, else <--tftp-directory>/imageserver (Dominator's default); the
 * installer's certificates unless others are named.
 */
async function client(o: ServerOpts, cmd: Command): Promise<ImageServerClient> {
  const { ImageServerClient, imageServerUrl } = await import('../image/transfer/client.ts');
  const g = cmd.optsWithGlobals<DaemonFlags & ServerOpts>();
  const { address } = subcommandImageServer({
    flag: o.imageserver,
    env: process.env.CRADLE_IMAGESERVER,
    installerFlag: g.imageServerHostname,
    tftpDirectory: g.tftpDirectory,
  });
  const tls = subcommandTls({ ca: o.tlsCa ?? g.tlsCa, cert: o.tlsCert ?? g.tlsCert, key: o.tlsKey ?? g.tlsKey });
  // A bare host gets the installer's --image-server-port (Dominator's -imageServerPortNum).
  return new ImageServerClient(imageServerUrl(address, Number(g.imageServerPort)).href, {
    tls,
    log: (l) => console.error(l),
  });
}

function withServerOptions(cmd: Command): Command {
  return cmd
    .option(
      '--imageserver <address>',
      "image server: HOST[:PORT] or URL (env CRADLE_IMAGESERVER; default: the installer's --image-server-hostname, else the imageserver file of its --tftp-directory)",
    )
    .option('--tls-ca <file>', 'CA that signed the image server certificate (default /etc/ssl/CA.pem when it exists)')
    .option(
      '--tls-cert <file>',
      'client certificate, for servers that require one (default /etc/ssl/installer/cert.pem when it exists)',
    )
    .option('--tls-key <file>', 'key of --tls-cert (default /etc/ssl/installer/key.pem when it exists)');
}

/** Dominator's list-images: the names alone, one a line, version-aware (img.2 before img.10). */
export function imageNamesListing(images: ImageRecord[]): string {
  return sortVersions(images, (r) => r.name)
    .map((r) => `${r.name}\n`)
    .join('');
}

export function registerInstallerSubcommands(installer: Command): void {
  withServerOptions(
    installer
      .command('list-images')
      .description('list the images on the image server, one name a line, version-aware')
      .option('--long', 'a table: name, creation time, files and size'),
  ).action(async (o: ServerOpts & { long?: boolean }, cmd: Command) => {
    const c = await client(o, cmd);
    try {
      const images = await c.listImages();
      const { imagesTable } = await import('./image.ts');
      if (o.long) console.log(imagesTable(sortVersions(images, (r) => r.name)));
      else process.stdout.write(imageNamesListing(images));
    } finally {
      c.close();
    }
  });

  installer
    .command('decode-base64')
    .description('decode base64 from standard input to standard output')
    .action(async () => (await debugCommands()).decodeBase64(process.stdin, process.stdout));
  installer
    .command('generate-random')
    .description('write pseudo-random data (NOT cryptographically secure) to standard output until it is closed')
    .action(async () => (await debugCommands()).generateRandom(process.stdout));
  // These take the installer's own --sysfs-directory, --dev-directory and --log-directory
  // (given before the sub-command name).
  installer
    .command('list-drives')
    .description('list the usable drives in boot-priority order, one name a line (the first is the boot drive)')
    .option('--long', 'a table: size, model, serial, kind, bus, and the drives skipped and why')
    .action(async (o: { long?: boolean }, cmd: Command) => {
      const { listDrivesTable, listDriveNames } = await debugCommands();
      const g = cmd.optsWithGlobals<DaemonFlags>();
      const roots = { sysfs: g.sysfsDirectory, dev: g.devDirectory };
      console.log(o.long ? listDrivesTable(roots) : listDriveNames(roots).join('\n'));
    });
  installer
    .command('dhcp-request')
    .description('ask DHCP on every Ethernet interface and log the answer; configures nothing')
    .option('--timeout <seconds>', 'give up after this long', '60')
    .action(async (o: { timeout: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<DaemonFlags>();
      const { dhcpRequestCommand } = await debugCommands();
      const lease = await dhcpRequestCommand(g.sysfsDirectory, g.logDirectory, seconds(o.timeout, '--timeout') * 1000);
      const { options: _o, packet: _p, ...shown } = lease;
      console.log(JSON.stringify(shown, null, 2));
      if (lease.hostname) console.log(`hostname: ${lease.hostname}`);
    });
  installer
    .command('load-configuration-from-tftp')
    .description(
      "fetch the configuration files (config.json, imagename, imageserver, ...) from the installer's --tftp-server-hostname into its --tftp-directory, which must exist; random-seed goes into /dev/urandom",
    )
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<DaemonFlags>();
      const { loadConfigurationFromTftp } = await debugCommands();
      await loadConfigurationFromTftp({ tftpServer: g.tftpServerHostname, tftpDirectory: g.tftpDirectory });
    });
  withServerOptions(
    installer
      .command('kexec-image')
      .description("boot another image's /vmlinuz and /initrd.img with kexec (e.g. a different installer)")
      .argument('<name>', 'image name, or a stream for its latest image')
      .option('--no-exec', 'only load the kernel (kexec -l), do not boot it'),
  ).action(async (name: string, o: ServerOpts & { exec: boolean }, cmd: Command) => {
    const { kexecImage } = await debugCommands();
    const c = await client(o, cmd);
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
      .description(
        'mount a tmpfs at DIR, unpack an image into it and bind-mount /dev /proc /sys /tmp, for chroot use (a debugging image, tools for a hook programme)',
      )
      .argument('<name>', 'image name, or a stream for its latest image')
      .argument('<dir>', 'target directory (made if missing)')
      .option(
        '--cache-from <dir>',
        'take matching files from this tree instead of downloading (repeatable)',
        collect,
        [] as string[],
      )
      .option('--no-mounts', 'unpack into DIR itself: no tmpfs, no bind mounts'),
  ).action(
    async (name: string, dir: string, o: ServerOpts & { cacheFrom: string[]; mounts: boolean }, cmd: Command) => {
      const { loadImage } = await import('../installer/load-image-command.ts');
      const c = await client(o, cmd);
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
        if (r.mounted.length)
          console.log(
            `  mounted ${r.mounted.join(', ')} (a tmpfs, then /dev /proc /sys /tmp): 'umount -R ${dir}' when done`,
          );
      } finally {
        c.close();
      }
    },
  );
}
