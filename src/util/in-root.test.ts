import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { copyTreeInRoot, writeInRoot } from './in-root.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-in-root-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

describe('writing into a new root', () => {
  const root = path.join(work, 'root');
  const outside = path.join(work, 'outside');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'fstab'), 'host fstab\n');

  it('replaces a final symlink instead of writing through it', () => {
    fs.symlinkSync(path.join(outside, 'fstab'), path.join(root, 'etc/fstab'));
    writeInRoot(root, 'etc/fstab', 'new fstab\n');
    assert.equal(fs.readFileSync(path.join(outside, 'fstab'), 'utf8'), 'host fstab\n');
    assert.equal(fs.lstatSync(path.join(root, 'etc/fstab')).isFile(), true);
  });
  it('refuses a symlinked parent directory and .. components', () => {
    fs.symlinkSync(outside, path.join(root, 'var'));
    assert.throws(() => writeInRoot(root, 'var/lib/initial-image', 'x'), /is a symlink in the new root/);
    assert.throws(() => writeInRoot(root, 'etc/../../x', 'x'), /not a plain path/);
    assert.deepEqual(fs.readdirSync(outside), ['fstab']);
  });
  it('sets the mode exactly and copies trees of regular files', () => {
    writeInRoot(root, 'etc/crypt.key', Buffer.alloc(64), 0o400);
    assert.equal(fs.statSync(path.join(root, 'etc/crypt.key')).mode & 0o777, 0o400);
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'dhcp', '0'), { recursive: true });
    fs.writeFileSync(path.join(src, 'dhcp', '0', 'packet'), 'p');
    copyTreeInRoot(root, src, 'log/installer');
    assert.equal(fs.readFileSync(path.join(root, 'log/installer/dhcp/0/packet'), 'utf8'), 'p');
  });
});
