import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ImageStore } from '../store/store.ts';
import { StoredObjectCache } from './memory-cache.ts';
import { wholeAnswer } from './single-object.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-single-object-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('wholeAnswer: from memory, or once read; a HEAD of content not in memory is left to sendObject', async () => {
  const store = new ImageStore(path.join(work, 'store')).init();
  const content = Buffer.from('an object of the store '.repeat(200));
  const { digest } = await store.putObject(content);
  const caches = { stored: new StoredObjectCache(1 << 20), content: new StoredObjectCache(1 << 20) };
  const stored = fs.readFileSync(store.objectPath(digest));

  // HEAD, plain, nothing in memory: not worth decompressing and hashing the object for.
  assert.equal(await wholeAnswer(store, caches, digest, undefined, true, false), undefined);
  assert.equal(caches.content.size, 0);
  // HEAD with zstd: the stored frame, read into memory; its length is what is stated.
  const zHead = await wholeAnswer(store, caches, digest, 'zstd', true, false);
  assert.ok(zHead?.body.equals(stored));
  assert.equal(zHead?.headers['content-encoding'], 'zstd');
  assert.equal(zHead?.storedBytes, 0);
  // GET, plain: decompressed and checked once, then kept; a HEAD now finds it in memory.
  const get = await wholeAnswer(store, caches, digest, 'gzip', false, false);
  assert.ok(get?.body.equals(content));
  assert.equal(get?.headers['content-encoding'], undefined);
  assert.equal(get?.storedBytes, stored.length);
  assert.equal(caches.content.size, content.length);
  const head = wholeAnswer(store, caches, digest, undefined, true, false);
  assert.ok(!(head instanceof Promise), 'answered at once from memory');
  assert.ok(head?.body.equals(content));
  // Not in the store: sendObject answers it (404).
  const missing = `sha256:${'0'.repeat(64)}` as typeof digest;
  assert.equal(await wholeAnswer(store, caches, missing, 'zstd', false, false), undefined);
});
