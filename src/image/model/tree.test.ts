import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeArchivePath, TreeBuilder, type Inode } from './tree.ts';

const meta = { mode: 0o644, uid: 0, gid: 0, mtime: '0.000000000' };
const file = (size = 0): Inode => ({ type: 'file', meta, size });

describe('TreeBuilder', () => {
  it('emits parents before children, names in byte order, implied parents as 0755 root dirs', () => {
    const t = new TreeBuilder();
    t.set('z/b', file());
    t.set('a', file());
    t.set('z/a', file());
    const m = t.toManifest();
    assert.deepEqual(
      m.entries.map((e) => e.path),
      ['.', 'a', 'z', 'z/a', 'z/b'],
    );
    assert.deepEqual(m.entries[2], { path: 'z', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0.000000000' });
  });

  it('writes one full entry per inode and hard links for its other paths', () => {
    const t = new TreeBuilder();
    const shared = file();
    t.set('b/second', shared);
    t.set('a/first', shared);
    const m = t.toManifest();
    assert.deepEqual(
      m.entries.filter((e) => e.type === 'hardlink'),
      [{ path: 'b/second', type: 'hardlink', target: 'a/first' }],
    );
  });

  it('applies layers: remove, opaque directories, a directory over a directory keeps its contents', () => {
    const t = new TreeBuilder();
    t.set('etc/keep', file());
    t.set('etc/gone', file());
    t.set('var/cache/x', file());
    t.remove('etc/gone');
    t.clearDir('var/cache');
    t.set('etc', { type: 'dir', meta: { ...meta, mode: 0o700 } });
    const m = t.toManifest();
    assert.deepEqual(
      m.entries.map((e) => e.path),
      ['.', 'etc', 'etc/keep', 'var', 'var/cache'],
    );
    assert.equal((m.entries[1] as { mode: number }).mode, 0o700);
  });

  it('refuses a path under a symlink, naming both', () => {
    const t = new TreeBuilder();
    t.set('lib', { type: 'symlink', meta, target: 'usr/lib' });
    assert.throws(() => t.set('lib/x', file()), /'lib\/x' lies under 'lib', which is a symlink to 'usr\/lib'/);
  });

  it('replaces a file in the way of a directory, as layer application does', () => {
    const t = new TreeBuilder();
    t.set('x', file());
    t.set('x/y', file());
    assert.deepEqual(
      t.toManifest().entries.map((e) => `${e.path}:${e.type}`),
      ['.:dir', 'x:dir', 'x/y:file'],
    );
  });
});

describe('normalizeArchivePath', () => {
  it('normalises ./ prefixes, leading and doubled slashes', () => {
    assert.equal(normalizeArchivePath('./usr//bin/'), 'usr/bin');
    assert.equal(normalizeArchivePath('/etc/passwd'), 'etc/passwd');
    assert.equal(normalizeArchivePath('./'), '.');
  });
  it('refuses .. components', () => {
    assert.throws(() => normalizeArchivePath('usr/../../etc'), /'\.\.' component/);
  });
});
