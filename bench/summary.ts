// The summary of every benchmark: each RATIO line a benchmark printed (Cradle against its best peer
// on the same input, in the same run), the goal the project set for it, and whether it is met.
// run-all.ts keeps the latest lines of each benchmark in bench/results/summary.json (a benchmark
// not run this time keeps its last figures, with their date) and renders bench/results/summary.md.
import fs from 'node:fs';
import path from 'node:path';

const RESULTS = path.join(import.meta.dirname, 'results');

/** A goal: a ratio (ours over the peer's) to stay under, or to reach, for the lines it matches. */
interface Goal {
  bench: string;
  match: RegExp;
  /** `max`: the ratio must be at most `ratio` (times, sizes); `min`: at least (rates). */
  kind: 'max' | 'min';
  ratio: number;
  text: string;
  /** A goal on Cradle's own figure instead of the ratio: read from the line, at most `ratio`. */
  own?: (what: string) => number | undefined;
}

// Issue 18's goals, where a benchmark measures them.
const GOALS: Goal[] = [
  { bench: 'load-image', match: /./, kind: 'max', ratio: 1.0, text: '≤ 1.00x (aim 0.77x)' },
  { bench: 'installer', match: /install step/, kind: 'max', ratio: 1.0, text: '≤ 1.00x' },
  { bench: 'image-add', match: /./, kind: 'max', ratio: 1.0, text: '≤ 1.00x' },
  { bench: 'tftp-server', match: /curl/, kind: 'max', ratio: 1.0, text: '≤ 1.00x (curl: lock-step, as firmware)' },
  { bench: 'dhcp-perfdhcp', match: /./, kind: 'min', ratio: 1.0, text: '≥ 1.00x Kea, no collapse' },
  { bench: 'imageserver-get', match: /zstd/, kind: 'min', ratio: 1.0, text: '≥ 1.00x nginx' },
  { bench: 'imageserver-get', match: /./, kind: 'min', ratio: 0.5, text: '≥ 0.50x nginx' },
  {
    bench: 'cli-startup',
    match: /--version/,
    kind: 'max',
    ratio: 150,
    text: '< 150 ms',
    own: (what) => Number(/cradle ([\d.]+) ms/.exec(what)?.[1] ?? Number.NaN),
  },
  { bench: 'lab-rebirth', match: /rebirth vs first install, power-on/, kind: 'max', ratio: 0.5, text: '≤ 0.50x' },
  {
    bench: 'lab',
    match: /image size, first stage/,
    kind: 'max',
    ratio: 30,
    text: '≤ 30 MB',
    own: (what) => Number(/installer initramfs ([\d.]+) MB/.exec(what)?.[1] ?? Number.NaN),
  },
  { bench: 'lab', match: /boot to a running installer/, kind: 'max', ratio: 1.5, text: '≤ 1.50x' },
];

export interface RatioLine {
  /** What is compared: `NAME: ours X vs peer Y`. */
  what: string;
  ratio: number;
  /** The benchmark's own words on direction ('lower is better', ...). */
  note: string;
}

/** A `RATIO name: ours X vs peer Y = Z x (note)` line, or undefined. */
export function parseRatio(line: string): RatioLine | undefined {
  const m = /^RATIO (.*) = ([\d.]+)x \((.*)\)$/.exec(line.trim());
  return m ? { what: m[1], ratio: Number(m[2]), note: m[3] } : undefined;
}

interface Entry {
  date: string;
  failed: boolean;
  lines: RatioLine[];
}

function goalOf(bench: string, r: RatioLine): Goal | undefined {
  return GOALS.find((g) => g.bench === bench && g.match.test(r.what));
}

function met(g: Goal | undefined, r: RatioLine): string {
  if (!g) return '';
  const n = g.own ? g.own(r.what) : r.ratio;
  if (n === undefined || Number.isNaN(n)) return '?';
  return (g.kind === 'max' ? n <= g.ratio : n >= g.ratio) ? 'yes' : '**no**';
}

/** Merges this run's lines into summary.json and writes summary.md; returns the table. */
export function writeSummary(run: Record<string, { failed: boolean; lines: string[] }>): string {
  const jsonFile = path.join(RESULTS, 'summary.json');
  const all: Record<string, Entry> = fs.existsSync(jsonFile) ? JSON.parse(fs.readFileSync(jsonFile, 'utf8')) : {};
  const date = new Date().toISOString().slice(0, 10);
  for (const [bench, r] of Object.entries(run))
    all[bench] = { date, failed: r.failed, lines: r.lines.map(parseRatio).filter((x) => x !== undefined) };
  const rows = Object.entries(all).flatMap(([bench, e]) =>
    e.lines.length
      ? e.lines.map((r) => {
          const g = goalOf(bench, r);
          const cell = (s: string) => s.replaceAll('|', '\\|');
          return `| ${bench} | ${cell(r.what)} | ${r.ratio.toFixed(2)}x | ${cell(r.note)} | ${g?.text ?? ''} | ${met(g, r)} | ${e.date}${e.failed ? ' (failed)' : ''} |`;
        })
      : [`| ${bench} | (no ratio${e.failed ? ': the benchmark failed' : ''}) | | | | | ${e.date} |`],
  );
  const table = [
    '| benchmark | Cradle vs its best peer, same input, same run | ratio | how to read it | goal | met | measured |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  fs.writeFileSync(`${jsonFile}.tmp`, `${JSON.stringify(all, null, 2)}\n`);
  fs.renameSync(`${jsonFile}.tmp`, jsonFile);
  const md = [
    '# Benchmarks: Cradle against its peers',
    '',
    'Written by `node bench/run-all.ts` (a benchmark not run last time keeps its figures and their date).',
    'Each ratio is Cradle over the peer, measured in one run on the same input; how to read it is the',
    "benchmark's own note. Figures from a 2-core machine unless a benchmark says otherwise.",
    '',
    table,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS, 'summary.md.tmp'), md);
  fs.renameSync(path.join(RESULTS, 'summary.md.tmp'), path.join(RESULTS, 'summary.md'));
  return table;
}
