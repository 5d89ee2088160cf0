// Dominator's own cases for lib/verstr (less_test.go), and a listing in the order list-images prints.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareVersions, sortVersions } from './verstr.ts';

const less = (a: string, b: string) => compareVersions(a, b) < 0;

test("version-aware order: Dominator's verstr cases", () => {
  for (const [left, right, want] of [
    ['', '', false],
    ['', 'empty', true],
    ['empty', '', false],
    ['file.0.ext', 'file.1.ext', true],
    ['file.1.ext', 'file.0.ext', false],
    ['file.1.ext', 'file.10.ext', true],
    ['file.10.ext', 'file.1.ext', false],
    ['file.9.ext', 'file.10.ext', true],
    ['file.10.ext', 'file.9.ext', false],
    ['name.1.rc1', 'name.1.rc10', true],
    ['name.1.rc10', 'name.1.rc1', false],
    ['name.1.rc9', 'name.1.rc10', true],
    ['name.1.rc10', 'name.1.rc9', false],
    ['os-v0', 'os-v1', true],
    ['os-v1', 'os-v0', false],
    ['os-v1', 'os-v10', true],
    ['os-v10', 'os-v1', false],
    ['os-v9', 'os-v10', true],
    ['os-v10', 'os-v9', false],
    ['sparse', 'sparse.0', true],
    ['sparse.0', 'sparse', false],
    ['token_01', 'token_2', true],
    ['token_2', 'token_10', true],
  ] as const) {
    assert.equal(less(left, right), want, `less(${JSON.stringify(left)}, ${JSON.stringify(right)})`);
  }
});

test('image names sort by their numbers, streams together', () => {
  const names = ['img.10', 'debian/2024-01-18:22:57:43', 'img.2', 'debian/2024-01-09:01:00:00', 'img.1', 'base'];
  assert.deepEqual(
    sortVersions(names, (n) => n),
    ['base', 'debian/2024-01-09:01:00:00', 'debian/2024-01-18:22:57:43', 'img.1', 'img.2', 'img.10'],
  );
  assert.equal(compareVersions('v01', 'v1') !== 0, true, 'a total order: only equal names compare equal');
});
