// The installer image as built by `cradle build-installer` (kept in the cache, like the lab and the
// VM tests use it): its contents listed and unpacked by the real cpio and zstd, and the installer
// run from the unpacked image with only the image's own Node, libraries and tools (chroot), against
// an image server: the bundle, its worker threads and the pinned runtime work together.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addImage } from '../src/image/pack/add.ts';
import { ImageStore } from '../src/image/store/store.ts';
import { cachedInstallerImage } from '../src/initramfs/build.ts';
import { cacheDir } from '../src/util/build-cache.ts';
import { RunningMachine } from '../src/lab/qemu.ts';
import { cradleBin, isRoot, removeWorkDir, startImageServer, tmpDir } from './helpers.ts';
import { cpioNewc } from '../src/initramfs/cpio.ts';
import { openInventory } from '../src/inventory/open.ts';
import zlib from 'node:zlib';

const execFileAsync = promisify(execFile);

describe('installer image', { skip: !isRoot() && 'needs root (chroot, device nodes in the unpacked image)' }, () => {
  let work: string;
  let image: string;
  let root: string;
  let files: string[];
  let stage2Files: string[];
  let squashfs: string;
  let isoFile: string | undefined;

  before(async () => {
    work = tmpDir('cradle-build-installer-');
    image = await cachedInstallerImage(cacheDir);
    root = path.join(work, 'root');
    fs.mkdirSync(root);
    // The real peers: zstd decompresses, cpio unpacks (as the kernel would, with our modes).
    const cpio = execFileSync('zstd', ['-dc', path.join(image, 'initrd.img')], { maxBuffer: 1 << 30 });
    files = execFileSync('cpio', ['-t', '--quiet'], { input: cpio, maxBuffer: 64 << 20, encoding: 'utf8' }).split('\n');
    execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], {
      input: cpio,
      cwd: root,
      maxBuffer: 64 << 20,
    });
    // The second stage, as /init finds it: one squashfs file in a cpio archive in a zstd frame,
    // whose digest the first stage carries; squashfs-tools' unsquashfs puts it where /init mounts it.
    const stage2 = execFileSync('zstd', ['-dc', path.join(image, 'stage2.img')], { maxBuffer: 1 << 30 });
    stage2Files = execFileSync('cpio', ['-t', '--quiet'], { input: stage2, encoding: 'utf8' }).split('\n');
    execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { input: stage2, cwd: work });
    squashfs = path.join(work, 'stage2.squashfs');
    execFileSync('unsquashfs', ['-q', '-n', '-f', '-d', path.join(root, 'usr/lib/cradle'), squashfs]);
  });
  after(() => {
    if (work) removeWorkDir(work);
  });

  test('the second stage is Node and the installer, checked by the digest the first stage carries', () => {
    assert.deepEqual(stage2Files.filter(Boolean), ['stage2.squashfs']);
    assert.equal(
      fs.readFileSync(path.join(root, 'etc/installer/stage2.sha256'), 'utf8'),
      `${createHash('sha256').update(fs.readFileSync(squashfs)).digest('hex')}\n`,
    );
    for (const f of ['node', 'cradle.mjs', 'node_modules/@lydell/node-pty/package.json'])
      assert.ok(fs.existsSync(path.join(root, 'usr/lib/cradle', f)), `${f} is in the second stage`);
    assert.equal(fs.readlinkSync(path.join(root, 'usr/bin/node')), '../lib/cradle/node');
    // The first stage holds the mount point and nothing under it.
    assert.deepEqual(
      files.filter((f) => f.startsWith('usr/lib/cradle/')),
      [],
    );
    assert.ok(files.includes('etc/installer/modules.stage2'));
  });

  test('it carries the installer, Node, busybox, the tools with their libraries, and the modules in dependency order', () => {
    for (const f of [
      'init',
      'build-timestamp',
      'dev/console',
      'usr/bin/node',
      'usr/bin/cradle',
      'usr/lib/cradle',
      'usr/bin/busybox',
      'usr/sbin/cryptsetup',
      'usr/sbin/sfdisk',
      'usr/bin/partx',
      'usr/sbin/kexec',
      'usr/sbin/mkfs.ext4',
      'usr/sbin/mkfs.xfs',
      'usr/sbin/mkfs.vfat',
      'usr/sbin/ip',
      'usr/bin/kmod',
      'usr/sbin/modprobe',
      'usr/sbin/udhcpc',
      'usr/lib/x86_64-linux-gnu/libgcc_s.so.1',
      'usr/lib64/ld-linux-x86-64.so.2',
    ]) {
      assert.ok(files.includes(f), `${f} is in the image`);
    }
    const modules = files.filter((f) => f.endsWith('.ko')).map((f) => path.basename(f, '.ko'));
    for (const m of [
      'virtio_blk',
      'virtio_net',
      'nvme',
      'ahci',
      'e1000e',
      'igb',
      'dm-crypt',
      'ext4',
      'xfs',
      'vfat',
      '8021q',
      'bonding',
      'bridge',
      'crc32c_generic',
      'libcrc32c',
      'loop',
      'squashfs',
    ])
      assert.ok(modules.includes(m), `module ${m}`);
    // Parents come before children: the kernel's unpacker creates no directories.
    const seen = new Set(['.']);
    for (const f of files.filter(Boolean)) {
      assert.ok(seen.has(path.dirname(f)), `${f} comes after its directory`);
      seen.add(f);
    }
    // kmod's index names ext4's dependencies, so `modprobe ext4` in the image loads them.
    const dep = fs.readFileSync(
      path.join(root, 'usr/lib/modules', fs.readdirSync(path.join(root, 'usr/lib/modules'))[0], 'modules.dep'),
      'utf8',
    );
    assert.match(dep, /^kernel\/fs\/ext4\/ext4\.ko: .*jbd2\.ko/m);
    const info = JSON.parse(fs.readFileSync(path.join(image, 'build-info.json'), 'utf8'));
    assert.equal(
      Object.values(info.parts as Record<string, number>).reduce((a, b) => a + b, 0) <= info.uncompressedBytes,
      true,
    );
    assert.ok(info.initrdBytes < info.uncompressedBytes / 2, 'zstd compressed');
    assert.equal(
      fs.statSync(path.join(root, 'build-timestamp')).mtimeMs,
      Date.parse(info.buildTime) - (Date.parse(info.buildTime) % 1000),
      'the clock floor is the build time',
    );
  });

  test("the installer runs from the image with only the image's own runtime, and unpacks an image from a server", async () => {
    const store = new ImageStore(path.join(work, 'store')).init();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(src, 'etc/hostname'), 'inside\n');
    fs.writeFileSync(path.join(src, 'big'), Buffer.alloc(3 << 20, 7));
    await addImage(store, 'tiny/1', src, { warn: () => {} });
    const server = await startImageServer(store);
    try {
      // Asynchronous: the image server answers from this process. /proc is mounted in a mount
      // namespace of the command's own, so nothing is left mounted on the host.
      const chroot = async (...args: string[]) =>
        (
          await execFileAsync(
            'unshare',
            [
              '--mount',
              '--propagation',
              'private',
              'sh',
              '-c',
              'mount -t proc proc "$0/proc" && exec chroot "$0" /usr/bin/cradle "$@"',
              root,
              ...args,
            ],
            { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin' } },
          )
        ).stdout;
      assert.match(await chroot('installer', '--help'), /install the configured image/);
      assert.match(await chroot('installer', 'list-images', '--imageserver', server.url), /tiny\/1/);
      await chroot('installer', 'load-image', '--imageserver', server.url, '--no-mounts', 'tiny/1', '/tmp/target');
      assert.equal(fs.readFileSync(path.join(root, 'tmp/target/etc/hostname'), 'utf8'), 'inside\n');
      assert.deepEqual(fs.readFileSync(path.join(root, 'tmp/target/big')), Buffer.alloc(3 << 20, 7));
    } finally {
      await server.close();
    }
  });

  test('`cradle build-installer` writes the kernel, both stages and the ISO and prints what takes the space', {
    timeout: 300_000,
  }, () => {
    const out = path.join(work, 'out');
    const tftpdata = path.join(work, 'tftpdata');
    fs.mkdirSync(tftpdata);
    fs.writeFileSync(path.join(tftpdata, 'imagename'), 'tiny/1\n');
    const printed = execFileSync(
      cradleBin,
      [
        'build-installer',
        '--out',
        out,
        '--compression',
        'none',
        '--tftpdata',
        tftpdata,
        '--flag',
        'image-server-hostname=10.0.0.1',
        '--iso',
      ],
      { encoding: 'utf8' },
    );
    assert.match(printed, /node runtime\s+\d/);
    assert.match(printed, /kernel modules\s+\d/);
    assert.match(printed, /both stages, uncompressed\s+\d/);
    assert.match(printed, /second stage \(stage2\.img\), squashfs\s+\d/);
    const listing = execFileSync('cpio', ['-t', '--quiet'], {
      input: fs.readFileSync(path.join(out, 'initrd.img')),
      maxBuffer: 64 << 20,
      encoding: 'utf8',
    });
    assert.match(listing, /^tftpdata\/imagename$/m);
    assert.match(listing, /^etc\/installer\/flags\.default$/m);
    assert.throws(
      () => execFileSync(cradleBin, ['build-installer', '--out', out, '--flag', 'no spaces=1'], { stdio: 'pipe' }),
      /--flag takes NAME=VALUE/,
    );
    // The ISO boots with GRUB on BIOS (El Torito) and UEFI (an EFI system partition image).
    const iso = execFileSync('xorriso', ['-indev', path.join(out, 'installer.iso'), '-report_el_torito', 'plain'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.match(iso, /El Torito boot img :\s+1\s+BIOS/);
    assert.match(iso, /El Torito boot img :\s+2\s+UEFI/);
    const top = execFileSync('xorriso', ['-indev', path.join(out, 'installer.iso'), '-ls', '/'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const f of ['vmlinuz', 'initrd.img', 'stage2.img'])
      assert.match(top, new RegExp(`'/?${f}'`), `${f} on the ISO`);
    isoFile = path.join(out, 'installer.iso');
  });

  test('the ISO boots a machine (BIOS, from CD) into the installer', { timeout: 300_000 }, async (t) => {
    if (!isoFile || !fs.existsSync('/usr/bin/qemu-system-x86_64'))
      return t.skip('needs the ISO of the test before and qemu-system-x86');
    // No NIC: the installer starts, finds no network to ask for its configuration, and says so.
    const machine = new RunningMachine(
      [
        'qemu-system-x86_64',
        '-accel',
        'tcg,thread=multi',
        '-smp',
        '2',
        '-m',
        '1536',
        '-nographic',
        '-net',
        'none',
        '-cdrom',
        isoFile,
      ],
      path.join(work, 'iso-console.log'),
    );
    try {
      await machine.waitFor(/Cradle installer/, 60_000);
      await machine.waitFor(/cradle: installer image built .* kernel 6\./, 120_000);
      await machine.waitFor(/cradle: drivers loaded/, 60_000);
      // The pre-injected flag reached the installer (a bad one would stop it with its usage).
      await machine.waitFor(/install failed: no Ethernet interface found/, 60_000);
      // The console has a shell while the installer waits, and a new one when it exits.
      await new Promise((r) => setTimeout(r, 2000));
      machine.type('echo "console-$((6*7))"\r');
      await machine.waitFor(/console-42/, 60_000);
      machine.type('exit\r');
      await new Promise((r) => setTimeout(r, 3000));
      machine.type(
        'echo "again-$((2+2))"; grep -sl "cradle.mjs" /proc/[0-9]*/cmdline >/dev/null && echo "installer-still-$((1+1))"\r',
      );
      await machine.waitFor(/again-4\r?\n(.*\n)?installer-still-2/, 60_000);
    } finally {
      await machine.stop();
    }
  });
});

// A machine's own ISO (`--machine HOST`, Dominator's make-installer-iso): built from a stand-in
// image (a few bytes for a kernel, a small zstd initramfs), read back with xorriso and cpio. Its
// initramfs is the image's, then an archive holding exactly that machine's configuration files at
// /tftpdata, as the boot server would serve them; no other machine's data is anywhere on it.
describe("a machine's installer ISO", () => {
  let work: string;
  let db: string;
  let standIn: string;
  let standInInitrd: Buffer;
  const run = (args: string[]) =>
    execFileSync(cradleBin, ['build-installer', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const refusal = (args: string[]) => {
    try {
      run(args);
    } catch (err) {
      return String((err as { stderr: string }).stderr);
    }
    return assert.fail(`build-installer ${args.join(' ')} succeeded`);
  };

  before(async () => {
    work = tmpDir('cradle-machine-iso-');
    db = `sqlite:${path.join(work, 'inventory.db')}`;
    const inv = await openInventory(db);
    try {
      await inv.addSubnet({
        id: 'site',
        gateway: '10.9.0.1',
        mask: '255.255.255.0',
        dnsServers: ['10.9.0.53'],
        manage: false,
      });
      await inv.addMachine({
        hostname: 'node1',
        macs: ['02:00:00:00:00:11'],
        ip: '10.9.0.11',
        subnetId: 'site',
        tags: { RequiredImage: 'debian/node1-image' },
      });
      await inv.addMachine({
        hostname: 'node2',
        macs: ['02:00:00:00:00:22'],
        ip: '10.9.0.22',
        subnetId: 'site',
        tags: { RequiredImage: 'debian/node2-image' },
      });
      await inv.addMachine({ hostname: 'nomad', macs: ['02:00:00:00:00:33'], tags: { RequiredImage: 'debian/x' } });
    } finally {
      await inv.close();
    }
    standIn = path.join(work, 'image');
    fs.mkdirSync(standIn);
    fs.writeFileSync(path.join(standIn, 'vmlinuz'), 'a stand-in kernel\n');
    // Compressed, and not a multiple of 4 bytes long: the machine's archive must be padded after it.
    let marker = 'the image itself';
    do {
      standInInitrd = zlib.zstdCompressSync(
        Buffer.concat(cpioNewc([{ type: 'file', path: 'marker', data: Buffer.from(marker) }])),
      );
      marker += '.';
    } while (standInInitrd.length % 4 === 0);
    fs.writeFileSync(path.join(standIn, 'initrd.img'), standInInitrd);
    fs.writeFileSync(path.join(standIn, 'stage2.img'), 'a stand-in second stage\n');
  });
  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("it carries exactly that machine's configuration, as the boot server would serve it", {
    timeout: 120_000,
  }, () => {
    const out = path.join(work, 'out');
    const printed = run([
      '--out',
      out,
      '--iso',
      '--machine',
      'node1',
      '--db',
      db,
      '--from',
      standIn,
      '--address',
      '10.9.0.1',
    ]);
    assert.match(printed, /wrote .*node1\.iso: the installer image of .* with node1's configuration at \/tftpdata/);
    const iso = path.join(out, 'node1.iso');
    const extracted = path.join(work, 'extracted');
    fs.mkdirSync(extracted);
    execFileSync(
      'xorriso',
      [
        '-osirrox',
        'on',
        '-indev',
        iso,
        '-extract',
        '/vmlinuz',
        path.join(extracted, 'vmlinuz'),
        '-extract',
        '/initrd.img',
        path.join(extracted, 'initrd.img'),
        '-extract',
        '/stage2.img',
        path.join(extracted, 'stage2.img'),
      ],
      { stdio: 'ignore' },
    );
    assert.equal(fs.readFileSync(path.join(extracted, 'vmlinuz'), 'utf8'), 'a stand-in kernel\n');
    // The second stage as built: it holds no machine's data.
    assert.equal(fs.readFileSync(path.join(extracted, 'stage2.img'), 'utf8'), 'a stand-in second stage\n');
    const initrd = fs.readFileSync(path.join(extracted, 'initrd.img'));
    // The image's initramfs unchanged, zeros to a multiple of 4 bytes (where Linux looks for the
    // next archive), then the machine's archive.
    assert.deepEqual(initrd.subarray(0, standInInitrd.length), standInInitrd);
    const start = standInInitrd.length + ((4 - (standInInitrd.length % 4)) % 4);
    assert.ok(initrd.subarray(standInInitrd.length, start).every((b) => b === 0));
    assert.equal(start % 4, 0);
    const appended = initrd.subarray(start);
    const listing = execFileSync('cpio', ['-t', '--quiet'], { input: appended, encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(listing, [
      'tftpdata',
      'tftpdata/config.json',
      'tftpdata/imagename',
      'tftpdata/imageserver',
      'tftpdata/storage-layout.json',
      'tftpdata/bootserver',
    ]);
    const root = path.join(work, 'unpacked');
    fs.mkdirSync(root);
    execFileSync('cpio', ['-id', '--quiet', '--no-absolute-filenames'], { input: appended, cwd: root });
    const file = (name: string) => fs.readFileSync(path.join(root, 'tftpdata', name), 'utf8');
    const config = JSON.parse(file('config.json'));
    assert.equal(config.Machine.Hostname, 'node1');
    assert.equal(config.Machine.HostIpAddress, '10.9.0.11');
    assert.equal(config.Machine.HostMacAddress, '02:00:00:00:00:11');
    assert.deepEqual(
      config.Subnets.map((s: { Id: string }) => s.Id),
      ['site'],
    );
    assert.equal(file('imagename'), 'debian/node1-image\n');
    assert.equal(file('imageserver'), '10.9.0.1:6971\n');
    assert.equal(file('bootserver'), 'http://10.9.0.1:6977\n');
    assert.equal(JSON.parse(file('storage-layout.json')).Encrypt, true, "Dominator's default layout");
    // No other machine's name, address, MAC or image anywhere on the medium.
    const bytes = fs.readFileSync(iso);
    for (const other of ['node2', '10.9.0.22', '02:00:00:00:00:22', 'nomad'])
      assert.equal(bytes.includes(other), false, `${other} is not on node1's ISO`);
    assert.ok(bytes.includes('debian/node1-image'), "node1's own files are (the check above reads the ISO's bytes)");
    // The generic image in --from is left as it was.
    assert.deepEqual(fs.readFileSync(path.join(standIn, 'initrd.img')), standInInitrd);
  });

  test('an unknown machine, one without an address, and mixed options are refused before anything is built', () => {
    const out = path.join(work, 'refused');
    const base = ['--out', out, '--db', db, '--from', standIn, '--address', '10.9.0.1'];
    assert.match(refusal([...base, '--iso', '--machine', 'ghost']), /no machine named 'ghost' in the machine database/);
    assert.match(
      refusal([...base, '--iso', '--machine', 'nomad']),
      /machine 'nomad' has no IP address in the database/,
    );
    assert.match(refusal([...base, '--machine', 'node1']), /--machine node1 writes that machine's ISO: give --iso too/);
    assert.match(
      refusal([...base, '--iso', '--machine', 'node1', '--kernel', '/boot/x']),
      /--from takes the image as it was built: leave out --kernel/,
    );
    assert.match(
      refusal(['--out', out, '--db', db, '--from', standIn, '--iso', '--machine', 'node1']),
      /--machine needs the boot server's address/,
    );
    assert.equal(fs.existsSync(out), false, 'nothing written');
  });
});
