// Bad input and faults on the image path: each ends in a clear error, and nothing untrusted is
// written. Real parts throughout: a real image server on loopback, a real TCP proxy that cuts
// connections, a real tmpfs that fills up.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { addImage } from '../src/image/pack/add.ts';
import { ImageServerClient } from '../src/image/transfer/client.ts';
import { digestOf, type Digest } from '../src/image/model/digest.ts';
import { encodeManifest, MANIFEST_FORMAT, type Entry } from '../src/image/model/manifest.ts';
import { ImageStore, newRecord } from '../src/image/store/store.ts';
import { loadImage } from '../src/installer/load-image-command.ts';
import { cradleBin, describeTree, diffTrees, isRoot, removeWorkDir, sh, startImageServer, tmpDir } from './helpers.ts';

const quiet = { warn: () => {} };

/** A small tree of incompressible files, so a batch response spans many network reads. */
function makeTree(root: string, files = 300): void {
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(root, 'etc', `file-${i}`), randomBytes(1000 + 10 * i));
}

/** Stores a hand-made manifest as an image, bypassing the packers, as a hostile store could. */
async function addRawImage(store: ImageStore, name: string, entries: Entry[]): Promise<void> {
  const manifest = { format: MANIFEST_FORMAT, entries } as const;
  const bytes = encodeManifest(manifest as never);
  const digest = digestOf(bytes);
  await store.putObject(bytes, digest);
  store.commitImage(newRecord(name, digest, { format: MANIFEST_FORMAT, entries }, 'test'), [digest]);
}

