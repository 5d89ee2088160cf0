// Golden cases of a node group's image: an OS image with component layers on top.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MANIFEST_FORMAT, type Entry, type Manifest } from '../image/model/manifest.ts';
import { overlay } from './compose.ts';

const d = (n: string): `sha256:${string}` => `sha256:${n.repeat(64)}`;
const meta = (mode: number, mtime: string) => ({ mode, uid: 0, gid: 0, mtime });
const m = (entries: Entry[]): Manifest => ({ format: MANIFEST_FORMAT, entries });
const os = m([
  { type: 'dir', path: '.', ...meta(0o755, '1.000000000') },
  { type: 'dir', path: 'etc', ...meta(0o755, '2.000000000') },
  { type: 'file', path: 'etc/os-release', ...meta(0o644, '3.000000000'), size: 10, digest: d('a') },
  { type: 'dir', path: 'opt', ...meta(0o755, '4.000000000') },
  { type: 'file', path: 'opt/old', ...meta(0o644, '5.000000000'), size: 5, digest: d('b') },
  { type: 'dir', path: 'usr', ...meta(0o755, '6.000000000') },
  { type: 'file', path: 'usr/tool', ...meta(0o755, '7.000000000'), size: 20, digest: d('c') },
  { type: 'hardlink', path: 'usr/tool2', target: 'usr/tool' },
]);
const head = m([
  { type: 'dir', path: '.', ...meta(0o700, '9.000000000') },
  { type: 'dir', path: 'etc', ...meta(0o700, '9.000000000') },
  { type: 'dir', path: 'etc/cradle', ...meta(0o755, '9.000000000') },
  { type: 'file', path: 'etc/cradle/head-node', ...meta(0o644, '9.000000000'), size: 4, digest: d('d') },
  { type: 'symlink', path: 'opt', ...meta(0o777, '9.000000000'), target: '/srv/opt' },
  { type: 'dir', path: 'usr', ...meta(0o700, '9.000000000') },
  { type: 'file', path: 'usr/tool', ...meta(0o755, '9.000000000'), size: 30, digest: d('e') },
]);

test('layers on an OS image: new files added, files replaced, directories keep their metadata, a link replaces a subtree', () => {
  const out = overlay(os, [head]);
  const byPath = new Map(out.entries.map((e) => [e.path, e]));
  assert.deepEqual(
    [...byPath.keys()],
    ['.', 'etc', 'etc/cradle', 'etc/cradle/head-node', 'etc/os-release', 'opt', 'usr', 'usr/tool', 'usr/tool2'],
  );
  assert.equal((byPath.get('.') as { mode: number }).mode, 0o755, "the OS's root keeps its mode");
  assert.equal((byPath.get('etc') as { mtime: string }).mtime, '2.000000000', "the OS's /etc keeps its metadata");
  assert.equal((byPath.get('usr/tool') as { digest: string }).digest, d('e'), 'the layer wins at the same path');
  // The old hard link keeps the inode it linked (the OS's tool), now a file of its own.
  assert.equal((byPath.get('usr/tool2') as { digest: string }).digest, d('c'));
  assert.deepEqual(byPath.get('opt'), {
    type: 'symlink',
    path: 'opt',
    ...meta(0o777, '9.000000000'),
    target: '/srv/opt',
  });
  assert.equal(byPath.has('opt/old'), false, 'the directory the link replaced is gone with its contents');
});

test('with no layer, the OS image comes back as it was', () => {
  assert.deepEqual(overlay(os, []), os);
});
