// OCI layouts and `docker save` archives. The OCI layout is built with umoci (Debian's `umoci`
// package, installed with apt-get): two layers added verbatim from archives made by GNU tar (the
// second holds whiteouts, an opaque marker and a hard link into the first layer) and a third that
// umoci itself generates from a deleted file. Index variations (platforms, nested indexes, zstd
// layers) and docker archives are made by hand around those real blobs, then tar'd with real tar.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ingest } from '../store/ingest.ts';
import { encodeManifest, validateTree, type Manifest } from '../model/manifest.ts';
import { isDockerArchive, isOciLayout, packDockerArchive, packOciLayout } from './oci.ts';
import { ImageStore } from '../store/store.ts';
import type { TreeBuilder } from '../model/tree.ts';

const sh = (cmd: string, cwd?: string) => execFileSync('/bin/sh', ['-ec', cmd], { cwd, encoding: 'utf8' });
const hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
let tmp: string;
let store: ImageStore;
let layerHexes: string[]; // the umoci layout's layer digests, in order

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pack-oci-test-'));
  store = new ImageStore(path.join(tmp, 'store')).init();
  sh(
    `
    umask 022
    mkdir -p l1/etc l1/opq/sub l1/bin
    printf a > l1/etc/a && printf b > l1/etc/b && printf old > l1/opq/old && printf deep > l1/opq/sub/deep
    printf su > l1/bin/su && chmod 04755 l1/bin/su
    tar -C l1 -cf l1.tar .
    mkdir -p l2/etc l2/opq
    printf b > l2/etc/b && ln l2/etc/b l2/etc/blink && printf c > l2/etc/c && printf new > l2/opq/new
    touch l2/etc/.wh.a l2/opq/.wh..wh..opq
    tar -C l2 -cf l2.tar . && tar --delete -f l2.tar ./etc/b   # etc/blink now links into layer 1
    umoci init --layout oci
    umoci new --image oci:img
    umoci raw add-layer --image oci:img l1.tar
    umoci raw add-layer --image oci:img l2.tar
    umoci unpack --image oci:img bundle
    rm bundle/rootfs/etc/c
    umoci repack --image oci:img bundle
  `,
    tmp,
  );
  layerHexes = imageManifest(path.join(tmp, 'oci')).json.layers.map((l: { digest: string }) => l.digest.slice(7));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function imageManifest(layout: string) {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const desc = index.manifests[0];
  return { desc, json: JSON.parse(fs.readFileSync(path.join(layout, 'blobs/sha256', desc.digest.slice(7)), 'utf8')) };
}

/** Writes a JSON blob into a layout and returns its descriptor. */
function putBlob(layout: string, value: unknown, mediaType: string) {
  const bytes = Buffer.from(JSON.stringify(value));
  fs.writeFileSync(path.join(layout, 'blobs/sha256', hex(bytes)), bytes);
  return { mediaType, digest: `sha256:${hex(bytes)}`, size: bytes.length };
}

function copyLayout(name: string): string {
  const dest = path.join(tmp, name);
  fs.cpSync(path.join(tmp, 'oci'), dest, { recursive: true });
  return dest;
}

async function packWith(
  fn: (src: string, ingest: Ingest, log: { warn(m: string): void }) => Promise<TreeBuilder>,
  src: string,
  warnings: string[] = [],
): Promise<Manifest> {
  const ingest = new Ingest(store);
  const tree = await fn(src, ingest, { warn: (m) => warnings.push(m) });
  await ingest.finish();
  const manifest = tree.toManifest();
  validateTree(manifest);
  return manifest;
}

const paths = (m: Manifest) => m.entries.map((e) => (e.type === 'hardlink' ? `${e.path} -> ${e.target}` : e.path));
const EXPECTED_PATHS = ['.', 'bin', 'bin/su', 'etc', 'etc/b', 'etc/blink -> etc/b', 'opq', 'opq/new'];

