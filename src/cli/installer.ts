// `cradle installer <sub-command>`: the seed's installer sub-commands that exist so far.
import type { Command } from 'commander';
import { ImageServerClient, type ClientTls } from '../image/client.ts';
import { loadImage } from '../installer/load-image.ts';
import { formatBytes, formatRate } from '../util/format.ts';
import { imagesTable } from './image.ts';

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

export function registerInstallerCommands(program: Command): void {
  const installer = program.command('installer').description('the installer and its sub-commands');

  withServerOptions(installer.command('list-images').description('list the images on the image server')).action(async (o: ServerOpts) => {
    const c = client(o);
    try {
      const images = await c.listImages();
      console.log(imagesTable(images));
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
      .option('--cache-from <dir>', 'take matching files from this tree instead of downloading (repeatable)', collect, [] as string[])
      .option('--no-mounts', 'do not bind-mount /dev /proc /sys /tmp'),
  ).action(async (name: string, dir: string, o: ServerOpts & { cacheFrom: string[]; mounts: boolean }) => {
    const c = client(o);
    try {
      const r = await loadImage(c, name, dir, { cacheFrom: o.cacheFrom, mounts: o.mounts });
      const u = r.unpack;
      console.log(`loaded ${r.image.name} into ${dir} in ${r.seconds.toFixed(2)} s (${formatRate(u.bytesWritten, r.seconds)})`);
      console.log(`  ${u.entries} entries, ${formatBytes(u.bytesWritten)} written`);
      console.log(`  ${u.objectsFetched} objects fetched (${formatBytes(u.bytesFetched)}, ${formatBytes(r.wireBytes)} on the wire), ${u.objectsFromCache} from cache (${formatBytes(u.bytesFromCache)})`);
      if (r.retries) console.log(`  ${r.retries} interrupted downloads resumed`);
      if (o.mounts) console.log(`  /dev /proc /sys /tmp bind-mounted: 'umount ${dir}/{dev,proc,sys,tmp}' when done`);
    } finally {
      c.close();
    }
  });
}
