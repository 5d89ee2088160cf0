import assert from 'node:assert/strict';
import { it } from 'node:test';
import { StoredObjectCache } from './memory-cache.ts';

const d = (n: number) => `sha256:${String(n).padStart(64, '0')}` as const;

it('keeps at most its byte limit, evicting the oldest object not read since it was stored (second chance)', () => {
  const cache = new StoredObjectCache(800);
  cache.set(d(1), Buffer.alloc(100));
  cache.set(d(2), Buffer.alloc(100));
  cache.get(d(1)); // 1 is now more recent than 2
  for (let i = 3; i <= 9; i++) cache.set(d(i), Buffer.alloc(100));
  assert.equal(cache.size, 800);
  assert.equal(cache.get(d(2)), undefined, 'the oldest unread object went first');
  assert.ok(cache.get(d(1)), 'a recently read object stayed');
});

it('does not let one huge object flush everything', () => {
  const cache = new StoredObjectCache(800);
  cache.set(d(1), Buffer.alloc(100));
  cache.set(d(2), Buffer.alloc(700));
  assert.ok(cache.get(d(1)));
  assert.equal(cache.get(d(2)), undefined);
  assert.equal(cache.hits, 1);
  assert.equal(cache.misses, 1);
});
