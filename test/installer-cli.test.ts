// The installer's small sub-commands through the real CLI, with coreutils as the peers:
// decode-base64 against `base64`, generate-random into `head`, list-drives over a sysfs tree.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { promisify } from 'node:util';
import { startBootServer, type RunningBootServer } from '../src/boot/server.ts';
import { addImage } from '../src/image/pack/add.ts';
import { ImageStore } from '../src/image/store/store.ts';
import { openInventory } from '../src/inventory/open.ts';
import type { SqlInventory } from '../src/inventory/sql-store.ts';
import { mountPoints, mountsUnder } from '../src/system/mounts.ts';
import { cradleBin, isRoot, removeWorkDir, startImageServer, tmpDir } from './helpers.ts';

const execFileAsync = promisify(execFile);
const work = tmpDir('cradle-cli-');
after(() => removeWorkDir(work));
const bash = (script: string) =>
  execFileSync('bash', ['-o', 'pipefail', '-c', script], {
    encoding: 'utf8',
    env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' },
  });

describe('installer sub-commands', () => {
  it('decode-base64 undoes coreutils base64 (wrapped at 76 columns)', () => {
    const file = path.join(work, 'blob');
    fs.writeFileSync(file, randomBytes(100_003));
    bash(`base64 ${file} | ${cradleBin} installer decode-base64 > ${file}.out`);
    assert.deepEqual(fs.readFileSync(`${file}.out`), fs.readFileSync(file));
  });

  it('generate-random streams until the reader stops, then exits cleanly', () => {
    const out = bash(`${cradleBin} installer generate-random | head -c 3000000 | wc -c`);
    assert.equal(out.trim(), '3000000');
    const sample = execFileSync('bash', ['-c', `${cradleBin} installer generate-random | head -c 1048576`], {
      maxBuffer: 2 << 20,
    });
    assert.ok(new Set(sample).size === 256, 'every byte value occurs in a MiB of output');
  });

  it('list-drives prints the usable drives, boot drive first; --long a table, and why others were skipped', () => {
    const sys = path.join(work, 'sys');
    const dev = path.join(work, 'dev');
    fs.mkdirSync(path.join(sys, 'class', 'block'), { recursive: true });
    fs.mkdirSync(dev);
    for (const [name, bus, removable] of [
      ['sdb', 'pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0', '0'],
      ['sda', 'pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0', '0'],
      ['sr0', 'pci0000:00/0000:00:1f.2/ata3/x/y/z', '1'],
    ]) {
      const rel = `devices/${bus}/block/${name}`;
      fs.mkdirSync(path.join(sys, rel, 'device'), { recursive: true });
      fs.writeFileSync(path.join(sys, rel, 'removable'), removable);
      fs.writeFileSync(path.join(sys, rel, 'size'), String(2 * 1024 * 1024 * 20));
      fs.writeFileSync(path.join(sys, rel, 'device', 'model'), `MODEL ${name}`);
      fs.symlinkSync(`../../${rel}`, path.join(sys, 'class', 'block', name));
      fs.writeFileSync(path.join(dev, name), Buffer.alloc(512));
    }
    const listDrives = (...extra: string[]) =>
      execFileSync(
        cradleBin,
        ['installer', '--sysfs-directory', sys, '--dev-directory', dev, 'list-drives', ...extra],
        {
          encoding: 'utf8',
          env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' },
        },
      );
    // Dominator's output: the names alone, boot drive first, for scripts.
    assert.equal(listDrives(), 'sda\nsdb\n');
    const lines = listDrives('--long').trim().split('\n');
    assert.match(lines[0], /^NAME\s+SIZE\s+MODEL/);
    assert.match(lines[1], /^sda\s+20\.0 GiB\s+MODEL sda .*boot$/);
    assert.match(lines[2], /^sdb\s+20\.0 GiB/);
    assert.match(lines[3], /^skipped sr0: removable/);
  });
});

