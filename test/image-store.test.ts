// The image store through the real `cradle` CLI: add/list/show/rm/gc/verify, stream resolution,
// immutability, concurrent adds sharing objects, and `kill -9` at any point of an add.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../src/image/store/store.ts';
import { cradleBin, tmpDir } from './helpers.ts';

function cradle(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cradleBin, args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function makeTree(root: string, files: number, tag: string, size = 2000): void {
  fs.mkdirSync(path.join(root, 'shared'), { recursive: true });
  fs.mkdirSync(path.join(root, 'own'), { recursive: true });
  for (let i = 0; i < files; i++) {
    // Half of the files are the same in every tree made by this function: shared objects.
    fs.writeFileSync(path.join(root, 'shared', `f${i}`), `shared ${i} `.repeat(size / 10));
    fs.writeFileSync(path.join(root, 'own', `f${i}`), `${tag} ${i} `.repeat(size / 10));
  }
}

describe('image store via the cradle CLI', () => {
  let work: string;
  let storeDir: string;

  before(() => {
    work = tmpDir();
    storeDir = path.join(work, 'store');
    makeTree(path.join(work, 'a'), 50, 'a');
    makeTree(path.join(work, 'b'), 50, 'b');
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('adds, lists, shows and resolves a stream to its newest image', () => {
    const a = cradle('image', 'add', '--store', storeDir, 'os/2026-01', path.join(work, 'a'));
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /added os\/2026-01 from directory/);
    assert.match(a.stdout, /103 entries, 100 files/);
    // Named so that it sorts *before* the first: "latest" must go by creation time, not by name.
    const b = cradle('image', 'add', '--store', storeDir, 'os/0-newer', path.join(work, 'b'));
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stdout, /50 new objects .* 50 already in the store, 0 duplicate contents/);
    const list = cradle('image', 'list', '--store', storeDir);
    assert.match(list.stdout, /os\/0-newer .*\n.*os\/2026-01/);
    const show = cradle('image', 'show', '--store', storeDir, 'os');
    assert.match(show.stdout, /name: +os\/0-newer/);
    assert.match(show.stdout, /source: +directory:/);
    assert.match(show.stdout, /size: .* in 100 files/);
  });

  it('refuses to overwrite an image, and names the streams for an unknown one', () => {
    const again = cradle('image', 'add', '--store', storeDir, 'os/2026-01', path.join(work, 'a'));
    assert.equal(again.status, 1);
    assert.match(again.stderr, /image 'os\/2026-01' already exists: images are immutable/);
    const unknown = cradle('image', 'show', '--store', storeDir, 'nope');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no image or stream named 'nope'\. Streams in this store: os/);
    const badName = cradle('image', 'add', '--store', storeDir, 'no-stream', path.join(work, 'a'));
    assert.match(badName.stderr, /has no stream: name images 'stream\/leaf'/);
    const badSource = cradle('image', 'add', '--store', storeDir, 'os/x', path.join(work, 'missing'));
    assert.match(badSource.stderr, /image source '.*missing' does not exist/);
  });

  it('refuses a tree with a name that is not UTF-8, naming it', () => {
    const src = path.join(work, 'latin1');
    fs.mkdirSync(src);
    fs.writeFileSync(Buffer.concat([Buffer.from(`${src}/caf`), Buffer.from([0xe9])]), 'x');
    const r = cradle('image', 'add', '--store', storeDir, 'bad/latin1', src);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /a name in '\.' is not valid UTF-8 \("caf.*"\): rename it/);
    assert.equal(ImageStore.open(storeDir).getRecord('bad/latin1'), undefined);
  });

  it('rm keeps shared objects; gc removes only what no image needs', async () => {
    const store = ImageStore.open(storeDir);
    const before = [...store.allObjects()].length;
    assert.equal(cradle('image', 'rm', '--store', storeDir, 'os/0-newer').status, 0);
    const gc = cradle('image', 'gc', '--store', storeDir, '--grace', '0');
    assert.equal(gc.status, 0, gc.stderr);
    assert.match(gc.stdout, /removed 51 objects/); // b's own 50 files and its manifest
    assert.equal([...store.allObjects()].length, before - 51);
    assert.match(cradle('image', 'verify', '--store', storeDir).stdout, /store is consistent/);
  });

  it('gc spares young unreferenced objects (an add may still be running)', () => {
    const store = ImageStore.open(storeDir);
    fs.mkdirSync(path.join(work, 'c', 'x'), { recursive: true });
    fs.writeFileSync(path.join(work, 'c', 'x', 'new'), 'young object');
    const tmpObject = spawnSync(cradleBin, ['image', 'add', '--store', storeDir, 'tmp/c', path.join(work, 'c')]);
    assert.equal(tmpObject.status, 0);
    cradle('image', 'rm', '--store', storeDir, 'tmp/c');
    assert.match(cradle('image', 'gc', '--store', storeDir).stdout, /removed 0 objects/);
    assert.ok([...store.allObjects()].length > 0);
  });

  it('refuses to record an image whose objects vanished meanwhile (a gc racing the add)', async () => {
    const store = ImageStore.open(storeDir);
    const { digest } = await store.putObject(Buffer.from('short-lived'));
    fs.rmSync(store.objectPath(digest));
    const record = {
      name: 'race/1',
      manifest: digest,
      created: new Date().toISOString(),
      source: 'test',
      stats: { entries: 0, files: 0, dirs: 0, symlinks: 0, bytes: 0, objects: 0, objectBytes: 0 },
    };
    assert.throws(
      () => store.commitImage(record, [digest]),
      /object sha256:[0-9a-f]{64} of image 'race\/1' vanished before the image was recorded/,
    );
    assert.equal(store.getRecord('race/1'), undefined);
  });

  it('names a damaged image record; gc sweeps a commit left half done by a kill', () => {
    const dir = path.join(storeDir, 'images', 'os');
    const stale = path.join(dir, '.leaf.json.123.abc.0');
    fs.writeFileSync(stale, '{"name": "os/le'); // what a kill -9 inside the commit leaves
    fs.utimesSync(stale, new Date(0), new Date(0));
    fs.writeFileSync(path.join(dir, 'broken.json'), '{"name": "os/broken"}');
    try {
      const r = cradle('image', 'list', '--store', storeDir);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /image record '.*broken\.json': field 'manifest' is invalid: .*; repair it or remove it/);
    } finally {
      fs.rmSync(path.join(dir, 'broken.json'));
    }
    assert.equal(cradle('image', 'gc', '--store', storeDir).status, 0);
    assert.equal(fs.existsSync(stale), false);
  });

  it('verify reports a damaged object', () => {
    const store = ImageStore.open(storeDir);
    // An object an image needs (its manifest): verify checks what images use, and the store also
    // holds unreferenced objects spared by gc's grace period, so any object would be a coin toss.
    const victim = store.listRecords()[0].manifest;
    const file = store.objectPath(victim);
    const saved = fs.readFileSync(file);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, Buffer.from('not zstd at all'));
    try {
      const r = cradle('image', 'verify', '--store', storeDir);
      assert.equal(r.status, 1);
      assert.match(r.stdout + r.stderr, /problems found/);
    } finally {
      fs.writeFileSync(file, saved);
    }
  });

  it('concurrent adds of images sharing objects both succeed and leave a sound store', async () => {
    const dir = path.join(work, 'concurrent');
    const run = (name: string, src: string) =>
      new Promise<number | null>((resolve) =>
        spawn(cradleBin, ['image', 'add', '--store', dir, name, src], { stdio: 'ignore' }).on('exit', resolve),
      );
    const codes = await Promise.all([
      run('c/a', path.join(work, 'a')),
      run('c/b', path.join(work, 'b')),
      run('c/a2', path.join(work, 'a')),
    ]);
    assert.deepEqual(codes, [0, 0, 0]);
    assert.deepEqual(await ImageStore.open(dir).verify(), []);
  });

  it('a store whose first add was killed while making its directories opens as an empty store', () => {
    const dir = path.join(work, 'half-made');
    fs.mkdirSync(path.join(dir, 'objects'), { recursive: true }); // images/ and tmp/ never made
    const r = cradle('image', 'list', '--store', dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      cradle('image', 'list', '--store', path.join(work, 'nothing-here')).stderr.includes('is not an image store'),
      true,
    );
  });

  it('kill -9 at any point of an add leaves a consistent store, and the add can be redone', async () => {
    const src = path.join(work, 'big');
    makeTree(src, 1500, 'big', 4000);
    const dir = path.join(work, 'killed');
    // Kill at spread-out moments: during start-up, while objects are written, near the commit.
    for (const delayMs of [150, 400, 700, 1000, 1400, 1900]) {
      const child = spawn(cradleBin, ['image', 'add', '--store', dir, `k/${delayMs}`, src], { stdio: 'ignore' });
      const exited = new Promise((r) => child.on('exit', r));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await exited;
      if (!fs.existsSync(path.join(dir, 'objects'))) continue; // killed before the store existed
      const store = ImageStore.open(dir);
      assert.deepEqual(await store.verify(), [], `after a kill at ${delayMs} ms`);
      for (const r of store.listRecords()) assert.equal(r.stats.files, 3000, 'a recorded image is a whole image');
    }
    const survivors = ImageStore.open(dir).listRecords().length;
    assert.ok(survivors < 6, `at least one add was killed before its commit (${survivors} of 6 committed)`);
    const redo = cradle('image', 'add', '--store', dir, 'k/redo', src);
    assert.equal(redo.status, 0, redo.stderr);
    const store = ImageStore.open(dir);
    assert.deepEqual(await store.verify(), []);
    assert.ok(store.getRecord('k/redo'));
  });
});
