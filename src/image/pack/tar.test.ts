// Packs archives made by GNU tar (plain, gzip, zstd; posix and gnu formats) into a real store and
// checks the manifest entry by entry: metadata, digests, xattr bytes, links, devices, whiteouts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ingest } from '../store/ingest.ts';
import { encodeManifest, validateTree, type Entry } from '../model/manifest.ts';
import { applyTarLayer, packTarFile } from './tar.ts';
import { ImageStore } from '../store/store.ts';
import { TreeBuilder } from '../model/tree.ts';
import type { Digest } from '../model/digest.ts';

const sh = (cmd: string, cwd?: string) => execFileSync('/bin/sh', ['-ec', cmd], { cwd, encoding: 'utf8' });
const sha = (data: Buffer | string): Digest => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const LONG_DIR = 'd'.repeat(60);
const LONG = `${LONG_DIR}/${'n'.repeat(120)}`;
const T = '1600000000.000000000';
let tmp: string;
let store: ImageStore;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pack-tar-test-'));
  store = new ImageStore(path.join(tmp, 'store')).init();
  sh(
    `
    umask 022
    mkdir -p root/dir/sub root/${LONG_DIR}
    printf 'hello' > root/dir/sub/file
    printf 'su' > root/setuid && chmod 04755 root/setuid
    printf 'cap' > root/cap && setcap cap_net_raw+ep root/cap && setfattr -n user.note -v 0x00ff0a41 root/cap
    ln -s dir/sub/file root/link
    ln root/dir/sub/file root/hard
    mkfifo root/fifo
    mknod root/null c 1 3
    printf 'long' > root/${LONG}
    printf 'own' > root/owned && chown 1234:5678 root/owned
    head -c 40000000 /dev/urandom > root/big
    find root -exec touch -h -d @1600000000 {} +
    touch -d '@1700000000.123456789' root/owned
    tar -C root --format=posix --xattrs --xattrs-include='*' -cf posix.tar .
    gzip -k posix.tar && zstd -q -k posix.tar
    tar -C root --format=gnu -cf gnu.tar .
  `,
    tmp,
  );
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function pack(file: string, warnings: string[] = []) {
  const ingest = new Ingest(store);
  const tree = await packTarFile(path.join(tmp, file), ingest, { warn: (m) => warnings.push(m) });
  await ingest.finish();
  const manifest = tree.toManifest();
  validateTree(manifest);
  return manifest;
}

const getfattrHex = (file: string, name: string) =>
  /=0x([0-9a-f]+)/.exec(sh(`getfattr --absolute-names -n ${name} -e hex ${file}`))![1];
const dir = (p: string, mtime = T): Entry => ({ path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime });
const file = (p: string, content: Buffer | string, extra: Partial<Entry> = {}): Entry =>
  ({
    path: p,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: T,
    size: Buffer.byteLength(content),
    digest: sha(content),
    ...extra,
  }) as Entry;

