// Runs every benchmark in sequence, each in its own process (so one's servers, mounts and memory
// cannot affect the next), then prints one table of their RATIO lines with the goals (summary.ts),
// also written to bench/results/summary.md. Exits non-zero if any benchmark failed. Arguments select benchmarks by name: `run-all.ts load-image reinstall-cache`.
//
//   node_modules/.bin/node bench/run-all.ts
import { spawn } from 'node:child_process';
import path from 'node:path';
import { writeSummary } from './summary.ts';

const BENCHMARKS = [
  'cli-startup',
  'image-add',
  'kit-add',
  'nodegroup-build',
  'load-image',
  'reinstall-cache',
  'concurrent-clients',
  'installer',
  'tftp-get',
  'http-boot',
  'imageserver-get',
  'tftp-server',
  'dhcp-server',
  'dhcp-perfdhcp',
  'status-page',
  'remote-shell',
  'lab',
  'lab-rebirth',
  'head-node',
];
const chosen = process.argv.length > 2 ? process.argv.slice(2) : BENCHMARKS;
const unknown = chosen.filter((b) => !BENCHMARKS.includes(b));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.join(', ')}`);
  process.exit(2);
}

const summary: string[] = [];
const failed: string[] = [];
const run: Record<string, { failed: boolean; lines: string[] }> = {};
for (const name of chosen) {
  console.log(`\n=== ${name} ===`);
  const started = performance.now();
  const ratios: string[] = [];
  const code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', path.join(import.meta.dirname, `${name}.ts`)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let partial = '';
    child.stdout.on('data', (b: Buffer) => {
      process.stdout.write(b);
      const lines = (partial + b.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) if (l.startsWith('RATIO ')) ratios.push(l);
    });
    child.on('close', (c) => resolve(c ?? 1));
  });
  const took = ((performance.now() - started) / 1000).toFixed(0);
  if (code !== 0) failed.push(name);
  run[name] = { failed: code !== 0, lines: ratios };
  summary.push(`${name} (${took} s)${code ? ` FAILED (exit ${code})` : ''}`, ...ratios.map((r) => `  ${r}`));
}

console.log('\n=== summary ===');
console.log(summary.join('\n'));
console.log(`\n${writeSummary(run)}`);
console.log('results: bench/results/*.json, the table: bench/results/summary.md');
if (failed.length) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
