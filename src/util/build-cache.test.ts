// Cache entries built by two processes at once: both succeed, the first rename wins, the other
// takes its entry and leaves nothing behind; a build that is not complete is never taken.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { placeBuilt } from './build-cache.ts';

test('two builds of one cache entry: the first wins, the second takes it', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-cache-test-'));
  try {
    const dir = path.join(root, 'entry');
    for (const who of ['a', 'b']) {
      fs.mkdirSync(path.join(root, `tmp-${who}`));
      fs.writeFileSync(path.join(root, `tmp-${who}`, 'done'), who);
    }
    assert.equal(placeBuilt(path.join(root, 'tmp-a'), dir, 'done'), dir);
    assert.equal(placeBuilt(path.join(root, 'tmp-b'), dir, 'done'), dir);
    assert.equal(fs.readFileSync(path.join(dir, 'done'), 'utf8'), 'a', "the winner's entry");
    assert.deepEqual(fs.readdirSync(root), ['entry'], "the loser's build is removed");
    // An entry there without its marker is not a finished build: that is an error, not a result.
    fs.rmSync(path.join(dir, 'done'));
    fs.writeFileSync(path.join(dir, 'partial'), '');
    fs.mkdirSync(path.join(root, 'tmp-c'));
    fs.writeFileSync(path.join(root, 'tmp-c', 'done'), 'c');
    assert.throws(() => placeBuilt(path.join(root, 'tmp-c'), dir, 'done'), /ENOTEMPTY|EEXIST/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
