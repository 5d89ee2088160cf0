// Runs every test file (src/**/*.test.ts beside the code, test/**/*.test.ts for the slower
// integration tiers) with Node's test runner on the pinned runtime, one file at a time (the
// integration tests use loop devices, mounts and namespaces, and the machine has two cores), each
// with a time limit: a file that hangs (a server left listening, a wait that never ends) is
// stopped with everything it started, and the run fails naming it instead of hanging.
//   node scripts/run-tests.ts [FILTER...]     CRADLE_TEST_FILE_MINUTES=N to change the limit
// A file may ask for a longer limit in its header (scripts/file-minutes.ts).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileMinutes } from './file-minutes.ts';

const root = path.resolve(import.meta.dirname, '..');
const only = process.argv.slice(2);
const files: string[] = [];
const walk = (dir: string) => {
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) walk(p);
    else if (ent.name.endsWith('.test.ts')) files.push(path.relative(root, p));
  }
};
for (const dir of ['src', 'test']) if (fs.existsSync(path.join(root, dir))) walk(path.join(root, dir));
const selected = (only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files).sort();
if (selected.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

interface Counts {
  tests: number;
  pass: number;
  fail: number;
  skipped: number;
  cancelled: number;
}

/** Runs one file; resolves to its counts as its reporter summed them, or why it did not finish. */
function runFile(file: string): Promise<Counts & { problem?: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    // The QEMU tiers take minutes under emulation; nothing takes this long.
    const limit = fileMinutes(fs.readFileSync(path.join(root, file), 'utf8'), process.env.CRADLE_TEST_FILE_MINUTES);
    // Its own process group, so a timeout stops what the file started too.
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', '--test', '--test-concurrency=1', '--test-reporter=spec', file],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], detached: true },
    );
    let tail = '';
    child.stdout.on('data', (b: Buffer) => {
      process.stdout.write(b);
      tail = (tail + b.toString()).slice(-4000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, limit * 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const count = (name: string) => Number(new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(tail)?.[1] ?? 0);
      const counts = {
        tests: count('tests'),
        pass: count('pass'),
        fail: count('fail'),
        skipped: count('skipped'),
        cancelled: count('cancelled'),
      };
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      if (timedOut) return resolve({ ...counts, problem: `${file}: stopped after ${limit} minutes` });
      if (code !== 0 && counts.fail === 0 && counts.cancelled === 0)
        return resolve({ ...counts, problem: `${file}: exited ${code ?? signal} after ${seconds} s` });
      resolve(counts);
    });
  });
}

const total: Counts = { tests: 0, pass: 0, fail: 0, skipped: 0, cancelled: 0 };
const failedFiles: string[] = [];
const problems: string[] = [];
const started = performance.now();
for (const file of selected) {
  const r = await runFile(file);
  for (const k of Object.keys(total) as (keyof Counts)[]) total[k] += r[k];
  if (r.fail || r.cancelled) failedFiles.push(file);
  if (r.problem) problems.push(r.problem);
}
const minutes = ((performance.now() - started) / 60_000).toFixed(1);
console.log(`\n== ${selected.length} test files in ${minutes} min`);
for (const f of failedFiles) console.log(`failed: ${f}`);
for (const p of problems) console.log(`did not finish: ${p}`);
// The summary in the runner's own words, then the plain line: what CI reads.
for (const k of Object.keys(total) as (keyof Counts)[]) console.log(`ℹ ${k} ${total[k]}`);
console.log(`${total.pass} passed, ${total.fail + total.cancelled + problems.length} failed, ${total.skipped} skipped`);
process.exit(total.fail || total.cancelled || problems.length ? 1 : 0);
