import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { type Digest, digestOf } from '../model/digest.ts';
import { LocalObjectCache } from './local-cache.ts';
import { PREVIOUS_INSTALL_RECORD, readPreviousInstallRecord } from './previous-install.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A root holding `files` (relative path -> content), with the previous install's record when given. */
function tree(files: Record<string, string>, record?: [string, Digest, number][]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-local-cache-'));
  dirs.push(root);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  }
  if (record) {
    fs.mkdirSync(path.dirname(path.join(root, PREVIOUS_INSTALL_RECORD)), { recursive: true });
    fs.writeFileSync(
      path.join(root, PREVIOUS_INSTALL_RECORD),
      JSON.stringify({ version: 1, image: 'x', files: record }),
    );
  }
  return root;
}

const want = (...entries: [string, string][]) =>
  new Map(entries.map(([p, content]) => [digestOf(Buffer.from(content)), { size: content.length, paths: [p] }]));

async function found(cache: LocalObjectCache, wanted: ReturnType<typeof want>): Promise<Map<Digest, string>> {
  const out = new Map<Digest, string>();
  await cache.find(wanted, (d, content) => {
    assert.equal(digestOf(content), d, 'every content handed on hashes to its digest');
    out.set(d, content.toString());
  });
  return out;
}

test('an object at its own path is used; a file of the same size but other bytes is not', async () => {
  const root = tree({ 'etc/a': 'alpha', 'etc/b': 'BRAVO' });
  const cache = new LocalObjectCache([root]);
  const got = await found(cache, want(['etc/a', 'alpha'], ['etc/b', 'bravo']));
  assert.deepEqual([...got.values()], ['alpha']);
  assert.equal(cache.stats.objectsFound, 1);
});

test('without a record, a moved object is found among files of its size', async () => {
  const root = tree({ 'old/place': 'moved content', 'other/file': 'same length!!' });
  const got = await found(new LocalObjectCache([root]), want(['new/place', 'moved content']));
  assert.deepEqual([...got.values()], ['moved content']);
});

test("the previous install's record names where an object lies, and is verified, not trusted", async () => {
  const moved = 'moved content';
  const lie = 'the record lies about this';
  const root = tree({ 'old/place': moved, 'old/lie': 'XXX record lies about this', 'stray/copy': lie }, [
    ['old/place', digestOf(Buffer.from(moved)), moved.length],
    ['old/lie', digestOf(Buffer.from(lie)), lie.length],
  ]);
  const cache = new LocalObjectCache([root]);
  const got = await found(cache, want(['new/place', moved], ['new/lie', lie]));
  assert.deepEqual([...got.values()], [moved], 'the lying entry is hashed and refused');
  assert.equal(cache.stats.objectsFromRecord, 1);
  // A root with a record is not walked: the stray copy of the same size is left to the network.
  assert.equal(cache.stats.filesIndexed, 0);
});

test('a record that is not one is ignored, and the root walked as without it', async () => {
  const root = tree({ 'a/b': 'content', [PREVIOUS_INSTALL_RECORD]: '{"version": 7}' });
  assert.equal(readPreviousInstallRecord(root), undefined);
  const got = await found(new LocalObjectCache([root]), want(['c/d', 'content']));
  assert.deepEqual([...got.values()], ['content']);
});

test('a record cannot point outside its root', () => {
  const root = tree({}, [
    ['../../etc/passwd', digestOf(Buffer.from('x')), 1],
    ['/etc/passwd', digestOf(Buffer.from('y')), 1],
  ]);
  assert.deepEqual([...(readPreviousInstallRecord(root)?.values() ?? [])].flat(), []);
});

test('many objects verified at once are handed on one at a time', async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 200; i++) files[`f/${i}`] = `content ${i} `.repeat(1 + (i % 50));
  const root = tree(files);
  const cache = new LocalObjectCache([root], { concurrency: 8 });
  let active = 0;
  let seen = 0;
  await cache.find(want(...Object.entries(files)), async () => {
    assert.equal(++active, 1, 'onObject is never entered twice at once');
    await new Promise((r) => setImmediate(r));
    active--;
    seen++;
  });
  assert.equal(seen, 200);
});

test('large files (read and hashed on the thread pool) are verified the same way', async () => {
  const big = 'b'.repeat(1024 * 1024);
  const other = `${'b'.repeat(1024 * 1024 - 1)}c`;
  const root = tree({ 'lib/big': big, 'lib/other': other });
  const cache = new LocalObjectCache([root]);
  const got = await found(cache, want(['lib/big', big], ['lib/other', big.replace(/b$/, 'd')]));
  assert.deepEqual([...got.values()], [big]);
  assert.equal(cache.stats.bytesHashed, 2 * 1024 * 1024, 'the other file was hashed once (by inode), then refused');
});
