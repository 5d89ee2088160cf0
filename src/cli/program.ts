// Running a `cradle` program: the same flag handling and error reporting for the full command
// (main.ts) and for the installer-only entry point bundled into the installer image.
import { Command, CommanderError } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import fs from 'node:fs';
import type { ConnectionLimits } from '../util/http/connections.ts';
import { FLAG_FILES, flagFileArgs, kernelCmdlineArgs } from '../installer/flag-files.ts';

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
      'connections at once; when all are taken, the one idle longest gives way to a new one',
      String(d.maxConnections),
    )
    .option('--max-connections-per-client <n>', 'connections at once from one client address', String(d.maxPerAddress));
}

export function connectionLimits(f: ConnectionLimitFlags, d: ConnectionLimits): ConnectionLimits {
  const maxConnections = wholeNumber(f.maxConnections, '--max-connections', 1, 1_000_000);
  const maxPerAddress = wholeNumber(f.maxConnectionsPerClient, '--max-connections-per-client', 1, maxConnections);
  return { ...d, maxConnections, maxPerAddress };
}

export async function runCradle(registers: Register[]): Promise<void> {
  // Output piped into `head` and the like: a closed pipe ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });

  const program = new Command('cradle')
    .description('Cradle: network-boot bare-metal machines and install verified OS images onto them')
    .option('-V, --version', "print Cradle's version")
    // cradle's own options only before a sub-command: `kit build --version 1.0` is the kit's.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  for (const register of registers) register(program);

  try {
    // The installer daemon takes flags from /etc/installer/flags.{default,extra} (as Dominator's installer does), then
    // from `cradle.*` on the kernel command line; its own command line overrides both.
    const argv = [...process.argv];
    // Only as the first argument: sub-commands have a --version of their own (a kit's, an image's).
    if (argv[2] === '--version' || argv[2] === '-V') return void console.log(pkg.version);
    if (argv[2] === 'installer' && !process.env.CRADLE_NO_FLAG_FILES) {
      const cmdline = fs.existsSync('/proc/cmdline') ? fs.readFileSync('/proc/cmdline', 'utf8') : '';
      argv.splice(3, 0, ...flagFileArgs(FLAG_FILES), ...kernelCmdlineArgs(cmdline));
    }
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    console.error(`cradle: ${(err as Error).message}`);
    if (process.env.CRADLE_DEBUG) console.error(err);
    process.exit(1);
  }
}
