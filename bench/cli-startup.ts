// Benchmark: start-up of the `cradle` command, which every command, status bar and hook pays.
// `cradle --version` and the help of real commands (which load the command's modules and build
// its options, then exit), against the floor of the same Node binary (`node -e 0`) and of a shell
// (`bash -c true`), all timed by hyperfine in one run. Also `machine list --help` with Node's
// compile cache turned off: what the first run after changing every source file pays.
//
//   node_modules/.bin/node bench/cli-startup.ts   (BENCH_STARTUP_RUNS, default 20 per command;
//   BENCH_CRADLE=<path to another tree's bin/cradle> measures that tree instead, e.g. a before)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { table } from '../src/util/format.ts';
import { cradleBin, repoRoot, runBenchmark, writeResults } from './lib.ts';
import { ratioLine } from './measure.ts';

const NAME = 'cli-startup';
const RUNS = Math.max(3, Number(process.env.BENCH_STARTUP_RUNS ?? 20));
const CRADLE = process.env.BENCH_CRADLE ?? cradleBin;
const NODE = path.join(repoRoot, 'node_modules/.bin/node');
/** Issue 18's goal for `cradle --version`. */
const GOAL_SECONDS = 0.15;

interface Case {
  label: string;
  argv: string[];
  env?: Record<string, string>;
  /** A peer, or a variant of ours shown in the table only: no RATIO line. */
  noRatio?: boolean;
}

/** The commands timed; `inventory` is an SQLite file in the benchmark's scratch directory. */
const cases = (inventory: string): Case[] => [
  { label: 'cradle --version', argv: [CRADLE, '--version'] },
  { label: 'cradle machine list --help', argv: [CRADLE, 'machine', 'list', '--help'] },
  { label: 'cradle installer --help', argv: [CRADLE, 'installer', '--help'] },
  { label: 'cradle image --help', argv: [CRADLE, 'image', '--help'] },
  { label: 'cradle --help', argv: [CRADLE, '--help'] },
  // A real command, as a hook or a status bar runs it: opens the inventory, prints an empty list.
  { label: 'cradle machine list', argv: [CRADLE, 'machine', 'list'], env: { CRADLE_DB: inventory } },
  {
    label: 'cradle machine list --help, no compile cache',
    argv: [CRADLE, 'machine', 'list', '--help'],
    env: { NODE_DISABLE_COMPILE_CACHE: '1' },
    noRatio: true,
  },
  { label: 'node -e 0', argv: [NODE, '-e', '0'], noRatio: true },
  { label: 'bash -c true', argv: ['bash', '-c', 'true'], noRatio: true },
];

interface HyperfineResult {
  command: string;
  mean: number;
  median: number;
  stddev: number;
  min: number;
  user: number;
  system: number;
}

/** Quotes one word for hyperfine, which splits its commands like a shell (with -N, no shell runs). */
const word = (s: string) => (/^[\w./=,:-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

await runBenchmark(NAME, async (c) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `${NAME}-`));
  c.defer(`rm -rf ${work}`, () => fs.rmSync(work, { recursive: true, force: true }));
  const CASES = cases(path.join(work, 'inventory.db'));
  // Every command must work before it is timed (hyperfine would time a failure as well).
  for (const k of CASES)
    execFileSync(k.argv[0], k.argv.slice(1), { stdio: 'ignore', env: { ...process.env, ...k.env } });

  const json = path.join(work, 'hyperfine.json');
  const commands = CASES.map((k) =>
    [...(k.env ? ['env', ...Object.entries(k.env).map(([n, v]) => `${n}=${v}`)] : []), ...k.argv].map(word).join(' '),
  );
  // Interleaving is hyperfine's to do per command; warm-up runs fill the page cache and, for
  // cradle, the compile cache (as any second run of a command finds it).
  execFileSync(
    'hyperfine',
    ['-N', '--warmup', '3', '--runs', String(RUNS), '--style', 'none', '--export-json', json, ...commands],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const results = (JSON.parse(fs.readFileSync(json, 'utf8')) as { results: HyperfineResult[] }).results;
  const byLabel = new Map(CASES.map((k, i) => [k.label, results[i]]));
  const floor = byLabel.get('node -e 0')!;

  const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
  console.log(`\n${CRADLE}, ${RUNS} runs each (medians)\n`);
  console.log(
    table(
      ['command', 'median', 'mean ± sd', 'user + sys', 'vs node -e 0'],
      CASES.map((k) => {
        const r = byLabel.get(k.label)!;
        return [
          k.label,
          ms(r.median),
          `${ms(r.mean)} ± ${ms(r.stddev)}`,
          ms(r.user + r.system),
          `${(r.median / floor.median).toFixed(2)}x`,
        ];
      }),
    ),
  );
  console.log();
  for (const k of CASES.filter((k) => !k.noRatio)) {
    const r = byLabel.get(k.label)!;
    const goal =
      k.argv[1] === '--version'
        ? `goal under ${GOAL_SECONDS * 1000} ms, ${r.median < GOAL_SECONDS ? 'met' : 'NOT met'}`
        : 'issue 18 sets its goal for --version';
    console.log(
      ratioLine(
        `${NAME} ${k.label.replace(/^cradle /, '')}`,
        { label: 'cradle', value: ms(r.median), n: r.median },
        { label: 'node -e 0', value: ms(floor.median), n: floor.median },
        `lower is better; ${goal}`,
      ),
    );
  }
  const file = writeResults(NAME, {
    cradle: CRADLE,
    goalSeconds: GOAL_SECONDS,
    commands: CASES.map((k) => {
      const r = byLabel.get(k.label)!;
      return {
        label: k.label,
        medianSeconds: r.median,
        meanSeconds: r.mean,
        stddevSeconds: r.stddev,
        minSeconds: r.min,
        cpuSeconds: r.user + r.system,
      };
    }),
  });
  console.log(`results: ${file}`);
});
