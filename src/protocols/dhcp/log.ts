// The DHCP packet log, in the original installer's layout so its operators'
// tooling keeps working: one numbered directory per answer with the raw packet, a readable option
// dump and one raw file per option. Unlike the original there is no limit of 101 runs: the first
// free number is used, however many directories exist.
import fs from 'node:fs';
import path from 'node:path';
import type { DhcpLease } from './client.ts';
import { optionName } from './packet.ts';

const FILE_MODE = 0o644;

/** Every byte printable ASCII (so the option can be shown as text too). */
const printable = (b: Buffer) => b.length > 0 && b.every((c) => c >= 0x20 && c <= 0x7e);

/** The `options` file: per option `Code: %3d/<name>` then `  value: 0x<hex>` [` ("<text>")`]. */
export function formatOptions(options: Map<number, Buffer>): string {
  let out = '';
  for (const [code, value] of [...options].sort(([a], [b]) => a - b)) {
    out += `Code: ${String(code).padStart(3)}/${optionName(code)}\n`;
    out += `  value: 0x${value.toString('hex')}${printable(value) ? ` ("${value.toString('latin1')}")` : ''}\n`;
  }
  return out;
}

/** Creates the first free `<baseDir>/<N>` (N = 0, 1, ...) and returns it. */
function makeRunDirectory(baseDir: string): string {
  fs.mkdirSync(baseDir, { recursive: true });
  const taken = new Set(fs.readdirSync(baseDir));
  for (let n = 0; ; n++) {
    if (taken.has(String(n))) continue;
    const dir = path.join(baseDir, String(n));
    try {
      fs.mkdirSync(dir, { mode: 0o755 });
      return dir;
    } catch (err) {
      // Made by a concurrent writer since readdir: try the next number.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

function write(dir: string, name: string, data: string | Buffer): void {
  const file = path.join(dir, name);
  fs.writeFileSync(file, data, { mode: FILE_MODE });
  fs.chmodSync(file, FILE_MODE); // the umask must not make the log unreadable
}

/**
 * Writes the lease's ACK into the next free `<baseDir>/<N>` and returns that directory. Files:
 * `interface`, `ipaddr`, `netmask` and `router` (when known; one line per router), `packet`
 * (raw), `options` (text) and `option.<code>_<name>` (raw values). Text files end in a newline.
 */
export function writeDhcpLog(baseDir: string, lease: DhcpLease): string {
  const dir = makeRunDirectory(baseDir);
  write(dir, 'interface', `${lease.interface}\n`);
  write(dir, 'ipaddr', `${lease.ip}\n`);
  if (lease.subnetMask) write(dir, 'netmask', `${lease.subnetMask}\n`);
  if (lease.routers.length) write(dir, 'router', lease.routers.map((r) => `${r}\n`).join(''));
  write(dir, 'packet', lease.packet);
  write(dir, 'options', formatOptions(lease.options));
  for (const [code, value] of lease.options) write(dir, `option.${code}_${optionName(code)}`, value);
  return dir;
}
