// What the lab's head node installs from, built once into the cache: the head node's Debian (with
// LVM, PostgreSQL and GRUB) as an OS kit, and the Cradle kit of this source tree. A second run
// costs only the machines.
import fs from 'node:fs';
import path from 'node:path';
import { buildKit } from '../kit/build.ts';
import { cachedCradleKit } from '../kit/cradle-kit.ts';
import { buildDirFor, placeBuilt } from '../util/build-cache.ts';
import { debianRootfs } from './debian-rootfs.ts';

/** The OS kit debian/12 of the head node's demo OS (its compute nodes install it too). */
export async function cachedHeadOsKit(cache: string, log?: (line: string) => void): Promise<string> {
  const tree = debianRootfs('head');
  const dir = path.join(cache, 'kits', `${path.basename(tree)}-os-kit`);
  const kit = path.join(dir, 'debian.kit');
  if (fs.existsSync(kit)) return kit;
  const tmp = buildDirFor(dir);
  fs.mkdirSync(tmp);
  await buildKit(
    {
      name: 'debian',
      version: '12',
      kind: 'os',
      os: 'debian-12',
      arch: 'x86_64',
      description: 'Debian 12 (bookworm) for the lab: systemd, LVM, PostgreSQL, GRUB',
      image: tree,
      components: [],
    },
    path.join(tmp, 'debian.kit'),
    { log },
  );
  placeBuilt(tmp, dir, 'debian.kit');
  return kit;
}

/** Both kits of the lab's head node: its OS kit and the Cradle kit. */
export async function headLabKits(cache: string, log: (line: string) => void): Promise<string[]> {
  log('kits: the head node OS kit and the Cradle kit (built once, then from the cache)');
  return [await cachedHeadOsKit(cache, log), await cachedCradleKit(cache, log)];
}
