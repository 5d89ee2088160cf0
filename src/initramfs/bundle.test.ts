import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { builtinsByRequire, bundleModule, bundleThreads, CRADLE_THREADS, INSTALLER_THREADS } from './bundle.ts';

test("the installer's bundle takes Node's built-ins with require(), so Node builds no ES facade of them", async () => {
  const source =
    "import http from 'node:http';\nimport { join } from 'path';\nconsole.log(typeof http.createServer, join('a', 'b'));\n";
  const js = new TextDecoder().decode(
    await bundleModule({ contents: source, loader: 'ts', resolveDir: import.meta.dirname }, [builtinsByRequire]),
  );
  assert.match(js, /require\("node:http"\)/);
  assert.match(js, /require\("node:path"\)/);
  assert.doesNotMatch(js, /from\s*"node:http"/);
  // Without the plugin the import stays an import.
  const plain = new TextDecoder().decode(
    await bundleModule({ contents: source, loader: 'ts', resolveDir: import.meta.dirname }),
  );
  assert.match(plain, /from\s*"node:http"/);
});

test('every thread a module starts has its own bundle in the Cradle kit, the unpacker’s in the installer image too', () => {
  const src = path.resolve(import.meta.dirname, '..');
  const started = new Set<string>();
  for (const rel of fs.readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!rel.endsWith('.ts') || rel.endsWith('.test.ts')) continue;
    const text = fs.readFileSync(path.join(src, rel), 'utf8');
    for (const m of text.matchAll(/startThread\(\s*new URL\('(\.\/[^']+\.ts)', import\.meta\.url\)/g))
      started.add(path.posix.join('src', path.posix.dirname(rel), m[1]));
  }
  assert.ok(started.size >= 5, `found only ${[...started].join(', ')}`);
  for (const module of started) assert.ok(CRADLE_THREADS.includes(module), `${module} is missing from CRADLE_THREADS`);
  for (const module of INSTALLER_THREADS) assert.ok(started.has(module), `${module} is started nowhere`);
});

test("from a bundle, a thread runs its own bundle beside the command's, NAME.mjs", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-bundle-'));
  try {
    // As tree-writer.ts starts its threads, from the command's bundle.
    const entry = `import { startThread, threadModule } from '../../util/threads.ts';
console.log(threadModule(new URL('./tree-writer-thread.ts', import.meta.url)).href);
const w = startThread(new URL('./tree-writer-thread.ts', import.meta.url), { kind: 'tree-writer' });
w.once('message', (answer) => { console.log(JSON.stringify(answer)); void w.terminate(); });
w.postMessage({ jobs: [] });`;
    const resolveDir = path.resolve(import.meta.dirname, '../image/unpack');
    fs.writeFileSync(path.join(dir, 'cradle.mjs'), await bundleModule({ contents: entry, loader: 'ts', resolveDir }));
    for (const t of await bundleThreads(INSTALLER_THREADS)) fs.writeFileSync(path.join(dir, t.name), t.data);
    const [module, answer] = execFileSync(process.execPath, [path.join(dir, 'cradle.mjs')], { encoding: 'utf8' })
      .trim()
      .split('\n');
    assert.equal(module, pathToFileURL(path.join(dir, 'tree-writer-thread.mjs')).href);
    assert.deepEqual(JSON.parse(answer), { bytes: 0, missing: [] });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
