import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import zlib from 'node:zlib';
import { digestOf } from '../model/digest.ts';
import type { FileTarget } from './file-ops.ts';
import { TreeWriterPool } from './tree-writer.ts';
import { newObjectDecompressor } from './zstd-decompressor.ts';

let dir: string;
let pool: TreeWriterPool;
const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;
const target = (name: string, size: number, mode = 0o644): FileTarget => ({
  path: path.join(dir, name),
  size,
  uid,
  gid,
  mode,
  mtime: '1700000000.123456789',
});

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tree-writer-'));
  pool = new TreeWriterPool({ threads: 2, origin: 'http://test' }).start();
});
after(async () => {
  await pool.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('the decompressor gives content of exactly the expected size, and nothing for anything else', () => {
  const d = newObjectDecompressor();
  const content = Buffer.from('abc'.repeat(1000));
  const frame = zlib.zstdCompressSync(content);
  assert.deepEqual(d.decompress(frame, content.length), content);
  assert.equal(d.decompress(frame, content.length - 1), undefined, 'longer than the manifest says');
  assert.equal(d.decompress(frame, content.length + 1), undefined, 'shorter than the manifest says');
  assert.equal(d.decompress(Buffer.from('not zstd'), 3), undefined);
});

it('writes stored objects on its threads after verifying them, each target with its metadata', async () => {
  const files = Array.from({ length: 200 }, (_, i) => Buffer.from(`file ${i} `.repeat(i + 1)));
  files.forEach((content, i) => {
    const targets = [target(`f${i}`, content.length, 0o640)];
    if (i === 7) targets.push(target('f7-copy', content.length));
    pool.addStored(digestOf(content), zlib.zstdCompressSync(content), content.length, targets);
  });
  await pool.drain();
  for (const [i, content] of files.entries()) assert.deepEqual(fs.readFileSync(path.join(dir, `f${i}`)), content);
  const st = fs.statSync(path.join(dir, 'f7'), { bigint: true });
  assert.equal(st.mode & 0o7777n, 0o640n);
  assert.equal(st.mtimeNs, 1700000000123456789n);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'f7-copy')), files[7]);
});

it('copies trusted files that are still what they should be, and reports those that are not', async () => {
  fs.writeFileSync(path.join(dir, 'src-good'), 'good content');
  fs.writeFileSync(path.join(dir, 'src-changed'), 'changed size!');
  const found: Record<string, boolean> = {};
  pool.addFile(path.join(dir, 'src-good'), 12, [target('copy-good', 12)], (f) => (found.good = f));
  pool.addFile(path.join(dir, 'src-changed'), 12, [target('copy-changed', 12)], (f) => (found.changed = f));
  await pool.drain();
  assert.deepEqual(found, { good: true, changed: false });
  assert.equal(fs.readFileSync(path.join(dir, 'copy-good'), 'utf8'), 'good content');
  assert.equal(fs.existsSync(path.join(dir, 'copy-changed')), false);
});

it('refuses a corrupt object, names it, and writes nothing from it', async () => {
  const content = Buffer.from('the real content');
  const other = Buffer.from('something else!!');
  const corrupt = new TreeWriterPool({ threads: 1, origin: 'http://test' }).start();
  try {
    corrupt.addStored(digestOf(content), zlib.zstdCompressSync(other), other.length, [target('victim', other.length)]);
    await assert.rejects(
      corrupt.drain(),
      (err: Error) =>
        err.name === 'CorruptObjectError' &&
        err.message.includes(`object ${digestOf(content)} from http://test is corrupt: its content hashes to`),
    );
    assert.equal(fs.existsSync(path.join(dir, 'victim')), false);
  } finally {
    await corrupt.close();
  }
});
