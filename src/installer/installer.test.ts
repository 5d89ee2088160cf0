// The installer's pure decisions: TFTP server precedence, kernel command line, host names, the
// clock, flag files, configuration validation, interface discovery and name pinning.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { renderLinkFiles, renderUdevRules } from '../netconfig/pinning.ts';
import { listEthernetInterfaces } from './interfaces.ts';
import { ConfigurationError, configurationNotes, readConfiguration } from './load-configuration.ts';
import { chooseTftpServer, kernelArgs, validHostname } from './local-network.ts';
import { clockCorrection } from './update-clock.ts';
import { decodeBase64 } from './debug-commands.ts';
import { PassThrough, Readable } from 'node:stream';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-installer-unit-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const seedConfig = fs.readFileSync(path.join(import.meta.dirname, '../netconfig/testdata/seed-config.json'), 'utf8');

describe('TFTP server precedence', () => {
  const cmdline = kernelArgs('console=ttyS0 tftpserver=10.0.0.9 quiet tftpserver=10.0.0.7');
  const lease = { siaddr: '10.0.0.5', tftpServerName: 'boot.example' };
  it('flag, then tftpserver= (last wins), then siaddr, then option 66 as a name', () => {
    assert.equal(chooseTftpServer('10.0.0.1', cmdline, lease), '10.0.0.1');
    assert.equal(chooseTftpServer(undefined, cmdline, lease), '10.0.0.7');
    assert.equal(chooseTftpServer(undefined, new Map(), lease), '10.0.0.5');
    assert.equal(
      chooseTftpServer(undefined, new Map(), { siaddr: '0.0.0.0', tftpServerName: 'boot.example' }),
      'boot.example',
    );
    assert.equal(chooseTftpServer(undefined, new Map(), {}), undefined);
  });
  it('reads only key=value tokens from the kernel command line', () => {
    assert.deepEqual([...kernelArgs('ro quiet a=b=c hostname=node7\n')], [['hostname', 'node7']]);
  });
});

describe('host names', () => {
  it('takes the first label of an FQDN and refuses what sethostname should not get', () => {
    assert.equal(validHostname('Node-7.Rack3.example.com'), 'node-7');
    assert.equal(validHostname('node_7'), undefined);
    assert.equal(validHostname('-bad'), undefined);
    assert.equal(validHostname(''), undefined);
  });
});

describe('clock', () => {
  it('moves the clock forward to the build time only when it is behind', () => {
    assert.equal(clockCorrection(1000, 2000)?.getTime(), 2000);
    assert.equal(clockCorrection(3000, 2000), undefined);
  });
});

describe('configuration files', () => {
  const dir = path.join(work, 'tftpdata');
  const write = (files: Record<string, string>) => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
    for (const [k, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, k), v);
  };
  const layout = '{"BootDriveLayout": [{"MountPoint": "/", "MinimumFreeBytes": 1}]}';
  it("reads and trims the small files, allows Dominator's comment lines in JSON", () => {
    write({
      'config.json': `# from the fleet manager\n${seedConfig}`,
      imagename: 'debian/v1\n',
      imageserver: ' 10.0.0.2:6971 \n',
      'storage-layout.json': layout,
    });
    const c = readConfiguration(dir, true);
    assert.equal(c.imageName, 'debian/v1');
    assert.equal(c.imageServer, '10.0.0.2:6971');
    assert.equal(c.machine.Machine.Hostname, 'hyper0');
    assert.equal(c.layout?.BootDriveLayout[0].MountPoint, '/');
  });
  it('notes, for the log, the fields it accepts but does not use', () => {
    write({
      'config.json': seedConfig,
      imagename: 'debian/v1\n',
      'storage-layout.json':
        '{"BootDriveLayout": [{"MountPoint": "/", "MinimumFreeBytes": 1, "FileSystemType": 0, "ReservedBlocksPercentage": 2, "RootUserId": 0}]}',
    });
    const notes = configurationNotes(readConfiguration(dir, true), dir).join('\n');
    assert.match(notes, /storage-layout\.json: .*ReservedBlocksPercentage/);
    assert.match(notes, /storage-layout\.json: .*RootUserId/);
  });
  const cases: [string, Record<string, string>, RegExp][] = [
    ['no config.json', { imagename: 'x' }, /config\.json is missing/],
    ['config.json not JSON', { 'config.json': '{' }, /config\.json is not valid JSON/],
    [
      'a bad MAC',
      { 'config.json': '{"Machine": {"HostMacAddress": "de:ad"}}' },
      /field 'Machine\.HostMacAddress' is invalid: expected a MAC address/,
    ],
    [
      'no imagename',
      { 'config.json': '{"Machine": {}}', 'storage-layout.json': layout },
      /imagename is missing or empty/,
    ],
    [
      'a bad image name',
      { 'config.json': '{"Machine": {}}', imagename: '../etc', 'storage-layout.json': layout },
      /imagename: /,
    ],
    ['no storage layout', { 'config.json': '{"Machine": {}}', imagename: 'a/b' }, /storage-layout\.json is missing/],
    [
      'a layout field of the wrong type',
      {
        'config.json': '{"Machine": {}}',
        imagename: 'a/b',
        'storage-layout.json': '{"BootDriveLayout": [{"MountPoint": "/", "MinimumFreeBytes": "2G"}]}',
      },
      /BootDriveLayout\.0\.MinimumFreeBytes/,
    ],
  ];
  for (const [name, files, message] of cases) {
    it(`refuses ${name}`, () => {
      write(files);
      assert.throws(
        () => readConfiguration(dir, true),
        (err: Error) => err instanceof Error && message.test(err.message),
      );
    });
  }
  it('needs no image or layout when storage is skipped', () => {
    write({ 'config.json': '{"Machine": {}}' });
    assert.equal(readConfiguration(dir, false).layout, undefined);
  });
  it('is a ConfigurationError for missing files', () => {
    write({});
    assert.throws(() => readConfiguration(dir, true), ConfigurationError);
  });
});

