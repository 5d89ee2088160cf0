// The small tree of issue 18 ("a 54 MB Python library, 1,400 files"): the standard library of the
// Debian python3 on this machine, /usr/lib/python3.N (1,403 files, 52 MB on Debian 12's 3.11; sizes
// from a few bytes to about 1 MB, mostly source text, a few shared objects and __pycache__). It is
// copied into the benchmark's scratch directory first, so that every side reads the same tree,
// from the same file system as the other sources, and nothing compiling .pyc files changes it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The newest /usr/lib/python3.N with its standard library, or undefined. */
export function pythonStdlib(): string | undefined {
  const found = fs
    .readdirSync('/usr/lib')
    .map((name) => /^python3\.(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && fs.existsSync(path.join('/usr/lib', m[0], 'os.py')))
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  return found.length ? path.join('/usr/lib', found[0][0]) : undefined;
}

/** Copies the Python standard library to `<work>/small-tree` and returns that path. */
export function smallTree(work: string): string {
  const source = pythonStdlib();
  if (!source) {
    throw new Error(
      "the small-tree case needs a Python standard library in /usr/lib/python3.N: install Debian's python3 (apt-get install python3)",
    );
  }
  const dest = path.join(work, 'small-tree');
  fs.rmSync(dest, { recursive: true, force: true });
  execFileSync('cp', ['-a', source, dest]);
  return dest;
}
