// Measuring in bench/: sides run interleaved and repeated, their medians, the table a benchmark
// prints and the RATIO line run-all.ts collects (ours over the best peer's, in the same run).
import { table } from '../src/util/format.ts';
import { RUNS, writeResults } from './lib.ts';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One measurement: `seconds` plus whatever else the benchmark records about the run. */
export type Sample = { seconds: number } & Record<string, number>;

export interface Side {
  name: string;
  /** Untimed setup before every run (e.g. a fresh file system). */
  prepare?: () => Promise<void>;
  run: () => Promise<Sample>;
}

/**
 * One warm-up run of each side, then RUNS measured runs of each, interleaved (and alternating
 * which side goes first) so that drift in the machine's state hits both sides alike.
 */
export async function measureInterleaved(sides: Side[], runs = RUNS): Promise<Record<string, Sample[]>> {
  const out: Record<string, Sample[]> = Object.fromEntries(sides.map((s) => [s.name, []]));
  const once = async (side: Side) => {
    await side.prepare?.();
    return side.run();
  };
  for (const side of sides) {
    const s = await once(side);
    console.log(`  warm-up  ${side.name.padEnd(28)} ${s.seconds.toFixed(2)} s`);
  }
  for (let i = 0; i < runs; i++) {
    for (const side of i % 2 ? [...sides].reverse() : sides) {
      const s = await once(side);
      out[side.name].push(s);
      console.log(`  run ${i + 1}/${runs} ${side.name.padEnd(28)} ${s.seconds.toFixed(2)} s`);
    }
  }
  return out;
}

/** Median of each numeric field over a side's samples. */
export function medians(samples: Sample[]): Sample {
  const keys = Object.keys(samples[0]);
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k]))])) as Sample;
}

export const MB = 1e6;
export const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
export const mbps = (bytes: number, seconds: number) => `${(bytes / MB / seconds).toFixed(1)} MB/s`;
export const secs = (s: number) => `${s.toFixed(2)} s`;

/** `RATIO name: ours X vs peer Y = Z x (...)`: the line run-all.ts collects. */
export function ratioLine(
  name: string,
  ours: { label: string; value: string; n: number },
  peer: { label: string; value: string; n: number },
  better: string,
): string {
  return `RATIO ${name}: ${ours.label} ${ours.value} vs ${peer.label} ${peer.value} = ${(ours.n / peer.n).toFixed(2)}x (${better})`;
}

/**
 * Measures two sides (Cradle's first, the peer second) interleaved, prints the table of medians
 * and runs, writes the results and prints the RATIO line (ours over the peer's time).
 */
export async function compareTwo(
  name: string,
  sides: [Side, Side],
  labels: { ours: string; peer: string; better: string },
  extra: Record<string, unknown> = {},
): Promise<{ ours: Sample; peer: Sample }> {
  const { samples, ours, peer } = await measureTwo(sides);
  const ratio = ours.seconds / peer.seconds;
  console.log(`results: ${writeResults(name, { ...extra, samples, medians: { cradle: ours, peer }, ratio })}`);
  console.log(
    ratioLine(
      name,
      { label: labels.ours, value: secs(ours.seconds), n: ours.seconds },
      { label: labels.peer, value: secs(peer.seconds), n: peer.seconds },
      labels.better,
    ),
  );
  return { ours, peer };
}

/**
 * Runs two sides interleaved (ours first) and prints their medians and runs as a table, with one
 * more column when asked (a rate, say), headed by `title`.
 */
export async function measureTwo(
  sides: [Side, Side],
  title = '',
  column?: { header: string; cell: (median: Sample) => string },
): Promise<{ samples: Record<string, Sample[]>; ours: Sample; peer: Sample }> {
  const { samples, medians: m } = await measureSides(sides, title, column);
  return { samples, ours: m[0], peer: m[1] };
}

/** measureTwo for any number of sides: the medians in the sides' order. */
export async function measureSides(
  sides: Side[],
  title = '',
  column?: { header: string; cell: (median: Sample) => string },
): Promise<{ samples: Record<string, Sample[]>; medians: Sample[] }> {
  const samples = await measureInterleaved(sides);
  const m = sides.map((s) => medians(samples[s.name]));
  console.log();
  console.log(
    table(
      [title, 'median time', ...(column ? [column.header] : []), 'runs (s)'],
      sides.map((s, i) => [
        s.name,
        secs(m[i].seconds),
        ...(column ? [column.cell(m[i])] : []),
        samples[s.name].map((x) => x.seconds.toFixed(2)).join(' '),
      ]),
    ),
  );
  return { samples, medians: m };
}
