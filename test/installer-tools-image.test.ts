// A tools image (tools-imagename) other than the image installed: the installer partitions and
// makes the file systems with the tools image's programs, chrooted in it with /dev, /proc, /sys and
// /tmp bound in, and installs the other image. The tools image here is the installed image plus
// an sfdisk (which that image lacks) and an mkfs.ext4 that each note their use in a file under
// /tmp before running the real program, and without partx, which the installer then runs from its
// own system, saying so. On loop devices, as root (the host installer tests' fixture).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { cradleBin, isRoot, sh } from './helpers.ts';
import { goodFiles, InstallerHost } from './installer-host-fixture.ts';

/** Where the tools image's wrappers note each run: the host's /tmp, bound into the tools root. */
const USED = `/tmp/cradle-tools-used-${process.pid}`;

/** A wrapper that notes its use, then runs the real program. */
const wrapper = (name: string, real: string) => `#!/bin/sh\necho "${name} $*" >> ${USED}\nexec ${real} "$@"\n`;

/** The tools image: the installed image plus the noting wrappers, and without partx (a whiteout). */
function makeToolsTree(rootfs: string, work: string): { tree: string; unmount: () => void } {
  const upper = path.join(work, 'tools-upper');
  fs.mkdirSync(path.join(upper, 'usr/sbin'), { recursive: true });
  fs.mkdirSync(path.join(upper, 'usr/bin'), { recursive: true });
  // This host runs the same Debian release: its sfdisk finds its libraries in the image.
  fs.copyFileSync('/usr/sbin/sfdisk', path.join(upper, 'usr/sbin/sfdisk.real'));
  fs.chmodSync(path.join(upper, 'usr/sbin/sfdisk.real'), 0o755);
  fs.writeFileSync(path.join(upper, 'usr/sbin/sfdisk'), wrapper('sfdisk', '/usr/sbin/sfdisk.real'), { mode: 0o755 });
  fs.writeFileSync(path.join(upper, 'usr/sbin/mkfs.ext4'), wrapper('mkfs.ext4', '/usr/sbin/mke2fs -t ext4'), {
    mode: 0o755,
  });
  sh('mknod', [path.join(upper, 'usr/bin/partx'), 'c', '0', '0']); // overlayfs: removed
  const tree = path.join(work, 'tools-tree');
  fs.mkdirSync(tree);
  fs.mkdirSync(path.join(work, 'tools-ovl-work'));
  sh('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${rootfs},upperdir=${upper},workdir=${path.join(work, 'tools-ovl-work')}`,
    tree,
  ]);
  return { tree, unmount: () => sh('umount', [tree]) };
}

