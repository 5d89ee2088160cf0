// The target image in memory as the install's object source: when it is the tools root too, what
// lies under the host's directories bound into it (/dev, /proc, /sys, /tmp) is not taken from it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Digest } from '../image/model/digest.ts';
import type { UnpackStats } from '../image/unpack/unpack.ts';
import { stagedTargetFinder } from './configure-storage.ts';

describe('the staged target as an object source', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-staged-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'tmp'));
  fs.mkdirSync(path.join(dir, 'usr'));
  fs.writeFileSync(path.join(dir, 'tmp/x'), 'host');
  fs.writeFileSync(path.join(dir, 'usr/y'), 'mine');
  const wanted = new Map([
    ['sha256:x' as Digest, { size: 4, paths: ['tmp/x'] }],
    ['sha256:y' as Digest, { size: 4, paths: ['usr/y'] }],
    ['sha256:z' as Digest, { size: 4, paths: ['tmp/x', 'usr/y'] }],
  ]);
  const found = async (tools: string) => {
    const got: string[] = [];
    const stats = {} as UnpackStats;
    await stagedTargetFinder({ target: dir, tools, stats }).find(wanted, (d, c) => {
      got.push(`${d}=${c}`);
    });
    return got.sort();
  };
  it('skips the bound directories when the target is the tools root', async () => {
    assert.deepEqual(await found(dir), ['sha256:y=mine', 'sha256:z=mine']);
  });
  it('reads everything when the tools root is another tree', async () => {
    assert.deepEqual(await found(`${dir}.tools`), ['sha256:x=host', 'sha256:y=mine', 'sha256:z=host']);
  });
});
