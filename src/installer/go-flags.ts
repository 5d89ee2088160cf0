// The installer's flags as Dominator's installer takes them, in Go's flag syntax: `-name=value`,
// `-name value`, `--name=value`, booleans as `-name` or `-name=true|false|1|0`, under Dominator's
// camelCase names (renamed ones mapped). They come from three places, in this order, the later
// overriding the earlier: /etc/installer/flags.default and flags.extra (`name=value` lines), the
// kernel command line (`cradle.name=value`), and the command line. Everything is rewritten into
// the one spelling the command-line parser knows, `--kebab-case`, which stays Cradle's own.
import fs from 'node:fs';

export const FLAG_FILES = ['/etc/installer/flags.default', '/etc/installer/flags.extra'];

/** What the rewriting needs to know of one of the installer's options. */
export interface FlagSpec {
  /** The long name, kebab-case, without dashes (`skip-network` for --skip-network and --no-skip-network). */
  name: string;
  takesValue: boolean;
  /** `--name` exists (a boolean that can be turned on). */
  positive: boolean;
  /** `--no-name` exists (a boolean that can be turned off). */
  negative: boolean;
}

/**
 * Dominator's names that Cradle spells differently: the installer's own and its libraries'
 * (logbuf's -logDir, setupserver's TLS files). Any other camelCase name maps to kebab-case.
 */
export const RENAMED_FLAGS: Readonly<Record<string, string>> = {
  portNum: 'status-port',
  logDir: 'log-directory',
  CAfile: 'tls-ca',
  certFile: 'tls-cert',
  keyFile: 'tls-key',
  identityCAfile: 'identity-ca-file',
  imageServerPortNum: 'image-server-port',
};

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Cradle's long name for a flag written under Dominator's name or Cradle's own. */
export function cradleName(name: string): string {
  return RENAMED_FLAGS[name] ?? kebab(name);
}

// Go's strconv.ParseBool, plus the yes/no and on/off a kernel command line tends to carry.
const TRUE = new Set(['1', 't', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'f', 'false', 'no', 'off']);

/** A flag that exists but was given a value it cannot take: always an error, wherever it came from. */
export class FlagValueError extends Error {}

/** The arguments of the installer's command line, rewritten; `ignored` says what was skipped and why. */
export interface RewrittenFlags {
  args: string[];
  ignored: string[];
}

type Specs = ReadonlyMap<string, FlagSpec>;

export function specsByName(specs: FlagSpec[]): Specs {
  return new Map(specs.map((s) => [s.name, s]));
}

/**
 * One flag in the parser's spelling. `value` undefined means none was written (`-name`); `where`
 * names the place in messages.
 */
function rewrite(spec: FlagSpec, written: string, value: string | undefined, where: string): string[] {
  if (spec.takesValue) {
    if (value === undefined) throw new FlagValueError(`${where}: -${written} needs a value (-${written}=VALUE)`);
    return [`--${spec.name}=${value}`];
  }
  const on = value === undefined || TRUE.has(value.toLowerCase());
  if (!on && !FALSE.has(value!.toLowerCase()))
    throw new FlagValueError(`${where}: -${written} is true or false (1 or 0), not '${value}'`);
  if (on && spec.positive) return [`--${spec.name}`];
  if (!on && spec.negative) return [`--no-${spec.name}`];
  // Off is the default of a flag that has no off spelling (-version=false): nothing to pass on.
  if (!on) return [];
  throw new FlagValueError(`${where}: -${written} cannot be turned on`);
}

/** `name=value` lines of Dominator's flag files, in order; missing files are fine. */
export function flagFileArgs(files: string[], specs: Specs): RewrittenFlags {
  const out: RewrittenFlags = { args: [], ignored: [] };
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
      const where = `${file}:${i + 1}`;
      const eq = line.indexOf('=');
      // A leading dash is how the flag is written on a command line; a file copied from one keeps it.
      const name = (eq < 0 ? line : line.slice(0, eq)).trim().replace(/^--?/, '');
      if (!name || /\s/.test(name)) throw new FlagValueError(`${where}: expected name=value, got '${raw}'`);
      const spec = specs.get(cradleName(name));
      // A site's old file must never stop a rack: a flag this installer lacks is logged and skipped.
      if (!spec) out.ignored.push(`${where}: unknown flag '${name}' ignored`);
      else out.args.push(...rewrite(spec, name, eq < 0 ? undefined : line.slice(eq + 1).trim(), where));
    });
  }
  return out;
}

/**
 * `cradle.NAME[=VALUE]` tokens of the kernel command line, so a boot server's iPXE script can set
 * any flag. Other `cradle.` tokens belong to others (`cradle setup` on the head-node ISO reads
 * cradle.wipe): ignored here, and said so.
 */
export function kernelCmdlineArgs(cmdline: string, specs: Specs): RewrittenFlags {
  const out: RewrittenFlags = { args: [], ignored: [] };
  for (const token of cmdline.trim().split(/\s+/)) {
    const m = /^cradle\.([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/.exec(token);
    if (!m) continue;
    const spec = specs.get(cradleName(m[1]));
    if (!spec) out.ignored.push(`kernel command line: '${token}' is not an installer flag: ignored`);
    else out.args.push(...rewrite(spec, m[1], m[2], 'kernel command line'));
  }
  return out;
}

/**
 * The command line before a sub-command's name, in Go's syntax or Cradle's. As Go's flag package
 * does, flags end at the first argument that is not one (a sub-command) or at `--`; the rest is
 * passed on untouched. An unknown flag here is an error: whoever typed it is there to read it.
 */
export function commandLineArgs(argv: string[], specs: Specs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--' || !arg.startsWith('-') || arg === '-') return [...out, ...argv.slice(i)];
    if (arg === '-h' || arg === '--help' || arg === '-help') {
      out.push('--help');
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const written = eq < 0 ? body : body.slice(0, eq);
    let value = eq < 0 ? undefined : body.slice(eq + 1);
    // `--no-skip-network`: Cradle's spelling of a boolean's off.
    const negated = written.startsWith('no-') && value === undefined ? specs.get(written.slice(3)) : undefined;
    if (negated?.negative) {
      out.push(`--${written}`);
      continue;
    }
    const spec = specs.get(cradleName(written));
    if (!spec) throw new FlagValueError(`unknown flag '${arg}' ('cradle installer --help' lists them)`);
    if (spec.takesValue && value === undefined) {
      if (i + 1 >= argv.length) throw new FlagValueError(`${arg} needs a value`);
      value = argv[++i];
    }
    out.push(...rewrite(spec, written, value, 'command line'));
  }
  return out;
}
