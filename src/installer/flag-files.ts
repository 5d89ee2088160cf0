// Dominator's installer pre-loads flags from /etc/installer/flags.default then flags.extra: one
// `name=value` per line, blank lines and `#`/`;` comments skipped. An installer image keeps using
// that: Dominator's camelCase names (tmpRoot, driveSelector, ...) map to our --kebab-case options.
import fs from 'node:fs';

export const FLAG_FILES = ['/etc/installer/flags.default', '/etc/installer/flags.extra'];

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Arguments from flag files (missing files are fine); a malformed line is an error naming it. */
export function flagFileArgs(files: string[]): string[] {
  const args: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#') || line.startsWith(';')) return;
      const eq = line.indexOf('=');
      const name = (eq < 0 ? line : line.slice(0, eq)).trim();
      if (!name || /\s/.test(name)) throw new Error(`${file}:${i + 1}: expected name=value, got '${raw}'`);
      args.push(eq < 0 ? `--${kebab(name)}` : `--${kebab(name)}=${line.slice(eq + 1).trim()}`);
    });
  }
  return args;
}

/**
 * Flags from the kernel command line: `cradle.NAME=VALUE` tokens become `--NAME=VALUE`, so a boot
 * server's iPXE script can tell a netbooted installer where its configuration is.
 */
export function kernelCmdlineArgs(cmdline: string): string[] {
  const args: string[] = [];
  for (const token of cmdline.trim().split(/\s+/)) {
    const m = /^cradle\.([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(token);
    if (m) args.push(m[2] === undefined ? `--${m[1]}` : `--${m[1]}=${m[2]}`);
  }
  return args;
}