describe('OCI image layouts', () => {
  test('isOciLayout', () => {
    assert.equal(isOciLayout(path.join(tmp, 'oci')), true);
    assert.equal(isOciLayout(tmp), false);
  });

  test('layers apply in order: whiteouts, opaque directory, cross-layer hard link, metadata', async () => {
    assert.equal(layerHexes.length, 3);
    const manifest = await packWith(packOciLayout, path.join(tmp, 'oci'));
    assert.deepEqual(paths(manifest), EXPECTED_PATHS);
    const byPath = new Map(manifest.entries.map((e) => [e.path, e]));
    assert.deepEqual(byPath.get('bin/su'), {
      ...byPath.get('bin/su'),
      mode: 0o4755,
      uid: 0,
      gid: 0,
      size: 2,
      digest: `sha256:${hex('su')}`,
    });
    assert.deepEqual(byPath.get('opq/new'), { ...byPath.get('opq/new'), size: 3, digest: `sha256:${hex('new')}` });
    assert.deepEqual(await store.readObject(`sha256:${hex('b')}`), Buffer.from('b'));
  });

  test('a corrupted or missing layer blob is refused before use', async () => {
    const layout = copyLayout('corrupt');
    const blob = path.join(layout, 'blobs/sha256', layerHexes[1]);
    const bytes = fs.readFileSync(blob);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(blob, bytes);
    await assert.rejects(
      packWith(packOciLayout, layout),
      new RegExp(
        `layer 2 \\(sha256:${layerHexes[1]}\\): blob .* has digest sha256:${hex(bytes)}, not the one its descriptor names; the blob is corrupt`,
      ),
    );
    fs.rmSync(blob);
    await assert.rejects(packWith(packOciLayout, layout), /layer 2 .*is missing; the layout is incomplete/);
  });

  test('several images: linux/amd64 is picked; without platforms it is an error listing them', async () => {
    const layout = copyLayout('platforms');
    const { desc } = imageManifest(layout);
    const other = { ...desc, digest: `sha256:${'0'.repeat(64)}` }; // never read: not the chosen platform
    const write = (manifests: unknown[]) =>
      fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
    write([
      { ...other, platform: { os: 'linux', architecture: 'arm64' } },
      { ...desc, platform: { os: 'linux', architecture: 'amd64' } },
    ]);
    assert.deepEqual(paths(await packWith(packOciLayout, layout)), EXPECTED_PATHS);
    write([desc, other]);
    await assert.rejects(
      packWith(packOciLayout, layout),
      /lists 2 images without platforms: sha256:[0-9a-f]{64} ref 'img'; sha256:0{64} ref 'img'; copy the one you want/,
    );
    write([
      { ...other, platform: { os: 'linux', architecture: 'arm64' } },
      { ...other, platform: { os: 'windows', architecture: 'amd64' } },
    ]);
    await assert.rejects(
      packWith(packOciLayout, layout),
      /has no linux\/amd64 image, only: .*linux\/arm64.*windows\/amd64/,
    );
  });

  test('a nested image index is followed, and zstd layers are read', async () => {
    const layout = copyLayout('nested');
    const { desc, json } = imageManifest(layout);
    // An extra zstd layer, made from a real tar, that adds one file.
    sh(`mkdir -p l4/etc && printf z > l4/etc/z && tar -C l4 -cf - . | zstd -q > l4.tar.zst`, tmp);
    const zst = fs.readFileSync(path.join(tmp, 'l4.tar.zst'));
    fs.writeFileSync(path.join(layout, 'blobs/sha256', hex(zst)), zst);
    const layers = [
      ...json.layers,
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: `sha256:${hex(zst)}`, size: zst.length },
    ];
    const manifestDesc = putBlob(layout, { ...json, layers }, desc.mediaType);
    const innerIndex = putBlob(
      layout,
      { schemaVersion: 2, manifests: [{ ...manifestDesc, platform: { os: 'linux', architecture: 'amd64' } }] },
      'application/vnd.oci.image.index.v1+json',
    );
    fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [innerIndex] }));
    assert.deepEqual(paths(await packWith(packOciLayout, layout)), [
      ...EXPECTED_PATHS.slice(0, 6),
      'etc/z',
      ...EXPECTED_PATHS.slice(6),
    ]);
  });

  test('a layer that is not a tar (encrypted) is refused', async () => {
    const layout = copyLayout('encrypted');
    const { desc, json } = imageManifest(layout);
    json.layers[0].mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted';
    fs.writeFileSync(
      path.join(layout, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [putBlob(layout, json, desc.mediaType)] }),
    );
    await assert.rejects(
      packWith(packOciLayout, layout),
      /layer 1 .* has media type '.*\+encrypted', which is not a plain, gzip or zstd tar layer/,
    );
  });
});

