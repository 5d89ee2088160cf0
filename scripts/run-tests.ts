// Runs every test file (src/**/*.test.ts beside the code, test/**/*.test.ts for the slower
// integration tiers) with Node's test runner on the pinned runtime, one file at a time: the
// integration tests use loop devices and mounts, and the machine has two cores.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

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
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
if (selected.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  [
    '--disable-warning=ExperimentalWarning',
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    ...selected.sort(),
  ],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
