// Running a `cradle` program: the same flag handling and error reporting for the full command
// (main.ts) and for the installer-only entry point bundled into the installer image.
import { Command, CommanderError } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import fs from 'node:fs';
import type { ConnectionLimits } from '../util/http/connections.ts';
import {
  commandLineArgs,
  FLAG_FILES,
  type FlagSpec,
  flagFileArgs,
  kernelCmdlineArgs,
  specsByName,
} from '../installer/go-flags.ts';

export type Register = (program: Command) => void;

/** A whole-number option within bounds, or an error naming the flag and the range. */
export function wholeNumber(value: string, flag: string, min: number, max: number, unit = ''): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${flag} takes a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max}, not '${value}'`);
  return n;
}

/** A duration option in seconds (0 or more), or an error naming the flag. */
export function seconds(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} takes seconds (0 or more), got '${value}'`);
  return n;
}

/**
 * --tls-ca, --tls-cert and --tls-key, which go together: all three, or none (`withoutThem` says
 * what that means for this command).
 */
export function tlsTriple(
  f: { tlsCa?: string; tlsCert?: string; tlsKey?: string },
  withoutThem: string,
): { ca: string; cert: string; key: string } | undefined {
  const given = [f.tlsCa, f.tlsCert, f.tlsKey].filter(Boolean).length;
  if (given !== 0 && given !== 3)
    throw new Error(
      `--tls-ca, --tls-cert and --tls-key go together: give all three (cradle pki, docs/pki.md), or none for ${withoutThem}`,
    );
  return f.tlsCa ? { ca: f.tlsCa, cert: f.tlsCert!, key: f.tlsKey! } : undefined;
}

export interface ConnectionLimitFlags {
  maxConnections: string;
  maxConnectionsPerClient: string;
}

/** --max-connections and --max-connections-per-client of a server (util/http/connections.ts). */
export function addConnectionLimitOptions(cmd: Command, d: ConnectionLimits): Command {
  return cmd
    .option(
      '--max-connections <n>',
      'connections at once; when all are taken, the one idle longest (or, with none idle, one reading its answer at a trickle) gives way to a new one',
      String(d.maxConnections),
    )
    .option('--max-connections-per-client <n>', 'connections at once from one client address', String(d.maxPerAddress));
}

export function connectionLimits(f: ConnectionLimitFlags, d: ConnectionLimits): ConnectionLimits {
  const maxConnections = wholeNumber(f.maxConnections, '--max-connections', 1, 1_000_000);
  const maxPerAddress = wholeNumber(f.maxConnectionsPerClient, '--max-connections-per-client', 1, maxConnections);
  return { ...d, maxConnections, maxPerAddress };
}

/**
 * Runs `cradle` with the given commands. `registers` may be a function that loads them, called
 * only when the command line needs them: `cradle --version` is answered without (main.ts).
 */
export async function runCradle(registers: Register[] | (() => Promise<Register[]>)): Promise<void> {
  // Output piped into `head` and the like: a closed pipe ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });

  // Only as the first argument: sub-commands have a --version of their own (a kit's, an image's).
  if (process.argv[2] === '--version' || process.argv[2] === '-V') return void console.log(pkg.version);

  const program = new Command('cradle')
    .description('Cradle: network-boot bare-metal machines and install verified OS images onto them')
    .option('-V, --version', "print Cradle's version")
    // cradle's own options only before a sub-command: `kit build --version 1.0` is the kit's.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  for (const register of typeof registers === 'function' ? await registers() : registers) register(program);

  try {
    let argv = [...process.argv];
    const installer = program.commands.find((c) => c.name() === 'installer');
    if (argv[2] === 'installer' && installer)
      argv = [...argv.slice(0, 3), ...installerArgs(installer, argv.slice(3), flagSources())];
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    console.error(`cradle: ${(err as Error).message}`);
    if (process.env.CRADLE_DEBUG) console.error(err);
    process.exit(1);
  }
}

/** What the installer's flag rewriting needs of its options, read from the parser's own table. */
export function flagSpecs(cmd: Command): FlagSpec[] {
  const specs = new Map<string, FlagSpec>();
  for (const o of cmd.options) {
    if (!o.long) continue;
    const name = o.long.slice(o.negate ? 5 : 2);
    const spec = specs.get(name) ?? { name, takesValue: false, positive: false, negative: false };
    if (o.required || o.optional) spec.takesValue = true;
    else if (o.negate) spec.negative = true;
    else spec.positive = true;
    specs.set(name, spec);
  }
  return [...specs.values()];
}

/** Where the installer's flags come from besides its command line. */
export interface FlagSources {
  flagFiles: string[];
  kernelCmdline: string;
}

/**
 * Dominator's flag files and this machine's kernel command line. CRADLE_FLAG_FILES (paths,
 * colon-separated) names other flag files, CRADLE_NO_FLAG_FILES reads neither (tests on a host).
 */
function flagSources(): FlagSources {
  if (process.env.CRADLE_NO_FLAG_FILES) return { flagFiles: [], kernelCmdline: '' };
  const files = process.env.CRADLE_FLAG_FILES;
  return {
    flagFiles: files === undefined ? FLAG_FILES : files.split(':').filter(Boolean),
    kernelCmdline: fs.existsSync('/proc/cmdline') ? fs.readFileSync('/proc/cmdline', 'utf8') : '',
  };
}

/**
 * The installer's arguments as Dominator's installer takes them: from /etc/installer/flags.default
 * and flags.extra, then `cradle.*` on the kernel command line, then its own command line, the later
 * overriding the earlier (go-flags.ts). What the first two held that the installer does not know
 * is passed on (--ignored-flag) for the daemon to log.
 */
export function installerArgs(installer: Command, args: string[], sources: FlagSources): string[] {
  const specs = specsByName(flagSpecs(installer));
  const given = commandLineArgs(args, specs);
  const read = [flagFileArgs(sources.flagFiles, specs), kernelCmdlineArgs(sources.kernelCmdline, specs)];
  return [
    ...read.flatMap((r) => r.args),
    ...read.flatMap((r) => r.ignored.map((why) => `--ignored-flag=${why}`)),
    ...given,
  ];
}
