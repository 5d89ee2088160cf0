// What is mounted where, from /proc/self/mounts (whose paths escape space, tab, newline and
// backslash as octal, e.g. "\040").
import fs from 'node:fs';

export function mountPoints(): string[] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) =>
      line.split(' ')[1].replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))),
    );
}

/** Mount points strictly below `dir`, outermost first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return mountPoints().filter((m) => m.startsWith(prefix));
}
