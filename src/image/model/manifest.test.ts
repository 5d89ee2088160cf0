import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestOf } from './digest.ts';
import { encodeManifest, MANIFEST_FORMAT, parseManifest, type Entry } from './manifest.ts';
import { TreeBuilder } from './tree.ts';

const meta = { mode: 0o755, uid: 0, gid: 0, mtime: '1700000000.000000000' };
const root: Entry = { path: '.', type: 'dir', ...meta };
const digest = `sha256:${'ab'.repeat(32)}`;

function parse(entries: unknown[]) {
  return parseManifest(Buffer.from(JSON.stringify({ format: MANIFEST_FORMAT, entries })), 'test manifest');
}

describe('manifest validation refuses unsafe trees before anything is written', () => {
  const cases: [string, unknown[], RegExp][] = [
    [
      'a .. component',
      [root, { path: '../etc/passwd', type: 'file', ...meta, size: 0 }],
      /unsafe path: it has a '\.\.' component/,
    ],
    [
      'a .. in the middle',
      [root, { path: 'usr', type: 'dir', ...meta }, { path: 'usr/../../x', type: 'file', ...meta, size: 0 }],
      /'\.\.' component/,
    ],
    ['an absolute path', [root, { path: '/etc/shadow', type: 'file', ...meta, size: 0 }], /it is absolute/],
    ['an empty component', [root, { path: 'a//b', type: 'file', ...meta, size: 0 }], /empty component/],
    [
      'a child of a symlink (escape through a link)',
      [
        root,
        { path: 'lib', type: 'symlink', ...meta, target: '/' },
        { path: 'lib/evil', type: 'file', ...meta, size: 0 },
      ],
      /parent 'lib' that is a symlink/,
    ],
    [
      'a child before its parent',
      [root, { path: 'a/b', type: 'file', ...meta, size: 0 }, { path: 'a', type: 'dir', ...meta }],
      /comes before its parent 'a'/,
    ],
    [
      'a duplicate path',
      [root, { path: 'a', type: 'file', ...meta, size: 0 }, { path: 'a', type: 'file', ...meta, size: 0 }],
      /appears twice/,
    ],
    [
      'a hard link to a directory',
      [root, { path: 'd', type: 'dir', ...meta }, { path: 'l', type: 'hardlink', target: 'd' }],
      /not an earlier regular file/,
    ],
    [
      'a hard link to a later file',
      [root, { path: 'l', type: 'hardlink', target: 'f' }, { path: 'f', type: 'file', ...meta, size: 0 }],
      /not an earlier regular file/,
    ],
    ['a root that is not first', [{ path: 'a', type: 'dir', ...meta }], /must be the root directory/],
    ['bytes without a digest', [root, { path: 'f', type: 'file', ...meta, size: 3 }], /has bytes but no digest/],
    [
      'a malformed digest',
      [root, { path: 'f', type: 'file', ...meta, size: 3, digest: 'md5:abc' }],
      /entries\.1\.digest/,
    ],
    [
      'a mode with type bits',
      [root, { path: 'f', type: 'file', ...meta, mode: 0o100644, size: 0 }],
      /entries\.1\.mode/,
    ],
    ['a float mtime', [root, { path: 'f', type: 'file', ...meta, mtime: '1.5', size: 0 }], /S\.NNNNNNNNN/],
    ['an unknown field', [root, { path: 'f', type: 'file', ...meta, size: 0, owner: 'root' }], /entries\.1/],
    ['an unknown type', [root, { path: 's', type: 'socket', ...meta }], /entries\.1\.type/],
  ];
  for (const [what, entries, message] of cases) {
    it(`refuses ${what}`, () => assert.rejects(parse(entries), message));
  }

  it('refuses bytes that are not JSON, naming the source', async () => {
    await assert.rejects(
      parseManifest(Buffer.from('{nope'), 'manifest sha256:x'),
      /manifest sha256:x is not valid JSON/,
    );
  });

  it('accepts a tree using every entry type', async () => {
    const m = await parse([
      root,
      { path: 'bin', type: 'dir', ...meta },
      {
        path: 'bin/su',
        type: 'file',
        ...meta,
        mode: 0o4755,
        size: 3,
        digest,
        xattrs: { 'security.capability': 'AQAAAg==' },
      },
      { path: 'bin/su2', type: 'hardlink', target: 'bin/su' },
      { path: 'bin/sh', type: 'symlink', ...meta, target: '/usr/bin/dash' },
      { path: 'null', type: 'char', ...meta, rdev: { major: 1, minor: 3 } },
      { path: 'sda', type: 'block', ...meta, rdev: { major: 8, minor: 0 } },
      { path: 'fifo', type: 'fifo', ...meta },
      { path: 'sparse', type: 'file', ...meta, size: 3, digest, sparse: true },
    ]);
    assert.equal(m.entries.length, 9);
  });
});

describe('manifest encoding', () => {
  it('is deterministic: the same tree built in any order has the same digest', () => {
    const build = (order: string[]) => {
      const t = new TreeBuilder();
      for (const p of order) t.set(p, { type: 'file', meta, size: 0 });
      return digestOf(encodeManifest(t.toManifest()));
    };
    assert.equal(build(['b/x', 'a', 'b/a', 'c']), build(['c', 'b/a', 'a', 'b/x']));
  });

  it('round-trips through parse', async () => {
    const t = new TreeBuilder();
    t.set('etc', { type: 'dir', meta });
    t.set('etc/hosts', { type: 'file', meta, size: 3, digest: digest as `sha256:${string}` });
    const m = t.toManifest();
    assert.deepEqual(await parseManifest(encodeManifest(m)), m);
  });
});

describe('mtime text', () => {
  it('floors negative times like timespec: the nanoseconds stay positive', async () => {
    const { formatMtimeNs, parseMtime } = await import('./manifest.ts');
    assert.equal(formatMtimeNs(1700000000123456789n), '1700000000.123456789');
    assert.equal(formatMtimeNs(-1_500_000_000n), '-2.500000000');
    assert.deepEqual(parseMtime('-2.500000000'), { sec: -2n, nsec: 500000000 });
  });
});
