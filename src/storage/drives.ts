// Drive discovery from sysfs, as Dominator's installer does it: whole disks that
// have a device behind them, are not removable or read-only, and can be read. Both roots are
// parameters so tests can present loop devices as "drives" through a sysfs tree of their own.
// Drives come in a stable order, by bus location then name; the first is the boot drive unless a
// -driveSelector says otherwise.
import fs from 'node:fs';
import path from 'node:path';

export interface Drive {
  /** Kernel name, e.g. sda, nvme0n1, vda. */
  name: string;
  /** Device node, e.g. /dev/sda. */
  path: string;
  sizeBytes: number;
  model: string;
  serial: string;
  /** Where it sits, e.g. pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0. */
  busPath: string;
  rotational: boolean;
}

export interface DriveRoots {
  sysfs: string;
  dev: string;
}

export class DriveError extends Error {
  override name = 'DriveError';
}

function readAttr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function busPathOf(entry: string): string {
  const parts = fs.readlinkSync(entry).split('/');
  // ../../devices/<bus path...>/block/<name>: keep what names the controller and port.
  return parts.length > 5 ? parts.slice(3, -2).join('/') : parts.join('/');
}

function readable(device: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(device, 'r');
    return fs.readSync(fd, Buffer.alloc(512), 0, 512, 0) === 512;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The usable drives, in boot-priority order; `skipped` says why others were left out. */
export function listDrives(roots: DriveRoots): { drives: Drive[]; skipped: string[] } {
  const classDir = path.join(roots.sysfs, 'class', 'block');
  const drives: Drive[] = [];
  const skipped: string[] = [];
  for (const name of fs.readdirSync(classDir).sort()) {
    const entry = path.join(classDir, name);
    if (fs.existsSync(path.join(entry, 'partition'))) continue;
    if (!fs.existsSync(path.join(entry, 'device'))) continue; // loop, dm, md, ram, zram: not drives
    const removable = readAttr(path.join(entry, 'removable'));
    if (removable === undefined) throw new DriveError(`cannot read ${entry}/removable`);
    if (removable !== '0') {
      skipped.push(`${name}: removable (CD-ROM, USB stick or card reader)`);
      continue;
    }
    if (readAttr(path.join(entry, 'ro')) === '1') {
      skipped.push(`${name}: read-only`);
      continue;
    }
    const sizeBytes = Number(readAttr(path.join(entry, 'size')) ?? 0) * 512;
    const device = path.join(roots.dev, name);
    if (sizeBytes === 0 || !readable(device)) {
      skipped.push(`${name}: empty or unreadable (${device})`);
      continue;
    }
    drives.push({
      name,
      path: device,
      sizeBytes,
      model: readAttr(path.join(entry, 'device', 'model')) ?? '',
      serial: readAttr(path.join(entry, 'device', 'serial')) ?? readAttr(path.join(entry, 'serial')) ?? '',
      busPath: busPathOf(entry),
      rotational: readAttr(path.join(entry, 'queue', 'rotational')) === '1',
    });
  }
  drives.sort((a, b) => (a.busPath < b.busPath ? -1 : a.busPath > b.busPath ? 1 : a.name < b.name ? -1 : 1));
  return { drives, skipped };
}

/**
 * The drives a -driveSelector printed, in its order (the first becomes the boot drive). Blank and
 * `#` lines are skipped. An unknown name, a repeated one or an empty choice is an error, before
 * any drive is touched.
 */
export function selectDrives(drives: Drive[], selectorOutput: string, selector: string): Drive[] {
  const chosen: Drive[] = [];
  for (const raw of selectorOutput.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const name = line.replace(/^\/dev\//, '');
    const drive = drives.find((d) => d.name === name);
    if (!drive)
      throw new DriveError(
        `drive selector ${selector} chose '${line}', which is not a usable drive (usable: ${drives.map((d) => d.name).join(', ') || 'none'})`,
      );
    if (chosen.includes(drive)) throw new DriveError(`drive selector ${selector} chose '${line}' twice`);
    chosen.push(drive);
  }
  if (!chosen.length)
    throw new DriveError(
      `drive selector ${selector} chose no drive (it printed nothing): print at least the boot drive's name`,
    );
  return chosen;
}

export function describeDrive(d: Drive): string {
  const gib = (d.sizeBytes / 1024 ** 3).toFixed(1);
  const model = [d.model, d.serial && `serial ${d.serial}`].filter(Boolean).join(', ');
  return `${d.path} (${gib} GiB${model ? `, ${model}` : ''}${d.rotational ? ', rotational' : ''})`;
}
