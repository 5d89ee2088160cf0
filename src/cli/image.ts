// `cradle image add|list|show|rm|gc|verify`: manage the image store.
import type { Command } from 'commander';
import { ImageStore, type ImageRecord } from '../image/store/store.ts';
import { formatBytes, table } from '../util/format.ts';

/** The image list as `image list` and `installer list-images` print it. */
export function imagesTable(records: ImageRecord[]): string {
  return table(
    ['NAME', 'CREATED', 'FILES', 'SIZE'],
    records.map((r) => [r.name, r.created, String(r.stats.files), formatBytes(r.stats.bytes)]),
  );
}

export const DEFAULT_STORE = process.env.CRADLE_STORE ?? '/var/lib/cradle/images';

const storeOption = ['--store <dir>', 'image store directory (env CRADLE_STORE)', DEFAULT_STORE] as const;

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('build and manage OS images in a store');

  image
    .command('add')
    .description('add an image from a directory, tar/tar.gz/tar.zst, OCI layout or docker-save archive')
    .argument('<name>', "image name, 'stream/leaf'")
    .argument('<source>', 'directory or archive')
    .option(...storeOption)
    .action(async (name: string, source: string, o: { store: string }) => {
      const store = new ImageStore(o.store);
      const started = performance.now();
      const { addImage } = await import('../image/pack/add.ts'); // archive readers load only when adding
      const { record, kind, ingest } = await addImage(store, name, source, {
        warn: (m) => console.error(`warning: ${m}`),
      });
      const secs = (performance.now() - started) / 1000;
      console.log(`added ${record.name} from ${kind} in ${secs.toFixed(2)} s`);
      console.log(`  manifest ${record.manifest}`);
      console.log(`  ${record.stats.entries} entries, ${record.stats.files} files, ${formatBytes(record.stats.bytes)}`);
      console.log(
        `  ${ingest.objectsAdded} new objects (${formatBytes(ingest.storedBytes)} compressed), ${ingest.objectsReused} already in the store, ${ingest.duplicates} duplicate contents`,
      );
    });

  image
    .command('list')
    .description('list images')
    .option(...storeOption)
    .option('--json', 'print JSON')
    .action((o: { store: string; json?: boolean }) => {
      const records = ImageStore.open(o.store).listRecords();
      if (o.json) return console.log(JSON.stringify(records, null, 2));
      console.log(imagesTable(records));
    });

  image
    .command('show')
    .description('show one image (a stream name shows its latest image)')
    .argument('<name>')
    .option(...storeOption)
    .option('--json', 'print JSON')
    .action((name: string, o: { store: string; json?: boolean }) => {
      const r = ImageStore.open(o.store).resolve(name);
      if (o.json) return console.log(JSON.stringify(r, null, 2));
      const s = r.stats;
      console.log(`name:      ${r.name}`);
      console.log(`manifest:  ${r.manifest}`);
      console.log(`created:   ${r.created}`);
      console.log(`source:    ${r.source}`);
      console.log(`size:      ${formatBytes(s.bytes)} in ${s.files} files`);
      console.log(`entries:   ${s.entries} (${s.dirs} directories, ${s.symlinks} symlinks)`);
      console.log(`objects:   ${s.objects} distinct (${formatBytes(s.objectBytes)})`);
    });

  image
    .command('rm')
    .description('remove an image record (its objects go at the next gc)')
    .argument('<name>')
    .option(...storeOption)
    .action((name: string, o: { store: string }) => {
      const r = ImageStore.open(o.store).removeImage(name);
      console.log(`removed ${r.name}; run 'cradle image gc' to free its objects`);
    });

  image
    .command('gc')
    .description('remove objects no image needs')
    .option(...storeOption)
    .option('--grace <seconds>', 'keep unreferenced objects younger than this (an add may be in flight)', '3600')
    .action(async (o: { store: string; grace: string }) => {
      const grace = Number(o.grace);
      if (!/^\d+(\.\d+)?$/.test(o.grace) || !Number.isFinite(grace)) {
        throw new Error(`--grace must be a number of seconds (0 or more), not '${o.grace}'`);
      }
      const r = await ImageStore.open(o.store).gc(grace * 1000);
      console.log(`removed ${r.removed} objects (${formatBytes(r.removedBytes)}), kept ${r.kept}`);
    });

  image
    .command('verify')
    .description('check every image: manifests parse, objects present and matching their digests')
    .option(...storeOption)
    .action(async (o: { store: string }) => {
      const problems = await ImageStore.open(o.store).verify();
      for (const p of problems) console.log(p);
      if (problems.length) {
        console.error(`${problems.length} problems found`);
        process.exitCode = 1;
      } else console.log('store is consistent');
    });
}
