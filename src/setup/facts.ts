// The facts of the machine `cradle setup` runs on: its firmware, disks and NICs, read from sysfs
// (roots are parameters, so tests describe machines of their own), and the disk the setup booted
// from, which is never a candidate for wiping. `cradle setup facts` prints them as JSON, and
// `cradle setup validate --machine FILE` plans against such a file from another machine.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { hasCarrier, listEthernetInterfaces } from '../installer/interfaces.ts';

export interface DiskFact {
  /** Kernel name, e.g. sda, nvme0n1, vda. */
  name: string;
  path: string;
  sizeBytes: number;
  model: string;
  serial: string;
  rotational: boolean;
  removable: boolean;
}

export interface NicFact {
  name: string;
  mac: string;
  driver: string;
  carrier: boolean;
  /** Bus address (e.g. 0000:00:03.0): pins the name for ifupdown's udev rule. */
  busId?: string;
}

export interface MachineFacts {
  firmware: 'uefi' | 'bios';
  disks: DiskFact[];
  nics: NicFact[];
  /** The disk holding the medium the setup booted from (ISO on a USB stick, a CD), if known. */
  bootMedium?: string;
}

export const factsSchema: z.ZodType<MachineFacts> = z.strictObject({
  firmware: z.enum(['uefi', 'bios']),
  disks: z.array(
    z.strictObject({
      name: z.string().regex(/^[a-z0-9]+$/),
      path: z.string().startsWith('/dev/'),
      sizeBytes: z.number().int().min(0),
      model: z.string(),
      serial: z.string(),
      rotational: z.boolean(),
      removable: z.boolean(),
    }),
  ),
  nics: z.array(
    z.strictObject({
      name: z.string().min(1),
      mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
      driver: z.string(),
      carrier: z.boolean(),
      busId: z.string().optional(),
    }),
  ),
  bootMedium: z.string().optional(),
});

const read = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
};

/** Whole disks with a device behind them (not loop, dm, md, zram), partitions left out. */
export function readDisks(sysfs: string, dev = '/dev'): DiskFact[] {
  const dir = path.join(sysfs, 'class', 'block');
  if (!fs.existsSync(dir)) return [];
  const disks: DiskFact[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const entry = path.join(dir, name);
    if (fs.existsSync(path.join(entry, 'partition')) || !fs.existsSync(path.join(entry, 'device'))) continue;
    const device = path.join(entry, 'device');
    disks.push({
      name,
      path: path.join(dev, name),
      sizeBytes: Number(read(path.join(entry, 'size')) || 0) * 512,
      model: read(path.join(device, 'model')),
      serial: read(path.join(device, 'serial')) || read(path.join(entry, 'serial')),
      rotational: read(path.join(entry, 'queue', 'rotational')) === '1',
      removable: read(path.join(entry, 'removable')) === '1',
    });
  }
  return disks;
}

/**
 * The disk a mounted directory lives on: its mount's source device (from /proc/self/mountinfo's
 * major:minor), then the whole disk a partition belongs to.
 */
export function diskOfMount(dir: string, sysfs: string, mountinfo = '/proc/self/mountinfo'): string | undefined {
  const target = path.resolve(dir);
  let best: { point: string; dev: string } | undefined;
  for (const line of read(mountinfo).split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const point = f[4].replace(/\\040/g, ' ');
    if (
      (target === point || target.startsWith(`${point.replace(/\/$/, '')}/`)) &&
      point.length >= (best?.point.length ?? 0)
    )
      best = { point, dev: f[2] };
  }
  if (!best) return undefined;
  const link = path.join(sysfs, 'dev', 'block', best.dev);
  if (!fs.existsSync(link)) return undefined;
  const real = fs.realpathSync(link);
  return fs.existsSync(path.join(real, 'partition')) ? path.basename(path.dirname(real)) : path.basename(real);
}

export function readFacts(o: { sysfs?: string; dev?: string; media?: string } = {}): MachineFacts {
  const sysfs = o.sysfs ?? '/sys';
  const bootMedium = o.media ? diskOfMount(o.media, sysfs) : undefined;
  return {
    firmware: fs.existsSync(path.join(sysfs, 'firmware', 'efi')) ? 'uefi' : 'bios',
    disks: readDisks(sysfs, o.dev),
    nics: listEthernetInterfaces(sysfs).map((n) => ({
      name: n.name,
      mac: n.mac,
      driver: n.driver,
      carrier: hasCarrier(sysfs, n.name),
      busId: n.busId,
    })),
    ...(bootMedium ? { bootMedium } : {}),
  };
}

export function parseFacts(text: string, where: string): MachineFacts {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where} is not JSON (write it with 'cradle setup facts > FILE'): ${(err as Error).message}`);
  }
  const r = factsSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${where}: '${i.path.join('.')}': ${i.message} (write it with 'cradle setup facts > FILE')`);
  }
  return r.data;
}
