// The installer on loop-device drives, as in test/installer-host.test.ts, with the bootable
// Debian image (kernel, GRUB; about 800 MB, 18,600 entries):
//   1. a fresh install: time per phase;
//   2. the install step (image from memory onto ext4, with sync) vs `tar -x` of the same tree
//      from memory onto a fresh ext4 of the same kind, with sync;
//   3. reinstall of a changed image (+25 files, 2.5 MB) with the old OS as object cache, vs the
//      same install onto a blank drive: bytes downloaded and time.
//   node_modules/.bin/node bench/installer.ts
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { debianRootfs } from '../src/lab/debian-rootfs.ts';
import { fakeSysfs, Lab, waitForHttp } from '../test/lab.ts';
import { cradleBin, exec, LoopFs, q, runBenchmark, shell, tempDir, writeResults } from './lib.ts';
import { mb, ratioLine, secs } from './measure.ts';

const SERVER = '192.168.1.1';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface InstallRun {
  seconds: number;
  phaseSeconds: Record<string, number>;
  objects: { objectsFromCache: number; bytesFromCache: number; objectsFetched: number; bytesFetched: number };
  installSeconds: number;
}

await runBenchmark('installer', async (c) => {
  const work = tempDir(c, 'installer');
  const lab = new Lab('bench');
  c.defer('lab cleanup', () => lab.cleanup());
  const rootfs = debianRootfs('bootable');
  const store = path.join(work, 'store');
  await exec(cradleBin, ['image', 'add', '--store', store, 'debian/v1', rootfs]);
  const upper = path.join(work, 'upper', 'opt', 'app');
  fs.mkdirSync(upper, { recursive: true });
  for (let i = 0; i < 25; i++) fs.writeFileSync(path.join(upper, `part${i}`), Buffer.alloc(100_000, i + 1));
  const merged = path.join(work, 'merged');
  fs.mkdirSync(merged);
  fs.mkdirSync(path.join(work, 'ovl'));
  await exec('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${rootfs},upperdir=${path.join(work, 'upper')},workdir=${path.join(work, 'ovl')}`,
    merged,
  ]);
  await exec(cradleBin, ['image', 'add', '--store', store, 'debian/v2', merged]);
  await exec('umount', [merged]);

  const disk = lab.loopDevice(path.join(work, 'disk.img'), 6 * GiB);
  fakeSysfs(
    path.join(work, 'sys'),
    [{ loop: disk, model: 'BENCH', serial: 'B1', slot: '0000:00:05.0' }],
    [{ name: 'eth0', mac: 'de:ad:be:ef:00:01', carrier: true, slot: '0000:00:03.0' }],
  );
  lab.network('de:ad:be:ef:00:01', `${SERVER}/24`);
  lab.serve(
    [
      process.execPath,
      '--disable-warning=ExperimentalWarning',
      path.join(import.meta.dirname, '../src/cli/main.ts'),
      'imageserver',
      '--store',
      store,
      '--listen',
      SERVER,
    ],
    path.join(work, 'imageserver.log'),
  );
  lab.serve(
    [
      process.execPath,
      path.join(import.meta.dirname, '../test/fixtures/event-sink.ts'),
      SERVER,
      '6977',
      path.join(work, 'events.jsonl'),
    ],
    path.join(work, 'sink.log'),
  );
  await waitForHttp(lab.serverNs, `http://${SERVER}:6971/v1/images`);
  const seedConfig = fs.readFileSync(
    path.join(import.meta.dirname, '../src/netconfig/testdata/seed-config.json'),
    'utf8',
  );
  const layout = JSON.stringify({
    BootDriveLayout: [
      { MountPoint: '/', MinimumFreeBytes: 512 * MiB },
      { MountPoint: '/home', MinimumFreeBytes: 64 * MiB },
      { MountPoint: '/var/log', MinimumFreeBytes: 64 * MiB },
    ],
  });

  const install = (image: string): InstallRun => {
    const tftp = path.join(work, 'tftpdata');
    fs.rmSync(tftp, { recursive: true, force: true });
    fs.mkdirSync(tftp);
    const files = {
      'config.json': seedConfig,
      imagename: image,
      imageserver: `${SERVER}:6971`,
      'storage-layout.json': layout,
      bootserver: `http://${SERVER}:6977`,
    };
    for (const [k, v] of Object.entries(files)) fs.writeFileSync(path.join(tftp, k), v);
    fs.rmSync(path.join(work, 'events.jsonl'), { force: true });
    const started = performance.now();
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        lab.machineNs,
        'unshare',
        '--uts',
        cradleBin,
        'installer',
        '--no-dry-run',
        '--no-reboot',
        '--allow-running-system',
        '--tftp-directory',
        tftp,
        '--tmp-root',
        path.join(work, 'tmproot'),
        '--mount-point',
        path.join(work, 'mnt'),
        '--log-directory',
        path.join(work, 'log'),
        '--build-timestamp',
        path.join(work, 'none'),
        '--sysfs-directory',
        path.join(work, 'sys'),
        '--booted-root',
        'none',
        '--firmware',
        'bios',
        '--success-wait',
        '0',
      ],
      { encoding: 'utf8', env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' } },
    );
    const seconds = (performance.now() - started) / 1000;
    if (r.status !== 0) throw new Error(`install of ${image} failed:\n${r.stderr}`);
    const result = fs
      .readFileSync(path.join(work, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.type === 'result');
    const installSeconds = Number(/installed debian\/v\d+: .* in ([\d.]+) s including sync/.exec(r.stderr)?.[1]);
    return { seconds, phaseSeconds: result.phaseSeconds, objects: result.objects, installSeconds };
  };

  // 1. Fresh install onto a blank drive.
  await exec('blkdiscard', ['-f', disk]);
  const fresh = install('debian/v1');
  console.log(`fresh install of debian/v1: ${secs(fresh.seconds)} (process start to exit)`);
  for (const [p, s] of Object.entries(fresh.phaseSeconds)) console.log(`  ${p.padEnd(15)} ${secs(s)}`);

  // 2. The install step vs tar -x, both from memory onto a fresh ext4 on a loop device.
  const shm = fs.mkdtempSync('/dev/shm/cradle-bench-');
  c.defer('rm tar in /dev/shm', () => fs.rmSync(shm, { recursive: true, force: true }));
  await shell(
    `tar -c --xattrs --xattrs-include='*' --acls --numeric-owner -f ${q(path.join(shm, 'image.tar'))} -C ${q(rootfs)} .`,
  );
  const lfs = await LoopFs.create(c, work, 'tar-target', 4096);
  const tarRuns: number[] = [];
  for (let i = 0; i < 2; i++) {
    await lfs.format();
    tarRuns.push(
      (
        await shell(
          `tar -x --xattrs --xattrs-include='*' --acls --numeric-owner --same-owner -p -f ${q(path.join(shm, 'image.tar'))} -C ${q(lfs.mnt)} && sync -f ${q(lfs.mnt)}`,
        )
      ).seconds,
    );
  }
  const tarSeconds = Math.min(...tarRuns);
  const imageBytes = Number((await exec('du', ['-sb', rootfs])).stdout.split('\t')[0]);
  console.log(
    ratioLine(
      'install step (memory -> ext4, verified, + sync) vs tar -x (memory -> ext4, + sync)',
      { label: 'cradle', value: secs(fresh.installSeconds), n: fresh.installSeconds },
      { label: 'tar -x', value: secs(tarSeconds), n: tarSeconds },
      'lower is better',
    ),
  );

  // 3. Reinstall of the changed image: with the old OS on the drive, and onto a blank drive.
  const cached = install('debian/v2');
  await exec('blkdiscard', ['-f', disk]);
  const uncached = install('debian/v2');
  console.log(
    `reinstall debian/v2 with the old OS: downloaded ${mb(cached.objects.bytesFetched)} (${cached.objects.objectsFetched} objects), ${mb(cached.objects.bytesFromCache)} from cache, tools phase ${secs(cached.phaseSeconds.tools)}, total ${secs(cached.seconds)}`,
  );
  console.log(
    `install debian/v2 onto a blank drive: downloaded ${mb(uncached.objects.bytesFetched)}, tools phase ${secs(uncached.phaseSeconds.tools)}, total ${secs(uncached.seconds)}`,
  );
  console.log(
    ratioLine(
      'bytes downloaded, reinstall with old-OS cache vs blank drive',
      { label: 'cached', value: mb(cached.objects.bytesFetched), n: cached.objects.bytesFetched },
      { label: 'blank', value: mb(uncached.objects.bytesFetched), n: uncached.objects.bytesFetched },
      'lower is better',
    ),
  );
  console.log(
    ratioLine(
      'total time, reinstall with old-OS cache vs blank drive',
      { label: 'cached', value: secs(cached.seconds), n: cached.seconds },
      { label: 'blank', value: secs(uncached.seconds), n: uncached.seconds },
      'lower is better; loopback network',
    ),
  );
  console.log(`results: ${writeResults('installer', { imageBytes, fresh, tarSeconds, tarRuns, cached, uncached })}`);
});
