// Node groups through `cradle` as an operator runs them: an OS kit and an add-on kit (a file and a
// systemd unit enabled by its symlink) added to a depot, a group made of both and built into the
// store (only its manifest is new), a machine put in the group, and the refusals: two OS kits,
// none, an add-on for another OS, removing a kit a group uses. A `kill -9` during a build leaves
// the store consistent and the retry succeeds.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { zstdCompressSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import type { Digest } from '../src/image/model/digest.ts';
import { ImageStore } from '../src/image/store/store.ts';
import { Depot } from '../src/kit/depot.ts';
import { servedInstaller } from '../src/kit/served.ts';
import { cradleBin, cradleFails, tmpDir } from './helpers.ts';

const run = promisify(execFile);

/** Every object file in a depot's store. */
const objectsIn = (depot: string) => {
  const dir = path.join(depot, 'images', 'objects', 'sha256');
  return fs.existsSync(dir) ? fs.readdirSync(dir).flatMap((p) => fs.readdirSync(path.join(dir, p))) : [];
};

function tree(root: string, files: Record<string, string | Buffer>, links: Record<string, string> = {}): string {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  }
  for (const [rel, target] of Object.entries(links)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.symlinkSync(target, path.join(root, rel));
  }
  return root;
}

describe('node groups', () => {
  let work: string;
  let depot: string;
  let db: string;
  // The depot and the database as an operator's environment names them (CRADLE_DEPOT, CRADLE_DB).
  const env = () => ({ ...process.env, CRADLE_DEPOT: depot, CRADLE_DB: db });
  const cradle = async (...args: string[]) => (await run(cradleBin, args, { encoding: 'utf8', env: env() })).stdout;
  const fails = (args: string[], why: RegExp) => cradleFails(args, why, env());
  const build = (...args: string[]) => run(cradleBin, ['kit', 'build', ...args], { encoding: 'utf8' });

  before(async () => {
    work = tmpDir('cradle-nodegroup-');
    depot = path.join(work, 'depot');
    db = `sqlite:${path.join(work, 'inventory.db')}`;
    const os = tree(path.join(work, 'os'), {
      'etc/os-release': 'ID=demo\nVERSION_ID=1\n',
      'usr/bin/tool': crypto.randomBytes(300_000),
      'etc/motd': 'the OS motd\n',
    });
    const hello = tree(
      path.join(work, 'hello'),
      {
        'etc/systemd/system/hello.service':
          '[Service]\nExecStart=/usr/bin/hello\n[Install]\nWantedBy=multi-user.target\n',
        'usr/bin/hello': '#!/bin/sh\necho hello\n',
        'etc/motd': 'the hello kit was here\n',
      },
      { 'etc/systemd/system/multi-user.target.wants/hello.service': '../hello.service' },
    );
    const kits = path.join(work, 'kits');
    fs.mkdirSync(kits);
    const os1 = ['--kind', 'os', '--os', 'demo-1', '--image', os];
    await build('--out', `${kits}/demo.kit`, '--name', 'demo', '--version', '1.0', ...os1);
    await build(
      '--out',
      `${kits}/other.kit`,
      '--name',
      'other',
      '--version',
      '2.0',
      '--kind',
      'os',
      '--os',
      'other-2',
      '--image',
      os,
    );
    await build(
      '--out',
      `${kits}/hello.kit`,
      '--name',
      'hello',
      '--version',
      '1.0',
      '--kind',
      'addon',
      '--component',
      `hello:compute:${hello}:demo-1`,
    );
    await build(
      '--out',
      `${kits}/foreign.kit`,
      '--name',
      'foreign',
      '--version',
      '1.0',
      '--kind',
      'addon',
      '--component',
      `tool:compute:${hello}:other-2`,
    );
    for (const k of ['demo', 'other', 'hello', 'foreign'])
      await run(cradleBin, ['kit', 'add', `${kits}/${k}.kit`, '--depot', depot], { encoding: 'utf8' });
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  test('refused with the reason: no OS kit, two, an add-on for another OS, a group that does not exist', async () => {
    await fails(['nodegroup', 'add', 'compute', '--kit', 'hello'], /node group 'compute' has no OS kit/);
    await fails(
      ['nodegroup', 'add', 'compute', '--kit', 'demo', '--kit', 'other', '--kit', 'hello'],
      /names two OS kits \(demo\/1\.0, other\/2\.0\)/,
    );
    await fails(
      ['nodegroup', 'add', 'compute', '--kit', 'demo', '--kit', 'foreign'],
      /component foreign\/1\.0:tool supports other-2, not demo-1/,
    );
    await fails(['nodegroup', 'add', 'compute', '--kit', 'nosuch'], /no kit 'nosuch'/);
    await fails(['nodegroup', 'build', 'compute'], /no node group 'compute'/);
    await fails(
      ['machine', 'add', 'n1', '--mac', '02:00:00:00:00:01', '--node-group', 'compute'],
      /no node group 'compute'/,
    );
    assert.match(await cradle('nodegroup', 'list'), /^NAME/);
    assert.doesNotMatch(await cradle('nodegroup', 'list'), /compute/, 'nothing was added');
  });

  test("built from its kits: the OS with the component's file and enabled unit on top, only the manifest new", async () => {
    assert.match(
      await cradle(
        'nodegroup',
        'add',
        'compute',
        '--kit',
        'demo/1.0',
        '--kit',
        'hello',
        '--installer-flag',
        'failure-wait=30',
      ),
      /added node group compute: OS kit demo\/1\.0, components hello\/1\.0:hello/,
    );
    const before = objectsIn(depot).length;
    const out = await cradle('nodegroup', 'build', 'compute');
    assert.match(out, /built nodegroup\/compute\/\S+: \d+ files, .*; \d+ objects, 1 new/);
    assert.equal(objectsIn(depot).length, before + 1, 'a build writes its manifest, nothing else');
    const store = ImageStore.open(path.join(depot, 'images'));
    const image = store.resolve('nodegroup/compute');
    const manifest = await store.readManifest(image.manifest as Digest);
    const entry = (p: string) => manifest.entries.find((e) => e.path === p);
    assert.ok(entry('etc/os-release') ?? entry('/etc/os-release'), 'the OS is there');
    const find = (suffix: string) => manifest.entries.find((e) => e.path.replace(/^\//, '') === suffix);
    assert.equal(find('usr/bin/hello')?.type, 'file', "the component's file is there");
    const link = find('etc/systemd/system/multi-user.target.wants/hello.service');
    assert.equal(link?.type, 'symlink', "the component's unit is enabled");
    const motd = find('etc/motd');
    assert.ok(motd?.type === 'file' && motd.size === 'the hello kit was here\n'.length, 'a later layer wins');
    // A second build is a new leaf of the same stream, sharing every object.
    await cradle('nodegroup', 'build');
    assert.equal(objectsIn(depot).length, before + 1);
    assert.equal(store.listRecords().filter((r) => r.name.startsWith('nodegroup/compute/')).length, 2);
    assert.match(await cradle('nodegroup', 'show', 'compute'), /images: {6}2, newest nodegroup\/compute\//);
  });

  test('machines belong to it; a kit it uses and a group with machines are not removed', async () => {
    await cradle('machine', 'add', 'n1', '--mac', '02:00:00:00:00:01', '--node-group', 'compute');
    assert.match(await cradle('machine', 'show', 'n1'), /image: {5}nodegroup\/compute/);
    assert.match(await cradle('nodegroup', 'list'), /compute\s+demo\/1\.0\s+1\s+1\s+nodegroup\/compute\//);
    await fails(
      ['kit', 'rm', 'hello/1.0'],
      /kit hello\/1\.0 is used by node group compute: change or remove those first/,
    );
    await fails(['kit', 'rm', 'demo/1.0'], /used by node group compute/);
    await fails(['nodegroup', 'rm', 'compute'], /node group 'compute' still has 1 machine\(s\) \(n1\)/);
    assert.match(
      await run(cradleBin, ['kit', 'list', '--depot', depot], { encoding: 'utf8' }).then((r) => r.stdout),
      /hello/,
    );
    // Out of the group, the group and then its kit can go.
    await cradle('machine', 'set', 'n1', '--no-node-group');
    assert.match(await cradle('nodegroup', 'rm', 'compute'), /removed node group compute and its 2 image\(s\)/);
    assert.match(await cradle('kit', 'rm', 'hello/1.0'), /removed kit hello\/1\.0/);
  });

  test("a head node's boot server serves the installer image of the depot's newest Cradle kit, verified", async () => {
    const depotOf = new Depot(depot);
    assert.equal(await servedInstaller(depotOf), undefined, 'no Cradle kit yet');
    const kernel = crypto.randomBytes(100_000);
    // Not a multiple of 4 bytes, as a compressed initramfs mostly is not.
    const initrd = crypto.randomBytes(300_001);
    const stage2 = crypto.randomBytes(200_002);
    for (const [version, k] of [
      ['0.9.0', crypto.randomBytes(1000)],
      ['0.10.0', kernel],
    ] as const) {
      const files = tree(path.join(work, `cradle-${version}`), {
        'usr/lib/cradle/installer/vmlinuz': k,
        'usr/lib/cradle/installer/initrd.img': initrd,
        'usr/lib/cradle/installer/stage2.img': stage2,
      });
      const file = path.join(work, `cradle-${version}.kit`);
      await build(
        '--out',
        file,
        '--name',
        'cradle',
        '--version',
        version,
        '--kind',
        'addon',
        '--component',
        `installer:head:${files}:any`,
      );
      await cradle('kit', 'add', file);
    }
    const served = await servedInstaller(depotOf);
    assert.equal(served?.kit.kit.version, '0.10.0', 'the newest version, compared number by number');
    assert.deepEqual(fs.readFileSync(path.join(served.dir, 'vmlinuz')), kernel);
    assert.deepEqual(fs.readFileSync(path.join(served.dir, 'initrd.img')), initrd);
    assert.deepEqual(fs.readFileSync(path.join(served.dir, 'stage2.img')), stage2);
    // With the site's installer certificate: the kit's initramfs, then a cpio archive of the
    // certificate, its key and the CA where the installer image keeps them.
    const site = path.join(work, 'site-tls');
    fs.mkdirSync(site, { recursive: true });
    const pem = (name: string) => {
      fs.writeFileSync(path.join(site, name), `-----BEGIN TEST ${name}-----\n`);
      return path.join(site, name);
    };
    const tls = { ca: pem('ca.pem'), cert: pem('cert.pem'), key: pem('key.pem') };
    const withSite = await servedInstaller(depotOf, { tls });
    assert.ok(withSite && withSite.dir !== served.dir, 'a directory of its own per certificate set');
    assert.deepEqual(fs.readFileSync(path.join(withSite.dir, 'stage2.img')), stage2, 'the second stage unchanged');
    const both = fs.readFileSync(path.join(withSite.dir, 'initrd.img'));
    assert.deepEqual(both.subarray(0, initrd.length), initrd, "the kit's initramfs first, unchanged");
    // Linux reads the cpio archive only at a multiple of 4 bytes, zeros before it skipped.
    const archiveAt = 300_004;
    assert.deepEqual(both.subarray(initrd.length, archiveAt), Buffer.alloc(3), 'zeros up to a multiple of 4');
    assert.equal(both.subarray(archiveAt, archiveAt + 6).toString(), '070701', 'the cpio archive starts there');
    const unpacked = path.join(work, 'site-unpacked');
    fs.mkdirSync(unpacked);
    execFileSync('cpio', ['-id', '--quiet', '-D', unpacked], { input: both.subarray(archiveAt) });
    assert.equal(fs.readFileSync(path.join(unpacked, 'etc/ssl/CA.pem'), 'utf8'), '-----BEGIN TEST ca.pem-----\n');
    assert.equal(
      fs.readFileSync(path.join(unpacked, 'etc/ssl/installer/cert.pem'), 'utf8'),
      '-----BEGIN TEST cert.pem-----\n',
    );
    assert.equal(fs.statSync(path.join(unpacked, 'etc/ssl/installer/key.pem')).mode & 0o777, 0o600, 'the key private');
    // The command line takes it as the head node's unit gives it, and says what it goes with.
    await fails(
      ['server', '--address', '127.0.0.1', '--depot', depotOf.root, '--installer-tls', site],
      /--installer-tls goes with --tls-ca \(the CA the installers trust\)/,
    );
    // A corrupt object in the store is never served.
    fs.rmSync(served.dir, { recursive: true });
    const manifest = await depotOf.store.readManifest(served.kit.kit.components[0].manifest);
    const kernelEntry = manifest.entries.find((e) => e.path === 'usr/lib/cradle/installer/vmlinuz');
    assert.ok(kernelEntry?.type === 'file' && kernelEntry.digest);
    const object = depotOf.store.objectPath(kernelEntry.digest as Digest);
    const good = fs.readFileSync(object);
    fs.chmodSync(object, 0o644);
    fs.writeFileSync(object, zstdCompressSync(crypto.randomBytes(100)));
    try {
      await assert.rejects(servedInstaller(depotOf), /corrupt/);
      assert.ok(!fs.existsSync(served.dir), 'nothing served from a corrupt object');
    } finally {
      fs.writeFileSync(object, good);
    }
  });

  test('kill -9 during a build leaves the store consistent, and the retry succeeds', async () => {
    await cradle('nodegroup', 'add', 'k9', '--kit', 'demo/1.0');
    const store = ImageStore.open(path.join(depot, 'images'));
    // Kill at growing delays: early ones land in start-up, later ones in the build itself.
    for (let delay = 50; delay <= 1600; delay *= 2) {
      const child = spawn(cradleBin, ['nodegroup', 'build', 'k9', '--depot', depot, '--db', db], { stdio: 'ignore' });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill('SIGKILL');
      await exited;
      assert.deepEqual(await store.verify(), [], `the store is consistent after a kill at ${delay} ms`);
    }
    assert.match(await cradle('nodegroup', 'build', 'k9'), /built nodegroup\/k9\//);
    assert.deepEqual(await store.verify(), []);
  });
});
