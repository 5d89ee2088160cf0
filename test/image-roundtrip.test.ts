// Round trips: a tree goes into the store, through the image server, and is unpacked by
// `load-image`; the result must equal the original in every piece of metadata an OS depends on.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addImage } from '../src/image/pack/add.ts';
import { ImageServerClient } from '../src/image/transfer/client.ts';
import { ImageStore } from '../src/image/store/store.ts';
import { loadImage } from '../src/installer/load-image-command.ts';
import { Executor } from '../src/system/executor.ts';
import { bindMounts, unbindMounts } from '../src/system/mounts.ts';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import {
  describeTree,
  diffTrees,
  isRoot,
  makeFeatureTree,
  removeWorkDir,
  sh,
  startImageServer,
  tmpDir,
} from './helpers.ts';

const quiet = { warn: () => {} };

describe('image round trip through store, image server and load-image', {
  skip: !isRoot() && 'needs root (owners, devices, capabilities)',
}, () => {
  let work: string;
  let store: ImageStore;
  let server: Awaited<ReturnType<typeof startImageServer>>;
  let client: ImageServerClient;

  before(async () => {
    work = tmpDir();
    store = new ImageStore(path.join(work, 'store')).init();
    server = await startImageServer(store);
    client = new ImageServerClient(server.url);
  });
  after(async () => {
    client.close();
    await server.close();
    removeWorkDir(work);
  });

  it('restores every inode type and all metadata of a feature tree exactly', async () => {
    const src = path.join(work, 'features');
    fs.mkdirSync(src);
    makeFeatureTree(src);
    await addImage(store, 'features/1', src, quiet);
    const dst = path.join(work, 'features-out');
    const result = await loadImage(client, 'features/1', dst, { mounts: false });
    assert.deepEqual(diffTrees(describeTree(src), describeTree(dst)), []);
    // Spot checks of what the diff covers, so a silently weakened diff would show here.
    assert.equal(fs.statSync(path.join(dst, 'usr/bin/su')).mode & 0o7777, 0o4755);
    assert.match(sh('getcap', [path.join(dst, 'usr/bin/ping')]), /cap_net_raw[=+]ep/);
    assert.match(sh('getfacl', ['-n', path.join(dst, 'etc/acl-file')]), /user:1234:rw-/);
    assert.equal(fs.statSync(path.join(dst, 'usr/bin/perl')).ino, fs.statSync(path.join(dst, 'etc/perl-too')).ino);
    assert.ok(fs.statSync(path.join(dst, 'etc/sparse')).blocks * 512 < 1024 * 1024, 'sparse file kept its holes');
    assert.equal(fs.lstatSync(path.join(dst, 'usr/bin/su'), { bigint: true }).mtimeNs, 1700000000123456789n);
    assert.equal(result.unpack.objectsFromCache, 0);
  });

  it('replaces whatever is in the way in an existing target, never writing through it', async () => {
    const dst = path.join(work, 'features-over-junk');
    fs.mkdirSync(path.join(dst, 'usr/bin'), { recursive: true });
    fs.mkdirSync(path.join(dst, 'etc'), { recursive: true });
    sh('mkfifo', [path.join(dst, 'usr/bin/su')]); // opening a FIFO for writing would hang
    sh('mknod', [path.join(dst, 'etc/user-xattr'), 'c', '1', '3']); // writing would go to /dev/null
    fs.writeFileSync(path.join(work, 'outside'), 'keep me');
    fs.linkSync(path.join(work, 'outside'), path.join(dst, 'etc/empty')); // a hard link to a file elsewhere
    fs.symlinkSync('/', path.join(dst, 'etc/deep')); // a directory in the image, a symlink here
    sh('setfacl', ['-d', '-m', 'u:999:rwx', path.join(dst, 'usr')]); // an old default ACL: new files would inherit it
    sh('setfacl', ['-d', '-m', 'u:998:rwx', dst]); // on the target itself too
    await loadImage(client, 'features/1', dst, { mounts: false });
    assert.deepEqual(diffTrees(describeTree(path.join(work, 'features')), describeTree(dst)), []);
    assert.equal(fs.readFileSync(path.join(work, 'outside'), 'utf8'), 'keep me');
  });

  it('restores a real Debian root file system (mmdebstrap) exactly', async () => {
    const src = debianRootfs();
    await addImage(store, 'debian/bookworm', src, quiet);
    const dst = path.join(work, 'debian-out');
    await loadImage(client, 'debian', dst, { mounts: false }); // the stream name: latest image
    const problems = diffTrees(describeTree(src), describeTree(dst));
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} differences`);
    assert.ok(fs.statSync(path.join(dst, 'usr/bin/su')).mode & 0o4000, 'su is still setuid');
    assert.match(sh('getcap', [path.join(dst, 'usr/bin/ping')]), /cap_net_raw[=+]ep/);
    assert.ok(fs.lstatSync(path.join(dst, 'dev/null')).isCharacterDevice());
  });

  it('restores the same Debian tree added from a tar.zst made by GNU tar (no root needed to read it)', async () => {
    const src = debianRootfs();
    const archive = path.join(work, 'rootfs.tar.zst');
    // GNU tar as the peer that makes the archive: pax format keeps xattrs (capabilities) and
    // nanosecond mtimes; numeric owners; the image must come out equal to the tree it came from.
    sh('tar', [
      '--create',
      '--zstd',
      '--format=posix',
      '--xattrs',
      '--xattrs-include=*',
      '--acls',
      '--numeric-owner',
      '--one-file-system',
      '-f',
      archive,
      '-C',
      src,
      '.',
    ]);
    await addImage(store, 'debian-tar/1', archive, quiet);
    const dst = path.join(work, 'debian-tar-out');
    await loadImage(client, 'debian-tar/1', dst, { mounts: false });
    // Only what a non-sparse tar cannot carry is excused: holes (the tree has binaries with holes,
    // which tar stores as zeros). Everything else, directory mtimes included, must be equal.
    const problems = diffTrees(describeTree(src), describeTree(dst)).filter((p) => !/ sparse file took /.test(p));
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} differences`);
  });

  it('reinstalling with --cache-from the previous tree fetches (almost) nothing', async () => {
    const first = path.join(work, 'debian-out');
    const again = path.join(work, 'debian-again');
    const fresh = new ImageServerClient(server.url);
    try {
      const r = await loadImage(fresh, 'debian/bookworm', again, { mounts: false, cacheFrom: [first] });
      const total = r.image.stats.bytes;
      assert.ok(r.unpack.bytesFetched <= total * 0.01, `fetched ${r.unpack.bytesFetched} of ${total} bytes`);
      assert.ok(r.unpack.objectsFromCache > 1000);
      assert.deepEqual(diffTrees(describeTree(first), describeTree(again)), []);
    } finally {
      fresh.close();
    }
  });

  it('reinstalling a changed image fetches only the changed files', async () => {
    const src = path.join(work, 'features-v2');
    sh('cp', ['-a', path.join(work, 'features'), src]);
    fs.writeFileSync(path.join(src, 'etc/new-file'), 'only this is new\n'.repeat(1000));
    await addImage(store, 'features/2', src, quiet);
    const fresh = new ImageServerClient(server.url);
    try {
      const r = await loadImage(fresh, 'features/2', path.join(work, 'features-v2-out'), {
        mounts: false,
        cacheFrom: [path.join(work, 'features-out')],
      });
      assert.equal(r.unpack.objectsFetched, 1);
      assert.equal(r.unpack.bytesFetched, 17000);
    } finally {
      fresh.close();
    }
  });

  it('bind-mounts /dev /proc /sys /tmp for chroot use, and unmounts them', async () => {
    const dst = path.join(work, 'features-out');
    const exec = new Executor({ dryRun: false, log: () => {} });
    await bindMounts(exec, dst);
    try {
      const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
      for (const name of ['dev', 'proc', 'sys', 'tmp'])
        assert.ok(mounts.includes(` ${path.join(dst, name)} `), `${name} is mounted`);
      assert.ok(fs.existsSync(path.join(dst, 'proc/self/status')), "the host's /proc is visible");
      await bindMounts(exec, dst); // a second call is harmless: mounted targets are skipped
      // Unpacking again over the live chroot would replace the host's /dev nodes: refused.
      await assert.rejects(
        loadImage(client, 'features/1', dst, { mounts: false }),
        /has file systems mounted under it .*: unmount them first/,
      );
    } finally {
      await unbindMounts(exec, dst);
    }
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
    assert.ok(!mounts.includes(dst), 'nothing left mounted');
  });
});