describe('installer with a tools image', { skip: !isRoot() && 'needs root (loop devices, mounts, namespaces)' }, () => {
  const host = new InstallerHost('tools');
  let tmproot: string;
  let rootfs: string;
  const files = () => goodFiles('debian/v1', { 'tools-imagename': 'debian/tools\n' });

  before(async () => {
    rootfs = debianRootfs('bootable');
    await host.setUp({
      addImages: (store, work) => {
        const tools = makeToolsTree(rootfs, work);
        try {
          sh(cradleBin, ['image', 'add', '--store', store, 'debian/v1', rootfs]);
          sh(cradleBin, ['image', 'add', '--store', store, 'debian/tools', tools.tree]);
        } finally {
          tools.unmount();
        }
      },
    });
    tmproot = path.join(host.work, 'tmproot');
    // The dry run uses the network as it finds it: set it up as a netboot would have.
    sh('ip', ['-n', host.lab!.machineNs, 'address', 'add', '192.168.1.2/24', 'dev', 'eth0']);
    sh('ip', ['-n', host.lab!.machineNs, 'link', 'set', 'eth0', 'up']);
  });

  after(() => {
    fs.rmSync(USED, { force: true });
    host.cleanup();
  });

  test('--dry-run says the storage programs run chrooted in the tools image, and which it lacks', () => {
    const r = host.install(files(), ['--dry-run']);
    assert.equal(r.status, 0, r.out);
    for (const want of [
      'Image: debian/v1',
      '(tools image debian/tools',
      'Programs: partitioning, encryption and file systems run chrooted in the tools image debian/tools',
      'from it: sfdisk, mkfs.ext4',
      "the installer's own (the tools image debian/tools lacks them): partx",
      `mount --bind /dev ${tmproot}/dev`,
      `chroot ${tmproot} /usr/sbin/sfdisk --quiet`,
      `chroot ${tmproot} /usr/sbin/mkfs.ext4 -q -F -L rootfs`,
      `partx --update ${host.disk0}`,
    ]) {
      assert.ok(r.out.includes(want), `dry-run output lacks '${want}':\n${r.out}`);
    }
    assert.equal(fs.existsSync(USED), false, 'a dry run ran a tools program');
  });

  test("partitions and makes file systems with the tools image's programs, and installs the other image", () => {
    // A network hook that chroots into the tools root, as Dominator's hooks may: it finds the
    // configuration directory at its own path there, and etc/mtab.
    const hook = path.join(host.work, 'network-hook');
    const saw = path.join(host.work, 'hook-saw');
    fs.writeFileSync(
      hook,
      `#!/bin/sh\n/usr/sbin/chroot "$4" /bin/sh -c "test -f '$1/config.json' && test -e /etc/mtab && echo seen" > ${saw} 2>&1\n`,
      { mode: 0o755 },
    );
    const r = host.install(files(), ['--network-configurator', hook]);
    assert.equal(r.status, 0, r.out);
    assert.equal(fs.readFileSync(saw, 'utf8'), 'seen\n');

    // The tools image's wrappers ran, for every drive and every file system.
    const used = fs.readFileSync(USED, 'utf8').trim().split('\n');
    for (const disk of [host.disk0, host.disk1])
      assert.ok(
        used.some((l) => l.startsWith('sfdisk ') && l.endsWith(` ${disk}`)),
        `no sfdisk of ${disk}: ${used}`,
      );
    const mkfs = used.filter((l) => l.startsWith('mkfs.ext4 '));
    assert.deepEqual(
      mkfs.map((l) => l.match(/-L (\S+)/)?.[1]).sort(),
      ['/data/0', '/data/1', '/home', '/var/log', 'rootfs'],
      used.join('\n'),
    );
    assert.match(r.out, new RegExp(`ran chroot ${tmproot} /usr/sbin/sfdisk `));
    assert.match(
      r.out,
      new RegExp(`tools image debian/tools at ${tmproot} has no partx: running the installer's own partx`),
    );
    assert.match(r.out, /ran partx --update /);
    // The target image went into memory beside the tools image, its objects taken from there: all
    // but partx, which only the target image has.
    assert.match(r.out, /tools image debian\/tools: \d+ entries/);
    const result = host.events().find((e) => e.type === 'result') as unknown as {
      ok: boolean;
      objects: { objectsFetched: number; bytesFetched: number };
    };
    assert.equal(result.ok, true);
    assert.deepEqual(
      [result.objects.objectsFetched, result.objects.bytesFetched],
      [1, fs.statSync(path.join(rootfs, 'usr/bin/partx')).size],
      JSON.stringify(result.objects),
    );
    // Cleanup let go of what was bound into the tools root.
    for (const d of ['dev', 'proc', 'sys', 'tmp'])
      assert.match(r.out, new RegExp(`ran umount --detach-loop ${tmproot}/${d} `));

    // What was installed is the image, not the tools image.
    sh('partx', ['--update', host.disk0]);
    const mnt = path.join(host.work, 'verify');
    fs.mkdirSync(mnt, { recursive: true });
    sh('mount', ['-o', 'ro', `${host.disk0}p2`, mnt]);
    try {
      assert.equal(fs.readlinkSync(path.join(mnt, 'usr/sbin/mkfs.ext4')), 'mke2fs');
      assert.equal(fs.existsSync(path.join(mnt, 'usr/sbin/sfdisk')), false);
      assert.ok(fs.existsSync(path.join(mnt, 'usr/bin/partx')));
      assert.match(fs.readFileSync(path.join(mnt, 'var/lib/initial-image'), 'utf8'), /^debian\/v1/);
    } finally {
      sh('umount', [mnt]);
    }
  });
});