describe('docker save archives', () => {
  /** A legacy `docker save` directory: <id>/layer.tar, manifest.json, repositories. */
  function legacyDir(name: string, manifest: unknown): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(path.join(dir, 'h1'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'h2'));
    fs.mkdirSync(path.join(dir, 'h3'));
    fs.copyFileSync(path.join(tmp, 'l1.tar'), path.join(dir, 'h1/layer.tar'));
    fs.copyFileSync(path.join(tmp, 'l2.tar'), path.join(dir, 'h2/layer.tar'));
    fs.symlinkSync('../h1/layer.tar', path.join(dir, 'h3/layer.tar')); // how docker shared equal layers
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    fs.writeFileSync(path.join(dir, 'cfg.json'), '{}');
    fs.writeFileSync(path.join(dir, 'repositories'), '{}');
    return dir;
  }

  test('a legacy archive with two images: the first is used, with a warning; symlinked layers are followed', async () => {
    const dir = legacyDir('legacy', [
      { Config: 'cfg.json', RepoTags: ['test:1'], Layers: ['h1/layer.tar', 'h2/layer.tar'] },
      { Config: 'cfg.json', RepoTags: ['other:2'], Layers: ['h3/layer.tar'] },
    ]);
    sh(`tar -C ${dir} -cf legacy.tar . && gzip -k legacy.tar`, tmp);
    assert.equal(await isDockerArchive(path.join(tmp, 'legacy.tar')), true);
    assert.equal(await isDockerArchive(path.join(tmp, 'legacy.tar.gz')), true);
    const warnings: string[] = [];
    const manifest = await packWith(packDockerArchive, path.join(tmp, 'legacy.tar'), warnings);
    assert.deepEqual(paths(manifest), [
      '.',
      'bin',
      'bin/su',
      'etc',
      'etc/b',
      'etc/blink -> etc/b',
      'etc/c',
      'opq',
      'opq/new',
    ]);
    assert.match(warnings.join('\n'), /holds 2 images \(test:1; other:2\); using the first, test:1/);

    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('cradle-docker-'));
    assert.deepEqual(
      encodeManifest(await packWith(packDockerArchive, path.join(tmp, 'legacy.tar.gz'))),
      encodeManifest(manifest),
    );
    assert.deepEqual(
      fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('cradle-docker-')),
      before,
      'the temp dir is removed',
    );

    const linked = legacyDir('linked', [{ RepoTags: ['x:1'], Layers: ['h3/layer.tar'] }]);
    sh(`tar -C ${linked} -cf linked.tar .`, tmp);
    assert.deepEqual(paths(await packWith(packDockerArchive, path.join(tmp, 'linked.tar'))), [
      '.',
      'bin',
      'bin/su',
      'etc',
      'etc/a',
      'etc/b',
      'opq',
      'opq/old',
      'opq/sub',
      'opq/sub/deep',
    ]);
  });

  test("a layer reference with '..' is refused", async () => {
    const dir = legacyDir('dotdot', [{ RepoTags: ['x:1'], Layers: ['h1/../../etc/layer.tar'] }]);
    sh(`tar -C ${dir} -cf dotdot.tar .`, tmp);
    await assert.rejects(
      packWith(packDockerArchive, path.join(tmp, 'dotdot.tar')),
      /manifest.json names layer 'h1\/..\/..\/etc\/layer.tar', which is not a plain relative path inside the archive: refusing it/,
    );
  });

  test('a docker 25 archive (OCI blobs inside) gives the same tree as the layout; a bad blob is refused', async () => {
    const dir = copyLayout('docker25');
    fs.writeFileSync(
      path.join(dir, 'manifest.json'),
      JSON.stringify([{ Config: 'x', RepoTags: ['img:1'], Layers: layerHexes.map((h) => `blobs/sha256/${h}`) }]),
    );
    sh(`tar -C ${dir} -cf docker25.tar .`, tmp);
    assert.equal(await isDockerArchive(path.join(tmp, 'docker25.tar')), true);
    const fromLayout = await packWith(packOciLayout, path.join(tmp, 'oci'));
    assert.deepEqual(
      encodeManifest(await packWith(packDockerArchive, path.join(tmp, 'docker25.tar'))),
      encodeManifest(fromLayout),
    );

    const blob = path.join(dir, 'blobs/sha256', layerHexes[0]);
    const bytes = fs.readFileSync(blob);
    bytes[bytes.length - 10] ^= 0xff;
    fs.writeFileSync(blob, bytes);
    sh(`tar -C ${dir} -cf docker25-bad.tar .`, tmp);
    await assert.rejects(
      packWith(packDockerArchive, path.join(tmp, 'docker25-bad.tar')),
      new RegExp(`layer 1 \\('blobs/sha256/${layerHexes[0]}'\\): blob .* has digest sha256:${hex(bytes)}, not the one`),
    );
  });

  test('isDockerArchive is false for a root file-system tar and for a non-tar', async () => {
    assert.equal(await isDockerArchive(path.join(tmp, 'l1.tar')), false);
    fs.writeFileSync(path.join(tmp, 'notes.txt'), 'not a tar\n');
    assert.equal(await isDockerArchive(path.join(tmp, 'notes.txt')), false);
  });
});
