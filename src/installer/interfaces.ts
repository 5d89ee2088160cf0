// The machine's Ethernet interfaces, from sysfs: an interface with a `device`
// behind it that is not a bond, bridge, VLAN or tun/tap. The sysfs root is a parameter so tests
// can describe interfaces of their own.
import fs from 'node:fs';
import path from 'node:path';

export interface EthernetInterface {
  name: string;
  mac: string;
  /** Bus address of the NIC (e.g. 0000:00:03.0): pins the name in the installed system. */
  busId: string;
  driver: string;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function listEthernetInterfaces(sysfs: string): EthernetInterface[] {
  const dir = path.join(sysfs, 'class', 'net');
  const out: EthernetInterface[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const entry = path.join(dir, name);
    if (!fs.existsSync(path.join(entry, 'device'))) continue;
    if (['bonding', 'bridge', 'tun_flags'].some((f) => fs.existsSync(path.join(entry, f)))) continue;
    if (read(path.join(entry, 'type')) !== '1') continue; // ARPHRD_ETHER
    const mac = read(path.join(entry, 'address'));
    if (!mac) continue;
    const device = fs.readlinkSync(path.join(entry, 'device'));
    const driverLink = path.join(entry, 'device', 'driver');
    out.push({
      name,
      mac: mac.toLowerCase(),
      busId: path.basename(device),
      driver: fs.existsSync(driverLink) ? path.basename(fs.readlinkSync(driverLink)) : '',
    });
  }
  return out;
}

/** Carrier present: the link is connected to a live switch port. A down link reads as no carrier. */
export function hasCarrier(sysfs: string, name: string): boolean {
  return read(path.join(sysfs, 'class', 'net', name, 'carrier')) === '1';
}