describe('image faults', () => {
  let work: string;
  let store: ImageStore;
  let server: Awaited<ReturnType<typeof startImageServer>>;

  before(async () => {
    work = tmpDir();
    store = new ImageStore(path.join(work, 'store')).init();
    fs.mkdirSync(path.join(work, 'src'));
    makeTree(path.join(work, 'src'));
    await addImage(store, 'good/1', path.join(work, 'src'), quiet);
    server = await startImageServer(store);
  });
  after(async () => {
    await server.close();
    removeWorkDir(work);
  });

  it('detects a corrupt object on the server, names it, and writes nothing from it', async () => {
    const src = path.join(work, 'src-corrupt');
    fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(src, 'etc', 'victim'), 'the real content\n');
    await addImage(store, 'corrupt/1', src, quiet);
    const digest = digestOf(Buffer.from('the real content\n'));
    const file = store.objectPath(digest);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, zlib.zstdCompressSync(Buffer.from('evil content!!!!\n'))); // same length, valid zstd
    const client = new ImageServerClient(server.url);
    const dst = path.join(work, 'corrupt-out');
    try {
      await assert.rejects(
        loadImage(client, 'corrupt/1', dst, { mounts: false }),
        new RegExp(`object ${digest} .* is corrupt: its content hashes to sha256:`),
      );
      assert.equal(fs.existsSync(path.join(dst, 'etc', 'victim')), false, 'the corrupt content was not written');
      assert.equal(client.stats.retries, 0, 'a corrupt object is not retried');
    } finally {
      client.close();
    }
  });

  const escapes: [string, Entry[]][] = [
    [
      'a .. path',
      [
        { path: '.', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0.000000000' },
        { path: '../outside', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0.000000000', size: 0 },
      ],
    ],
    [
      'an absolute path',
      [
        { path: '.', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0.000000000' },
        { path: '/tmp/outside', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0.000000000', size: 0 },
      ],
    ],
    [
      'a symlink that a later entry would write through',
      [
        { path: '.', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0.000000000' },
        { path: 'etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0.000000000' },
        { path: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: '0.000000000', target: '/tmp' },
        { path: 'link/outside', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0.000000000', size: 0 },
      ],
    ],
  ];
  for (const [what, entries] of escapes) {
    it(`refuses a manifest with ${what} before writing anything`, async () => {
      const name = `evil/${what.replace(/[^a-z]+/g, '-')}`;
      await addRawImage(store, name, entries);
      const client = new ImageServerClient(server.url);
      const dst = path.join(work, 'evil-out');
      try {
        await assert.rejects(
          loadImage(client, name, dst, { mounts: false }),
          /unsafe path|parent 'link' that is a symlink/,
        );
        assert.equal(fs.existsSync(dst), false, 'the target was not even created');
        assert.equal(fs.existsSync('/tmp/outside'), false);
      } finally {
        client.close();
      }
    });
  }

  it('resumes a download cut short, fetching only what is missing', async () => {
    // A proxy that lets the first batch response through for 400 KB, then cuts the connection.
    const upstream = new URL(server.url);
    let cut = false;
    const proxy = net.createServer((down) => {
      const up = net.connect(Number(upstream.port), upstream.hostname);
      let passed = 0;
      let isBatch = false;
      down.on('data', (d: Buffer) => {
        if (d.toString('latin1').startsWith('POST /v1/objects/batch')) isBatch = true;
        up.write(d);
      });
      up.on('data', (d: Buffer) => {
        if (isBatch && !cut && passed + d.length > 400_000) {
          cut = true;
          down.write(d.subarray(0, 400_000 - passed));
          down.destroy();
          up.destroy();
          return;
        }
        passed += d.length;
        down.write(d);
      });
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
      up.on('close', () => down.end());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    const client = new ImageServerClient(`http://127.0.0.1:${port}`, { backoffMs: 10 });
    const dst = path.join(work, 'resumed-out');
    try {
      const r = await loadImage(client, 'good/1', dst, { mounts: false });
      assert.ok(cut, 'the proxy did cut a download');
      assert.equal(r.retries, 1);
      assert.equal(r.unpack.objectsFetched, 300);
      // Everything received whole before the cut is kept: had the 400 KB before the cut been asked
      // for again, the wire would carry objects + 400 KB. Allowed on top of the objects: the
      // manifest, frame headers and the one object cut in half.
      assert.ok(
        r.wireBytes < r.image.stats.objectBytes + 100_000,
        `${r.wireBytes} bytes on the wire for ${r.image.stats.objectBytes} bytes of objects`,
      );
      assert.deepEqual(diffTrees(describeTree(path.join(work, 'src')), describeTree(dst)), []);
    } finally {
      client.close();
      proxy.close();
    }
  });

  it('gives up with a clear error when the server stays unreachable', async () => {
    const client = new ImageServerClient('127.0.0.1:1', { retries: 1, backoffMs: 1 });
    try {
      await assert.rejects(client.listImages(), /image server http:\/\/127\.0\.0\.1:1 unreachable: .*ECONNREFUSED/);
    } finally {
      client.close();
    }
  });

  it('fails a request to a server that accepts but never answers, instead of hanging', async () => {
    const silent = net.createServer(() => {}); // accepts connections, says nothing
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const client = new ImageServerClient(`127.0.0.1:${(silent.address() as net.AddressInfo).port}`, { timeoutMs: 300 });
    try {
      await assert.rejects(client.listImages(), /unreachable: no data for 0\.3 s/);
    } finally {
      client.close();
      silent.close();
    }
  });

  it('load-image says it needs root, instead of failing on the first chown', {
    skip: !isRoot() && 'needs root to drop to another user',
  }, () => {
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        cradleBin,
        'installer',
        'load-image',
        '--imageserver',
        server.url,
        'good/1',
        path.join(work, 'as-nobody'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /load-image restores owners, setuid bits, capabilities and device nodes, which needs root/);
  });

  it('names the streams that exist when an image is unknown', async () => {
    const client = new ImageServerClient(server.url);
    try {
      await assert.rejects(
        client.getImage('nosuch/image'),
        /no image or stream named 'nosuch\/image'\. Streams in this store: corrupt, evil, good/,
      );
      await assert.rejects(
        client.getImage('good/2'),
        /no image or stream named 'good\/2'/,
        'a missing leaf is not replaced by the latest of its stream',
      );
    } finally {
      client.close();
    }
  });

  describe('disk full', { skip: !isRoot() && 'needs root to mount a small tmpfs' }, () => {
    let small: string;
    before(() => {
      small = path.join(work, 'small');
      fs.mkdirSync(small);
    });
    after(() => {
      sh('umount', [small]);
    });

    it('refuses up front when the image cannot fit', async () => {
      sh('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]);
      const client = new ImageServerClient(server.url);
      try {
        await assert.rejects(
          loadImage(client, 'good/1', path.join(small, 'root'), { mounts: false }),
          /not enough space on '.*': the image needs \d+ bytes of file data but only \d+ are free/,
        );
        assert.equal(client.stats.objects, 0, 'nothing was downloaded');
      } finally {
        client.close();
      }
    });

    it('reports a disk that fills up during the install clearly', async () => {
      sh('umount', [small]);
      // Room for the bytes but not for the inodes: the space check passes, creation then fails.
      sh('mount', ['-t', 'tmpfs', '-o', 'size=16m,nr_inodes=100', 'tmpfs', small]);
      const client = new ImageServerClient(server.url);
      try {
        await assert.rejects(
          loadImage(client, 'good/1', path.join(small, 'root'), { mounts: false }),
          /disk full: ran out of space on '.*' while writing '.*etc\/file-\d+'/,
        );
      } finally {
        client.close();
      }
    });
  });

  it('refuses a batch naming an unknown object with a 404 that names it, before streaming', async () => {
    const unknown = `sha256:${'0'.repeat(64)}` as Digest;
    const client = new ImageServerClient(server.url);
    try {
      await assert.rejects(
        client.fetchObjects([{ digest: unknown, size: 1 }], () => {}),
        /answered 404: 1 of 1 objects are not in this store, the first being sha256:0{64}/,
      );
    } finally {
      client.close();
    }
  });
});
