// `cradle installer`'s sub-commands: Dominator's (list-images, load-image, list-drives, dhcp-request,
// kexec-image, decode-base64, generate-random) for custom workflows and debugging. They take the
// installer's own flags (given before the sub-command name) through optsWithGlobals.
import type { Command } from 'commander';
import {
  decodeBase64,
  dhcpRequestCommand,
  generateRandom,
  kexecImage,
  listDrivesTable,
} from '../installer/debug-commands.ts';
import { ImageServerClient, type ClientTls } from '../image/transfer/client.ts';
import { loadImage } from '../installer/load-image-command.ts';
import { formatBytes, formatRate } from '../util/format.ts';
import { imagesTable } from './image.ts';
import { seconds } from './program.ts';

/** The installer's own flags the sub-commands read (given before the sub-command name). */
interface DaemonFlags {
  sysfsDirectory: string;
  devDirectory: string;
  logDirectory: string;
  tftpServerHostname?: string;
}

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

export function registerInstallerSubcommands(installer: Command): void {
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