describe('interfaces', () => {
  it('lists Ethernet NICs from sysfs, not bonds, bridges, tun or loopback; pins their names', () => {
    const net = path.join(work, 'sys', 'class', 'net');
    const nic = (name: string, extra: string[] = [], type = '1', device = true) => {
      const dir = path.join(net, name);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'address'), `DE:AD:BE:EF:00:0${name.length}\n`);
      fs.writeFileSync(path.join(dir, 'type'), `${type}\n`);
      for (const f of extra) fs.mkdirSync(path.join(dir, f));
      if (device) {
        fs.mkdirSync(path.join(work, 'pci', `0000:00:0${name.length}.0`), { recursive: true });
        fs.symlinkSync(path.join(work, 'pci', `0000:00:0${name.length}.0`), path.join(dir, 'device'));
      }
    };
    nic('eth0');
    nic('enp3s0');
    nic('lo', [], '772', false);
    nic('bond0', ['bonding'], '1', false);
    nic('tap0', ['tun_flags'], '1', true);
    const found = listEthernetInterfaces(path.join(work, 'sys'));
    assert.deepEqual(
      found.map((i) => [i.name, i.mac, i.busId]),
      [
        ['enp3s0', 'de:ad:be:ef:00:06', '0000:00:06.0'],
        ['eth0', 'de:ad:be:ef:00:04', '0000:00:04.0'],
      ],
    );
    assert.equal(
      renderUdevRules(found),
      '# /etc/udev/rules.d/70-persistent-net.rules -- created by the Cradle installer\n\n' +
        'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{type}=="1", KERNELS=="0000:00:06.0", NAME="enp3s0"\n' +
        'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{type}=="1", KERNELS=="0000:00:04.0", NAME="eth0"\n',
    );
    assert.equal(
      renderLinkFiles(found).get('10-cradle-eth0.link'),
      '# written by the Cradle installer\n[Match]\nMACAddress=de:ad:be:ef:00:04\n\n[Link]\nName=eth0\n',
    );
  });
});

describe('decode-base64', () => {
  it('decodes across chunk boundaries and whitespace; refuses a truncated tail', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const text = Buffer.from('Cradle births machines.').toString('base64');
    await decodeBase64(Readable.from([text.slice(0, 5), '\n', text.slice(5, 11), '  ', text.slice(11)]), out);
    assert.equal(Buffer.concat(chunks).toString(), 'Cradle births machines.');
    await assert.rejects(decodeBase64(Readable.from(['QUJD', 'RA']), new PassThrough()), /truncated/);
  });
});

describe('preflight', () => {
  it('refuses an image with a symlink where a file system is mounted', async () => {
    const { checkMountPoints } = await import('./preflight.ts');
    const meta = { mode: 0o755, uid: 0, gid: 0, mtime: '0.000000000' };
    const manifest = {
      format: 'cradle-image-manifest/1' as const,
      entries: [
        { path: '.', type: 'dir' as const, ...meta },
        { path: 'home', type: 'symlink' as const, target: 'var/home', ...meta },
        { path: 'tmp', type: 'dir' as const, ...meta },
      ],
    };
    assert.throws(
      () => checkMountPoints(manifest, ['/', '/home']),
      /the image has a symlink at \/home, where the installer mounts a file system/,
    );
    assert.doesNotThrow(() => checkMountPoints(manifest, ['/', '/tmp', '/var/log']));
  });
});
