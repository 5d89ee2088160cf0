import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { createFileAtomic } from './atomic-file.ts';

it('creates a file once, refuses an existing name, and leaves no temporary file behind', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atomic-'));
  try {
    const file = path.join(dir, 'record.json');
    assert.equal(createFileAtomic(file, 'first'), true);
    assert.equal(createFileAtomic(file, 'second'), false);
    assert.equal(fs.readFileSync(file, 'utf8'), 'first');
    assert.deepEqual(fs.readdirSync(dir), ['record.json']);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
