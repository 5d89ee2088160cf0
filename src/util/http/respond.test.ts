import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonDepth } from './respond.ts';

test('jsonDepth counts objects and arrays, not brackets in strings', () => {
  const depth = (s: string) => jsonDepth(Buffer.from(s));
  assert.equal(depth('1'), 0);
  assert.equal(depth('{}'), 1);
  assert.equal(depth('{"a":[1,{"b":[]}]}'), 4);
  assert.equal(depth('["[[[[", "\\"[[[", {"x": "}}}"}]'), 2);
  assert.equal(depth('['.repeat(100_000) + ']'.repeat(100_000)), 100_000);
});