describe('packTarFile', () => {
  test('a posix tar with xattrs gives exactly the expected entries', async () => {
    const manifest = await pack('posix.tar');
    const big = fs.readFileSync(path.join(tmp, 'root/big'));
    const capHex = getfattrHex(path.join(tmp, 'root/cap'), 'security.capability');
    const expected: Entry[] = [
      dir('.'),
      file('big', big),
      file('cap', 'cap', {
        xattrs: {
          'security.capability': Buffer.from(capHex, 'hex').toString('base64'),
          'user.note': Buffer.from([0, 0xff, 0x0a, 0x41]).toString('base64'),
        },
      } as Partial<Entry>),
      dir(LONG_DIR),
      file(LONG, 'long'),
      dir('dir'),
      dir('dir/sub'),
      file('dir/sub/file', 'hello'),
      { path: 'fifo', type: 'fifo', mode: 0o644, uid: 0, gid: 0, mtime: T },
      { path: 'hard', type: 'hardlink', target: 'dir/sub/file' },
      { path: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: T, target: 'dir/sub/file' },
      { path: 'null', type: 'char', mode: 0o644, uid: 0, gid: 0, mtime: T, rdev: { major: 1, minor: 3 } },
      file('owned', 'own', { uid: 1234, gid: 5678, mtime: '1700000000.123456789' }),
      file('setuid', 'su', { mode: 0o4755 }),
    ];
    assert.deepEqual(manifest.entries, expected);
    // The capability bytes survive byte for byte, and the big file went through the streaming path.
    const cap = manifest.entries.find((e) => e.path === 'cap') as { xattrs: Record<string, string> };
    assert.equal(Buffer.from(cap.xattrs['security.capability'], 'base64').toString('hex'), capHex);
    assert.deepEqual(await store.readObject(sha(big)), big);
    assert.deepEqual(await store.readObject(sha('hello')), Buffer.from('hello'));
  });

  test('gzip and zstd archives give the same manifest as the plain one', async () => {
    const plain = encodeManifest(await pack('posix.tar'));
    assert.deepEqual(encodeManifest(await pack('posix.tar.gz')), plain);
    assert.deepEqual(encodeManifest(await pack('posix.tar.zst')), plain);
  });

  test('a gnu-format tar (long name records, no xattrs, whole-second times)', async () => {
    const entries = new Map((await pack('gnu.tar')).entries.map((e) => [e.path, e]));
    assert.deepEqual(entries.get(LONG), file(LONG, 'long'));
    assert.deepEqual(
      entries.get('owned'),
      file('owned', 'own', { uid: 1234, gid: 5678, mtime: '1700000000.000000000' }),
    );
    assert.deepEqual(entries.get('hard'), { path: 'hard', type: 'hardlink', target: 'dir/sub/file' });
    assert.equal((entries.get('cap') as { xattrs?: unknown }).xattrs, undefined);
  });

  test("a member with a '..' component is refused", async () => {
    sh('mkdir -p evil/inner && printf bad > evil/evil && cd evil/inner && tar -P -cf ../../evil.tar ../evil', tmp);
    assert.match(sh('tar -P -tf evil.tar', tmp), /^\.\.\/evil$/m);
    await assert.rejects(pack('evil.tar'), /tar archive '.*evil\.tar': archive member '..\/evil' has a '..' component/);
  });

  test('a hard link whose target is not in the archive is refused', async () => {
    sh('cp posix.tar nolink.tar && tar --delete -f nolink.tar ./dir/sub/file', tmp);
    await assert.rejects(
      pack('nolink.tar'),
      /is a hard link to '.\/dir\/sub\/file', which is not earlier in the archive/,
    );
  });

  test('corrupt and truncated archives fail naming the archive', async () => {
    const bytes = fs.readFileSync(path.join(tmp, 'posix.tar'));
    bytes[3] ^= 1;
    fs.writeFileSync(path.join(tmp, 'corrupt.tar'), bytes);
    await assert.rejects(pack('corrupt.tar'), /tar archive '.*corrupt\.tar': bad tar header checksum at byte 0/);
    sh('head -c 30000000 posix.tar.zst > cut.tar.zst', tmp);
    await assert.rejects(pack('cut.tar.zst'), /tar archive '.*cut\.tar\.zst': could not read the archive at byte \d+/);
    fs.writeFileSync(path.join(tmp, 'text.tar'), 'this is not an archive\n'.repeat(40));
    await assert.rejects(pack('text.tar'), /bad tar header checksum at byte 0 .*not a tar archive/);
  });

  test('a sparse archive is refused with the clear message', async () => {
    sh(
      'mkdir -p sp && truncate -s 4M sp/holes && echo x >> sp/holes && tar -C sp --sparse -czf sparse.tar.gz holes',
      tmp,
    );
    await assert.rejects(
      pack('sparse.tar.gz'),
      /tar member 'holes' is a GNU sparse file, which is not supported yet: re-create the archive without --sparse/,
    );
  });

  test('members an image cannot hold (a volume label) are skipped with a warning', async () => {
    sh('mkdir -p vol && printf v > vol/f && tar -C vol -V MYLABEL -cf vol.tar f', tmp);
    const warnings: string[] = [];
    const manifest = await pack('vol.tar', warnings);
    assert.deepEqual(
      manifest.entries.map((e) => e.path),
      ['.', 'f'],
    );
    assert.deepEqual(warnings, [
      "skipping tar member 'MYLABEL' of type 'V': it is not a file, directory, link, device or FIFO",
    ]);
  });
});

describe('applyTarLayer with whiteouts', () => {
  test('removes lower paths, empties opaque directories, keeps what the same layer adds', async () => {
    sh(
      `
      mkdir -p lower/a/keep lower/opq lower/gone && printf 1 > lower/a/x && printf 2 > lower/opq/old && printf 3 > lower/gone/f
      tar -C lower -cf lower.tar .
      mkdir -p upper/a upper/opq && printf new > upper/opq/new && printf y > upper/a/y
      touch upper/a/.wh.x upper/.wh.gone upper/opq/.wh..wh..opq upper/a/.wh.y upper/a/.wh..wh.plnk
      # Own entries before the markers: whiteouts apply to lower layers only.
      tar -C upper --no-recursion -cf upper.tar . a a/y a/.wh.y a/.wh.x opq opq/new opq/.wh..wh..opq .wh.gone a/.wh..wh.plnk
    `,
      tmp,
    );
    const tree = new TreeBuilder();
    const ingest = new Ingest(store);
    const log = { warn: (m: string) => assert.fail(m) };
    await applyTarLayer(fs.createReadStream(path.join(tmp, 'lower.tar')), tree, ingest, log, { whiteouts: true });
    await applyTarLayer(fs.createReadStream(path.join(tmp, 'upper.tar')), tree, ingest, log, { whiteouts: true });
    await ingest.finish();
    assert.deepEqual(
      tree.toManifest().entries.map((e) => e.path),
      ['.', 'a', 'a/keep', 'a/y', 'opq', 'opq/new'],
    );
  });

  test('without whiteouts, marker names are ordinary files', async () => {
    const tree = new TreeBuilder();
    const ingest = new Ingest(store);
    await applyTarLayer(
      fs.createReadStream(path.join(tmp, 'upper.tar')),
      tree,
      ingest,
      { warn: assert.fail },
      { whiteouts: false },
    );
    await ingest.finish();
    assert.ok(tree.get('opq/.wh..wh..opq'));
    assert.ok(tree.get('.wh.gone'));
  });
});
