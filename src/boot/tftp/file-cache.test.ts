// The shared file cache: one copy per file while its identity holds, new bytes for a rewritten
// file, and the memory bound (entries in use are kept, unused ones make room).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { type CachedSource, FileCache } from './file-cache.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-tftp-cache-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Opens `name` as the server does and asks the cache for it. */
async function open(cache: FileCache, name: string): Promise<CachedSource | undefined> {
  const handle = await fsp.open(path.join(work, name), 'r');
  const source = cache.open(handle, await handle.stat());
  if (!source) await handle.close();
  return source;
}

/** Every byte, window by window as a transfer asks for them. */
async function readAll(source: CachedSource, step = 1468): Promise<Buffer> {
  const out = Buffer.alloc(source.size);
  for (let at = 0; at < source.size; at += step) {
    const to = Math.min(at + step, source.size);
    const wait = source.prepare(at, to);
    if (wait) await wait;
    source.copyTo(out, at, at, to);
  }
  return out;
}

describe('FileCache', () => {
  it('shares one copy of a file between transfers, read chunk by chunk', async () => {
    const data = randomBytes(1_000_000); // several 256 KiB chunks, the last one short
    fs.writeFileSync(path.join(work, 'a'), data);
    const cache = new FileCache(4_000_000);
    const one = await open(cache, 'a');
    const two = await open(cache, 'a');
    assert.ok(one && two);
    assert.equal(cache.bytes, data.length, 'one copy');
    const [x, y] = await Promise.all([readAll(one), readAll(two, 8192)]);
    assert.ok(x.equals(data) && y.equals(data));
    await Promise.all([one.close(), two.close()]);
  });

  it('serves a file rewritten in place, at the same size, from a new entry', async () => {
    const file = path.join(work, 'b');
    fs.writeFileSync(file, 'first version\n');
    const cache = new FileCache(1_000_000);
    const old = await open(cache, 'b');
    assert.ok(old);
    assert.equal((await readAll(old)).toString(), 'first version\n');
    await old.close();
    fs.writeFileSync(file, 'later version\n');
    const now = await open(cache, 'b');
    assert.ok(now);
    assert.equal((await readAll(now)).toString(), 'later version\n');
    await now.close();
  });

  it('stays within its bound: entries in use are kept, unused ones make room', async () => {
    for (const n of ['c1', 'c2', 'c3']) fs.writeFileSync(path.join(work, n), randomBytes(400_000));
    const cache = new FileCache(1_000_000);
    const c1 = await open(cache, 'c1');
    const c2 = await open(cache, 'c2');
    assert.ok(c1 && c2);
    assert.equal(await open(cache, 'c3'), undefined, 'no room beside two files in use');
    await c1.close();
    const c3 = await open(cache, 'c3');
    assert.ok(c3, 'the unused entry made room');
    assert.equal(cache.bytes, 800_000);
    assert.ok((await readAll(c3)).equals(fs.readFileSync(path.join(work, 'c3'))));
    fs.writeFileSync(path.join(work, 'huge'), Buffer.alloc(1_000_001));
    assert.equal(await open(cache, 'huge'), undefined, 'larger than the whole cache');
    await Promise.all([c2.close(), c3.close()]);
  });

  it('reports a file that shrank under it to the transfer reading it', async () => {
    const file = path.join(work, 'd');
    fs.writeFileSync(file, randomBytes(600_000));
    const cache = new FileCache(1_000_000);
    const source = await open(cache, 'd');
    assert.ok(source);
    fs.truncateSync(file, 100);
    await assert.rejects(readAll(source), /file shrank/);
    await source.close();
  });
});
