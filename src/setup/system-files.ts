// The head node's own settings, written into the new system from the plan (Kusu's host name,
// time zone, root password, keyboard and language screens): pure functions from the plan to file
// contents, golden-tested, so the install step only writes what they say. File systems are named
// by label and logical volumes by their /dev/VG/LV path, which stay true whatever UUIDs mkfs makes.
import { fsLabel, type HeadLayout } from './layout.ts';
import type { SetupPlan } from './plan.ts';

export interface SystemFile {
  path: string;
  content: string;
  mode: number;
}

export interface SystemLink {
  path: string;
  target: string;
}

/** /etc/fstab: partitions by label, logical volumes by path, swap in the volume group. */
export function headFstab(layout: HeadLayout): string {
  const lines = ['# Written by cradle setup: partitions by label, logical volumes by path.'];
  const rows: [string, string, string, string, number][] = [];
  const vg = layout.volumeGroup.name;
  for (const v of layout.volumes)
    rows.push(
      v.fs === 'swap'
        ? [`/dev/${vg}/${v.name}`, 'none', 'swap', 'sw', 0]
        : [`/dev/${vg}/${v.name}`, v.mount, v.fs, 'defaults', v.mount === '/' ? 1 : 2],
    );
  for (const p of layout.partitions.filter((x) => x.mount && x.fs))
    rows.push(
      p.fs === 'vfat'
        ? ['LABEL=ESP', p.mount as string, 'vfat', 'umask=0077', 2]
        : [`LABEL=${fsLabel(p.mount as string)}`, p.mount as string, p.fs as string, 'defaults', 2],
    );
  rows.sort((a, b) => (a[1] === '/' ? -1 : b[1] === '/' ? 1 : a[1].localeCompare(b[1])));
  for (const [what, where, type, options, pass] of rows)
    lines.push(`${what}\t${where}\t${type}\t${options}\t0\t${pass}`);
  return `${lines.join('\n')}\n`;
}

/** /etc/shadow with root's password replaced (the rest of the line and every other line kept). */
export function withRootPassword(shadow: string, hash: string): string {
  const days = Math.floor(Date.now() / 86_400_000);
  const lines = shadow.split('\n');
  const i = lines.findIndex((l) => l.startsWith('root:'));
  if (i < 0) return `root:${hash}:${days}:0:99999:7:::\n${shadow}`;
  const f = lines[i].split(':');
  f[1] = hash;
  f[2] = String(days);
  lines[i] = f.join(':');
  return lines.join('\n');
}

export function systemFiles(p: SetupPlan): { files: SystemFile[]; links: SystemLink[] } {
  const short = p.hostname.split('.')[0];
  const file = (path: string, content: string, mode = 0o644): SystemFile => ({ path, content, mode });
  return {
    files: [
      file('/etc/hostname', `${short}\n`),
      file(
        '/etc/hosts',
        `127.0.0.1\tlocalhost\n${p.network.provisioning.address}\t${p.hostname}\t${short}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
      ),
      file('/etc/timezone', `${p.timezone}\n`),
      file('/etc/default/locale', `LANG=${p.language}\n`),
      file('/etc/locale.conf', `LANG=${p.language}\n`),
      file('/etc/vconsole.conf', `KEYMAP=${p.keyboard}\n`),
      // Debian's console-setup reads the layout from here; a console keymap names its XKB layout first.
      file(
        '/etc/default/keyboard',
        `XKBMODEL="pc105"\nXKBLAYOUT="${p.keyboard.split('-')[0]}"\nXKBVARIANT="${p.keyboard.split('-').slice(1).join('-')}"\nXKBOPTIONS=""\nBACKSPACE="guess"\n`,
      ),
      file('/etc/fstab', headFstab(p.storage)),
    ],
    links: [{ path: '/etc/localtime', target: `/usr/share/zoneinfo/${p.timezone}` }],
  };
}
