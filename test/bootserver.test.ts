// `cradle server` end to end, as root, in network namespaces this test creates: our DHCP, TFTP
// and HTTP boot answering real clients (busybox udhcpc, curl's TFTP and HTTP), the installer's
// progress API moving machine states, and a QEMU guest (TCG) whose iPXE ROM network-boots through
// them into a kernel that prints a marker.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cradleBin, isRoot, removeWorkDir, tmpDir } from './helpers.ts';
import { Lab, waitForHttp } from './lab.ts';
import { MARKER, markerInitramfs } from '../src/lab/marker-initramfs.ts';

const SERVER = '10.88.0.1';
const MAC = 'de:ad:be:ef:00:01';
const KERNEL = fs
  .readdirSync('/boot')
  .filter((f) => f.startsWith('vmlinuz-'))
  .sort()
  .at(-1);
const haveQemu =
  fs.existsSync('/usr/bin/qemu-system-x86_64') &&
  fs.existsSync('/usr/lib/ipxe/qemu/pxe-virtio.rom') &&
  KERNEL !== undefined;

describe('boot server', { skip: !isRoot() && 'needs root (network namespaces)' }, () => {
  let work: string;
  let lab: Lab;
  let db: string;
  const cradle = (...args: string[]) => execFileSync(cradleBin, args, { encoding: 'utf8' });
  const inClient = (cmd: string, args: string[]) =>
    execFileSync('ip', ['netns', 'exec', lab.machineNs, cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
  const inServer = (cmd: string, args: string[], input?: string) =>
    execFileSync('ip', ['netns', 'exec', lab.serverNs, cmd, ...args], { encoding: 'utf8', timeout: 60_000, input });

  before(async () => {
    work = tmpDir('cradle-bootserver-');
    lab = new Lab('boot');
    db = `sqlite:${path.join(work, 'inventory.db')}`;
    cradle(
      'subnet',
      'add',
      'lab',
      '--db',
      db,
      '--gateway',
      SERVER,
      '--mask',
      '255.255.255.0',
      '--dns',
      SERVER,
      '--domain',
      'lab.test',
      '--pool',
      '10.88.0.100-10.88.0.150',
    );
    cradle(
      'machine',
      'add',
      'hyper0',
      '--db',
      db,
      '--mac',
      MAC,
      '--ip',
      '10.88.0.2',
      '--subnet',
      'lab',
      '--tag',
      'RequiredImage=debian/v1',
      '--state',
      'birth',
    );
    const installer = path.join(work, 'installer');
    fs.mkdirSync(installer);
    if (KERNEL) fs.copyFileSync(path.join('/boot', KERNEL), path.join(installer, 'vmlinuz'));
    fs.writeFileSync(path.join(installer, 'initrd.img'), markerInitramfs());
    lab.network(MAC, `${SERVER}/24`);
    execFileSync('ip', ['-n', lab.machineNs, 'link', 'set', 'eth0', 'up']); // carrier on the server's side
    lab.serve(
      [
        cradleBin,
        'server',
        '--db',
        db,
        '--interface',
        'srv0',
        '--address',
        SERVER,
        '--installer-dir',
        installer,
        '--kernel-args',
        'console=ttyS0 quiet panic=-1',
      ],
      path.join(work, 'server.log'),
    );
    await waitForHttp(lab.serverNs, `http://${SERVER}:6977/api/v1/machines`).catch((err: Error) => {
      throw new Error(`${err.message}; server log:\n${fs.readFileSync(path.join(work, 'server.log'), 'utf8')}`);
    });
  });
  after(() => {
    lab?.cleanup();
    if (work) removeWorkDir(work);
  });

  test('DHCP: the reserved address, host name and options reach busybox udhcpc', () => {
    const script = path.join(work, 'udhcpc.sh');
    fs.writeFileSync(
      script,
      '#!/bin/sh\n[ "$1" = bound ] && echo "ip=$ip subnet=$subnet router=$router dns=$dns hostname=$hostname domain=$domain siaddr=$siaddr"\nexit 0\n',
      { mode: 0o755 },
    );
    inClient('ip', ['link', 'set', 'eth0', 'up']);
    const out = inClient('busybox', ['udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '2', '-s', script]);
    assert.match(
      out,
      /ip=10\.88\.0\.2 subnet=255\.255\.255\.0 router=10\.88\.0\.1 dns=10\.88\.0\.1 hostname=hyper0 domain=lab\.test siaddr=10\.88\.0\.1/,
    );
  });

  test("TFTP: the machine's own configuration files, by its address; iPXE binaries", () => {
    inClient('ip', ['address', 'replace', '10.88.0.2/24', 'dev', 'eth0']);
    const config = JSON.parse(inClient('curl', ['-sf', `tftp://${SERVER}/config.json`]));
    assert.equal(config.Machine.Hostname, 'hyper0');
    assert.equal(config.Machine.HostMacAddress, MAC);
    assert.equal(inClient('curl', ['-sf', `tftp://${SERVER}/imagename`]), 'debian/v1\n');
    assert.equal(inClient('curl', ['-sf', `tftp://${SERVER}/imageserver`]), `${SERVER}:6971\n`);
    const kpxe = path.join(work, 'undionly.kpxe');
    inClient('curl', ['-sf', '-o', kpxe, `tftp://${SERVER}/undionly.kpxe`]);
    assert.deepEqual(
      fs.readFileSync(kpxe),
      fs.readFileSync('/usr/lib/ipxe/undionly.kpxe'),
      "Debian's iPXE for BIOS PXE chainloading",
    );
    // Debian links ipxe.efi into /boot: UEFI firmware gets it all the same.
    const efi = path.join(work, 'ipxe.efi');
    inClient('curl', ['-sf', '-o', efi, `tftp://${SERVER}/ipxe.efi`]);
    assert.deepEqual(
      fs.readFileSync(efi),
      fs.readFileSync('/usr/lib/ipxe/ipxe.efi'),
      "Debian's iPXE for UEFI PXE chainloading",
    );
    assert.throws(
      () => inClient('curl', ['-sf', `tftp://${SERVER}/../../etc/passwd`]),
      'nothing else of the file system',
    );
  });

  test('HTTP: iPXE script and configuration by MAC; progress events and the report move the state', async () => {
    const url = `http://${SERVER}:6977`;
    assert.match(
      inClient('curl', ['-sf', `${url}/boot/${MAC}.ipxe`]),
      /^kernel http:\/\/10\.88\.0\.1:6977\/installer\/vmlinuz .*cradle\.configuration-base-url=http:\/\/10\.88\.0\.1:6977\/config\/de:ad:be:ef:00:01/m,
    );
    assert.equal(inClient('curl', ['-sf', `${url}/config/${MAC}/imagename?mac=${MAC}`]), 'debian/v1\n');
    // Dominator's fleet manager's path and lookups: an installer's -configurationBaseUrl=http://HOST:6977/tftpdata.
    for (const query of [`mac=00:00:00:00:00:09&mac=${MAC}&serial_number=X1`, 'hostname=hyper0', 'ip=10.88.0.2'])
      assert.equal(inClient('curl', ['-sf', `${url}/tftpdata/imagename?${query}`]), 'debian/v1\n', query);
    assert.equal(
      JSON.parse(inClient('curl', ['-sf', `${url}/tftpdata/config.json?hostname=hyper0`])).Machine.Hostname,
      'hyper0',
    );
    assert.match(
      inClient('curl', ['-s', `${url}/tftpdata/imagename?hostname=nobody`]),
      /no machine has MAC \(none given\)/,
    );
    // Each `mac` is a database look-up: a request may give no more than a machine has interfaces.
    const macs = Array.from({ length: 65 }, (_, i) => `mac=00:00:00:00:01:${i.toString(16).padStart(2, '0')}`);
    assert.match(
      inClient('curl', ['-s', `${url}/tftpdata/imagename?${macs.join('&')}`]),
      /65 'mac' parameters: give at most 64/,
    );
    const post = (p: string, body: unknown) =>
      inClient('curl', [
        '-sf',
        '-X',
        'POST',
        '-H',
        'content-type: application/json',
        '--data-binary',
        JSON.stringify(body),
        `${url}${p}`,
      ]);
    const now = new Date().toISOString();
    post('/api/v1/installer/events', {
      machine: { macs: [MAC], hostname: 'hyper0' },
      events: [
        { seq: 0, time: now, type: 'phase', phase: 'clock', state: 'started' },
        { seq: 1, time: now, type: 'progress', phase: 'tools', bytesDone: 50, bytesTotal: 100, etaSeconds: 3 },
      ],
    });
    let show = JSON.parse(inClient('curl', ['-sf', `${url}/api/v1/machines/hyper0`]));
    assert.equal(show.machine.state, 'installing');
    assert.equal(show.progress.bytesDone, 50);
    post('/api/v1/installer/events', {
      machine: { macs: [MAC] },
      events: [{ seq: 2, time: now, type: 'result', ok: true, phaseSeconds: {}, seconds: 9 }],
    });
    assert.match(
      inClient('curl', ['-sf', `${url}/boot/${MAC}.ipxe`]),
      /^exit$/m,
      'installed: the next boot is from the disk',
    );
    assert.equal(JSON.parse(post('/api/v1/report', { mac: MAC })).state, 'healthy');
    show = JSON.parse(inClient('curl', ['-sf', `${url}/api/v1/machines/hyper0`]));
    assert.deepEqual(
      show.history.map((h: { to: string }) => h.to),
      ['birth', 'installing', 'healthy'].slice(show.history.length === 3 ? 0 : 1),
    );
    // An installed machine is never sent back to the installer by an event, and only the machine
    // itself may post events or report.
    post('/api/v1/installer/events', {
      machine: { macs: [MAC] },
      events: [{ seq: 0, time: now, type: 'phase', phase: 'clock', state: 'started' }],
    });
    assert.equal(JSON.parse(inClient('curl', ['-sf', `${url}/api/v1/machines/hyper0`])).machine.state, 'healthy');
    const forged = inServer('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      'POST',
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify({ machine: { macs: [MAC] }, events: [{ seq: 0, time: now, type: 'result', ok: false }] }),
      `${url}/api/v1/installer/events`,
    ]);
    assert.equal(forged, '403');
    const bad = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        lab.machineNs,
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'POST',
        '--data-binary',
        '{"machine": {}}',
        `${url}/api/v1/installer/events`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(bad.stdout, '400');
    cradle('machine', 'set-state', 'hyper0', 'birth', '--db', db, '--reason', 'PXE test');
  });

  test('a QEMU guest network-boots through our DHCP and HTTP into the installer kernel', {
    skip: !haveQemu && 'needs qemu-system-x86, ipxe-qemu and a kernel in /boot',
    timeout: 180_000,
  }, async () => {
    // The guest's NIC is a tap on a bridge in the server namespace; the bridge holds the server address.
    inServer('ip', ['link', 'add', 'br0', 'type', 'bridge']);
    inServer('ip', ['link', 'set', 'srv0', 'master', 'br0']);
    inServer('ip', ['address', 'flush', 'dev', 'srv0']);
    inServer('ip', ['address', 'add', `${SERVER}/24`, 'dev', 'br0']);
    inServer('ip', ['tuntap', 'add', 'dev', 'tap0', 'mode', 'tap']);
    inServer('ip', ['link', 'set', 'tap0', 'master', 'br0']);
    for (const dev of ['br0', 'tap0']) inServer('ip', ['link', 'set', dev, 'up']);
    // iPXE waits 13 s for IPv6 autoconfiguration unless a router advertises: dnsmasq does only that
    // here (no DHCPv4, no DHCPv6, no DNS).
    inServer('ip', ['address', 'add', 'fd88::1/64', 'dev', 'br0']);
    cradle(
      'machine',
      'add',
      'vm0',
      '--db',
      db,
      '--mac',
      '52:54:00:c0:ff:ee',
      '--ip',
      '10.88.0.3',
      '--subnet',
      'lab',
      '--state',
      'birth',
    );
    // The bridge has carrier once its port to the client namespace forwards.
    for (let i = 0; i < 50 && inServer('cat', ['/sys/class/net/br0/operstate']).trim() !== 'up'; i++)
      await new Promise((r) => setTimeout(r, 100));
    // The server listens on srv0: move it to br0 by restarting it there.
    await lab.stopServers();
    lab.serve(
      [
        cradleBin,
        'server',
        '--db',
        db,
        '--interface',
        'br0',
        '--address',
        SERVER,
        '--installer-dir',
        path.join(work, 'installer'),
        '--kernel-args',
        'console=ttyS0 quiet panic=-1',
      ],
      path.join(work, 'server2.log'),
    );
    await waitForHttp(lab.serverNs, `http://${SERVER}:6977/api/v1/machines`).catch((err: Error) => {
      throw new Error(`${err.message}; server log:\n${fs.readFileSync(path.join(work, 'server2.log'), 'utf8')}`);
    });
    lab.serve(
      [
        'dnsmasq',
        '--keep-in-foreground',
        '--no-daemon',
        '--user=root',
        '--conf-file=/dev/null',
        '--port=0',
        '--interface=br0',
        '--bind-interfaces',
        '--enable-ra',
        '--dhcp-range=::,constructor:br0,ra-only',
        `--pid-file=${path.join(work, 'ra.pid')}`,
        '--log-facility=-',
      ],
      path.join(work, 'ra.log'),
    );
    const serial = path.join(work, 'serial.log');
    const qemu = spawn(
      'ip',
      [
        'netns',
        'exec',
        lab.serverNs,
        'qemu-system-x86_64',
        '-accel',
        'tcg,thread=multi',
        '-smp',
        '2',
        '-m',
        '512',
        '-nographic',
        '-no-reboot',
        '-boot',
        'n',
        '-netdev',
        'tap,id=n0,ifname=tap0,script=no,downscript=no',
        '-device',
        'virtio-net-pci,netdev=n0,mac=52:54:00:c0:ff:ee',
        '-serial',
        `file:${serial}`,
        '-monitor',
        'none',
        '-display',
        'none',
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((r) => qemu.on('exit', r));
    const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 150_000))]);
    if (done === 'timeout') qemu.kill('SIGKILL');
    const out = fs.readFileSync(serial, 'latin1');
    assert.match(
      out,
      new RegExp(
        `${MARKER} cmdline=.*cradle\\.configuration-base-url=http://10\\.88\\.0\\.1:6977/config/52:54:00:c0:ff:ee`,
      ),
      out.slice(-3000),
    );
    const log = fs.readFileSync(path.join(work, 'server2.log'), 'utf8');
    assert.match(log, /DISCOVER from 52:54:00:c0:ff:ee \(vm0, birth\): OFFER 10\.88\.0\.3/);
    assert.match(log, /GET \/boot\/52(:|%3A)54(:|%3A)00(:|%3A)c0(:|%3A)ff(:|%3A)ee\.ipxe 200/);
    assert.match(log, /GET \/installer\/initrd\.img 200/);
  });
});
