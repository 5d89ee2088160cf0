// /etc/fstab and /etc/crypttab for the installed system, from what was made: file systems are
// named by UUID (labels collide when a disk from another machine is plugged in), encrypted ones
// through their mapper device opened by crypttab with the key kept on the root file system.
export interface MadeFileSystem {
  mountPoint: string;
  type: 'ext4' | 'xfs' | 'vfat';
  /** The file system's UUID (set at mkfs time, so planning knows it). */
  uuid: string;
  /** LUKS container holding it, if encrypted. */
  luks?: { uuid: string; name: string };
  /** The drive was discarded, so it supports TRIM. */
  discard: boolean;
}

export const KEY_FILE = '/etc/crypt.key';

function options(fs: MadeFileSystem): string {
  const opts: string[] = [];
  if (fs.type === 'vfat') opts.push('umask=0077'); // the ESP holds no secrets, but nobody else writes it
  if (fs.discard) opts.push('discard');
  if (fs.luks) opts.push('nofail', `x-systemd.device-timeout=30s`);
  return opts.length ? opts.join(',') : 'defaults';
}

/** Root first (pass 1), then the rest in the given order (pass 2; vfat pass 2 too, fsck.vfat exists). */
export function renderFstab(list: MadeFileSystem[]): string {
  const ordered = [...list].sort((a, b) => (a.mountPoint === '/' ? -1 : b.mountPoint === '/' ? 1 : 0));
  const rows = ordered.map((fs) => [
    `UUID=${fs.uuid}`,
    fs.mountPoint,
    fs.type,
    options(fs),
    '0',
    fs.mountPoint === '/' ? '1' : '2',
  ]);
  return `${['# /etc/fstab: written by the Cradle installer', ...columns(rows)].join('\n')}\n`;
}

export function renderCrypttab(list: MadeFileSystem[]): string {
  const rows = list
    .filter((fs) => fs.luks)
    .map((fs) => [fs.luks!.name, `UUID=${fs.luks!.uuid}`, KEY_FILE, fs.discard ? 'luks,discard' : 'luks']);
  return `${['# /etc/crypttab: written by the Cradle installer', ...columns(rows)].join('\n')}\n`;
}

function columns(rows: string[][]): string[] {
  if (!rows.length) return [];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join(' '));
}
