// The installer daemon on real devices, as root: loop devices as drives (a 4 GiB boot disk, a
// 512 MiB data disk), a real image server in its own network namespace, the installer in another,
// its eth0 a veth whose MAC Dominator's example config.json names. Shared by the host installer
// tests; each test file makes its own (namespaces are named by the tag and the process id).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cradleBin, removeWorkDir, sh, tmpDir } from './helpers.ts';
import { fakeSysfs, Lab, waitForHttp } from './lab.ts';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
export const SERVER = '192.168.1.1';
export const seedConfig = fs.readFileSync(
  path.join(import.meta.dirname, '../src/netconfig/testdata/seed-config.json'),
  'utf8',
);

export const layout = (over: object = {}) =>
  JSON.stringify({
    BootDriveLayout: [
      { FileSystemType: 'ext4', MountPoint: '/', MinimumFreeBytes: 256 * MiB },
      { FileSystemType: 'ext4', MountPoint: '/home', MinimumFreeBytes: 64 * MiB },
      { FileSystemType: 'ext4', MountPoint: '/var/log', MinimumFreeBytes: 64 * MiB },
    ],
    ExtraMountPointsBasename: '/data/',
    Encrypt: false,
    UseKexec: false,
    ...over,
  });

export const goodFiles = (image: string, over: Record<string, string> = {}) => ({
  'config.json': seedConfig,
  imagename: `${image}\n`,
  imageserver: `${SERVER}:6971\n`,
  'storage-layout.json': layout(),
  bootserver: `http://${SERVER}:6977\n`,
  ...over,
});

export interface InstallerHostOptions {
  /** Adds the images to the image server's store (`cradle image add --store <store> ...`). */
  addImages: (store: string, work: string) => void;
  /** Also DHCP and TFTP (dnsmasq) for the netboot path. */
  netboot?: boolean;
}

export class InstallerHost {
  work = '';
  lab?: Lab;
  disk0 = '';
  disk1 = '';

  private readonly tag: string;

  /** `tag` names the namespaces and the work directory. */
  constructor(tag: string) {
    this.tag = tag;
  }