// Dominator's image and configuration sub-commands against Cradle's real servers on loopback: an
// image server in this process, and the boot server's TFTP (which picks the machine by the
// client's address: 127.0.0.1 is this test's machine). The installer's --tftp-directory is a
// temporary directory, so its `imageserver` file is the default as /tftpdata/imageserver is on a
// netbooted machine.
describe('installer sub-commands with the image server and the boot server', () => {
  const images = ['os/img.10', 'os/img.2', 'base/2024-01-18:22:57:43', 'os/img.1'];
  let imageServer: Awaited<ReturnType<typeof startImageServer>>;
  let bootServer: RunningBootServer;
  let inventory: SqlInventory;
  const tftpdata = path.join(work, 'tftpdata');
  const env = { ...process.env, CRADLE_NO_FLAG_FILES: '1', CRADLE_IMAGESERVER: '' };
  const cradle = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    execFileAsync(cradleBin, args, { encoding: 'utf8', env: { ...env, ...extraEnv } });
  const failure = async (args: string[]) => {
    try {
      await cradle(args);
    } catch (err) {
      return (err as { stderr: string }).stderr;
    }
    assert.fail(`cradle ${args.join(' ')} succeeded`);
  };

  before(async () => {
    const store = new ImageStore(path.join(work, 'store')).init();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(src, 'etc/hostname'), 'loaded\n');
    for (const name of images) await addImage(store, name, src, { warn: () => {} });
    imageServer = await startImageServer(store);
    inventory = await openInventory(`sqlite:${path.join(work, 'inventory.db')}`);
    await inventory.addSubnet({ id: 'lo', gateway: '127.0.0.254', mask: '255.0.0.0', dnsServers: [], manage: false });
    await inventory.addMachine({
      hostname: 'loop0',
      macs: ['de:ad:be:ef:00:07'],
      ip: '127.0.0.1',
      subnetId: 'lo',
      tags: { RequiredImage: 'os/img.2' },
    });
    const tftpRoot = path.join(work, 'tftproot');
    fs.mkdirSync(tftpRoot);
    fs.writeFileSync(path.join(tftpRoot, 'random-seed'), randomBytes(512));
    bootServer = await startBootServer({
      inventory,
      roles: ['tftp'],
      address: '127.0.0.1',
      httpPort: 0,
      tftpPort: 0,
      interfaces: [],
      dhcp: {},
      settings: { imageServer: imageServer.url, defaultLayout: { BootDriveLayout: [{ MountPoint: '/' }] } },
      tftpRoot,
      kernelArgs: '',
      log: () => {},
    });
  });
  after(async () => {
    await bootServer?.close();
    await inventory?.close();
    await imageServer?.close();
  });

  test('load-configuration-from-tftp needs --tftp-server-hostname and an existing --tftp-directory', async () => {
    assert.match(
      await failure(['installer', '--tftp-directory', work, 'load-configuration-from-tftp']),
      /no TFTP server: pass the installer's --tftp-server-hostname/,
    );
    const missing = path.join(work, 'no-such-dir');
    assert.match(
      await failure([
        'installer',
        '--tftp-directory',
        missing,
        '--tftp-server-hostname',
        '127.0.0.1',
        'load-configuration-from-tftp',
      ]),
      new RegExp(`the TFTP directory ${missing} does not exist: make it`),
    );
    assert.equal(fs.existsSync(missing), false, 'nothing is made');
  });

  test("load-configuration-from-tftp fetches this machine's files from the boot server, random-seed into /dev/urandom", async () => {
    fs.mkdirSync(tftpdata);
    const { port } = bootServer.tftp!;
    const { stderr } = await cradle([
      'installer',
      '--tftp-directory',
      tftpdata,
      '--tftp-server-hostname',
      `127.0.0.1:${port}`,
      'load-configuration-from-tftp',
    ]);
    // What the boot server serves 127.0.0.1, and nothing it has not (no tools image is set).
    assert.deepEqual(fs.readdirSync(tftpdata).sort(), [
      'bootserver',
      'config.json',
      'imagename',
      'imageserver',
      'storage-layout.json',
    ]);
    const config = JSON.parse(fs.readFileSync(path.join(tftpdata, 'config.json'), 'utf8'));
    assert.equal(config.Machine.Hostname, 'loop0');
    assert.equal(config.Machine.HostIpAddress, '127.0.0.1');
    assert.equal(fs.readFileSync(path.join(tftpdata, 'imagename'), 'utf8'), 'os/img.2\n');
    assert.equal(fs.readFileSync(path.join(tftpdata, 'imageserver'), 'utf8'), `${imageServer.url}\n`);
    assert.match(stderr, /mixed random-seed \(512 bytes\) from tftp:\/\/127\.0\.0\.1:\d+ into \/dev\/urandom/);
  });

  test("list-images prints one name a line, version-aware, from the server the TFTP directory's imageserver file names", async () => {
    const dir = path.join(work, 'list-tftpdata');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'imageserver'), `${imageServer.url}\n`);
    const { stdout } = await cradle(['installer', '--tftp-directory', dir, 'list-images']);
    assert.equal(stdout, 'base/2024-01-18:22:57:43\nos/img.1\nos/img.2\nos/img.10\n');
    // --imageserver and CRADLE_IMAGESERVER name another server than the file (a dead one here).
    fs.writeFileSync(path.join(dir, 'imageserver'), '127.0.0.1:9\n');
    assert.equal(
      (await cradle(['installer', '--tftp-directory', dir, 'list-images', '--imageserver', imageServer.url])).stdout,
      stdout,
    );
    assert.equal(
      (await cradle(['installer', '--tftp-directory', dir, 'list-images'], { CRADLE_IMAGESERVER: imageServer.url }))
        .stdout,
      stdout,
    );
    assert.match(await failure(['installer', '--tftp-directory', dir, 'list-images']), /127\.0\.0\.1:9 unreachable/);
    // The table, in the same order.
    const long = (
      await cradle(['installer', '--tftp-directory', dir, 'list-images', '--long', '--imageserver', imageServer.url])
    ).stdout.split('\n');
    assert.match(long[0], /^NAME\s+CREATED\s+FILES\s+SIZE$/);
    assert.deepEqual(
      long.slice(1, 5).map((l) => l.split(/\s+/)[0]),
      stdout.trim().split('\n'),
    );
  });

  test('with no imageserver file and no flag, the error names the file and the fix', async () => {
    const empty = path.join(work, 'empty-tftpdata');
    fs.mkdirSync(empty);
    assert.match(
      await failure(['installer', '--tftp-directory', empty, 'list-images']),
      new RegExp(`no image server: ${empty}/imageserver does not exist; pass --imageserver HOST\\[:PORT\\]`),
    );
    fs.writeFileSync(path.join(empty, 'imageserver'), '\n');
    assert.match(
      await failure(['installer', '--tftp-directory', empty, 'load-image', 'os/img.1', path.join(work, 'x')]),
      /imageserver is empty/,
    );
  });

  test('load-image mounts a tmpfs at DIR, unpacks into it and binds /dev /proc /sys /tmp; an unknown name is refused', {
    skip: !isRoot() && 'needs root (mounts)',
  }, async () => {
    const target = path.join(work, 'loaded');
    const dir = path.join(work, 'load-tftpdata');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'imageserver'), `${imageServer.url}\n`);
    try {
      const { stdout } = await cradle(['installer', '--tftp-directory', dir, 'load-image', 'os', target]);
      // A stream loads its latest image by creation (os/img.1 was added last), not by name.
      assert.match(stdout, /loaded os\/img\.1 into/);
      const mounts = fs
        .readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' '));
      const at = (dir: string) => mounts.find((m) => m[1] === dir);
      assert.equal(at(target)?.[2], 'tmpfs', 'a tmpfs at DIR');
      for (const d of ['dev', 'proc', 'sys', 'tmp']) assert.ok(at(path.join(target, d)), `/${d} bound into DIR`);
      assert.equal(fs.readFileSync(path.join(target, 'etc/hostname'), 'utf8'), 'loaded\n');
    } finally {
      for (const m of mountsUnder(target).reverse()) execFileSync('umount', ['-l', m]);
      if (mountPoints().includes(target)) execFileSync('umount', ['-l', target]);
    }
    const other = path.join(work, 'never');
    assert.match(
      await failure(['installer', '--tftp-directory', dir, 'load-image', 'nope/1', other]),
      /image: nope\/1 does not exist on http:\/\/127\.0\.0\.1:\d+/,
    );
    assert.equal(mountPoints().includes(other), false, 'nothing is mounted for an unknown image');
  });
});