  async setUp(o: InstallerHostOptions): Promise<void> {
    this.work = tmpDir(`cradle-${this.tag}-`);
    const work = this.work;
    const lab = new Lab(this.tag);
    this.lab = lab;
    fs.writeFileSync(path.join(work, 'build-timestamp'), '');
    fs.utimesSync(path.join(work, 'build-timestamp'), new Date('2020-01-01'), new Date('2020-01-01'));
    const store = path.join(work, 'store');
    o.addImages(store, work);
    this.disk0 = lab.loopDevice(path.join(work, 'disk0.img'), 4 * GiB);
    this.disk1 = lab.loopDevice(path.join(work, 'disk1.img'), 512 * MiB);
    fakeSysfs(
      path.join(work, 'sys'),
      [
        { loop: this.disk1, model: 'DATA DISK', serial: 'SER-DATA-1', slot: '0000:00:06.0' },
        { loop: this.disk0, model: 'BOOT DISK', serial: 'SER-BOOT-0', slot: '0000:00:05.0' },
      ],
      [
        { name: 'eth0', mac: 'de:ad:be:ef:00:01', carrier: true, slot: '0000:00:03.0' },
        { name: 'eth1', mac: 'de:ad:be:ef:00:02', carrier: false, slot: '0000:00:04.0' },
      ],
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
        path.join(import.meta.dirname, 'fixtures/event-sink.ts'),
        SERVER,
        '6977',
        path.join(work, 'events.jsonl'),
      ],
      path.join(work, 'sink.log'),
    );
    if (o.netboot) this.serveNetboot();
    await waitForHttp(lab.serverNs, `http://${SERVER}:6971/v1/images`);
  }

  /** DHCP and TFTP for the netboot path: dnsmasq, with a reservation for the machine's MAC. */
  private serveNetboot(): void {
    const work = this.work;
    fs.mkdirSync(path.join(work, 'tftp-root'));
    this.lab!.serve(
      [
        'dnsmasq',
        '--keep-in-foreground',
        '--no-daemon',
        '--user=root',
        '--conf-file=/dev/null',
        '--port=0',
        '--interface=srv0',
        '--bind-interfaces',
        '--no-ping',
        '--dhcp-range=192.168.1.100,192.168.1.200,255.255.255.0,1h',
        '--dhcp-host=de:ad:be:ef:00:01,192.168.1.2,hyper0',
        '--dhcp-option=3,192.168.1.1',
        '--dhcp-option=6,192.168.1.53',
        '--dhcp-boot=pxelinux.0,,192.168.1.1',
        '--enable-tftp',
        `--tftp-root=${path.join(work, 'tftp-root')}`,
        `--dhcp-leasefile=${path.join(work, 'leases')}`,
        '--log-dhcp',
        '--log-facility=-',
      ],
      path.join(work, 'dnsmasq.log'),
    );
  }

  cleanup(): void {
    this.lab?.cleanup();
    if (this.work) removeWorkDir(this.work);
  }

  /** A digest of a drive's first and last MiB, where partition tables live. */
  headAndTail(dev: string): string {
    const fd = fs.openSync(dev, 'r');
    const size = Number(sh('blockdev', ['--getsize64', dev]).trim());
    const buf = Buffer.alloc(2 * MiB);
    fs.readSync(fd, buf, 0, MiB, 0);
    fs.readSync(fd, buf, MiB, MiB, size - MiB);
    fs.closeSync(fd);
    return createHash('sha256').update(buf).digest('hex');
  }

  /** The configuration files in the TFTP directory (injected), or with `netboot` on the server. */
  placeFiles(files: Record<string, string>, netboot = false): void {
    const tftp = path.join(this.work, 'tftpdata');
    fs.rmSync(tftp, { recursive: true, force: true });
    fs.mkdirSync(tftp);
    for (const [name, text] of Object.entries(files))
      fs.writeFileSync(path.join(netboot ? path.join(this.work, 'tftp-root') : tftp, name), text);
    fs.mkdirSync(path.join(this.work, 'tmp'), { recursive: true });
  }

  /** Runs the daemon in the machine's namespace, with `files` placed first (or already placed). */
  install(files: Record<string, string> | 'placed', extra: string[] = [], netboot = false) {
    const work = this.work;
    if (files !== 'placed') this.placeFiles(files, netboot);
    return this.run([
      '--no-dry-run',
      '--no-reboot',
      '--allow-running-system',
      '--tftp-directory',
      path.join(work, 'tftpdata'),
      '--tmp-root',
      path.join(work, 'tmproot'),
      '--mount-point',
      path.join(work, 'mnt'),
      '--log-directory',
      path.join(work, 'log'),
      '--build-timestamp',
      path.join(work, 'build-timestamp'),
      '--sysfs-directory',
      path.join(work, 'sys'),
      '--booted-root',
      'none',
      '--firmware',
      'bios',
      '--success-wait',
      '0',
      '--failure-wait',
      '0',
      ...extra,
    ]);
  }

  /**
   * `cradle installer ARGS` in the machine's namespace; no flag file is read unless `env` names
   * one (CRADLE_FLAG_FILES).
   */
  run(args: string[], env: NodeJS.ProcessEnv = { CRADLE_NO_FLAG_FILES: '1' }) {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', this.lab!.machineNs, 'unshare', '--uts', cradleBin, 'installer', ...args],
      {
        encoding: 'utf8',
        // TMPDIR inside the work directory: what the installer puts there is seen by the tests.
        env: { ...process.env, ...env, TMPDIR: path.join(this.work, 'tmp') },
        timeout: 600_000,
      },
    );
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
  }

  /** The events the installer reported to the boot server's sink. */
  events(): { type: string; [k: string]: unknown }[] {
    return fs
      .readFileSync(path.join(this.work, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  }
}
