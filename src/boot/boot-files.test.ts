// Golden cases for what a machine gets at boot: the iPXE script by state, and Dominator's
// configuration files generated from the database (config.json must parse with the installer's
// own schema, so the two sides cannot drift apart).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Machine, NodeGroup, Subnet } from '../inventory/types.ts';
import { parseMachineConfig } from '../netconfig/machine-config.ts';
import { parseStorageLayout } from '../storage/layout.ts';
import { configFile, type BootSettings } from './config-files.ts';
import { ipxeScript } from './ipxe.ts';

const machine: Machine = {
  hostname: 'hyper0',
  macs: ['de:ad:be:ef:00:01', 'de:ad:be:ef:00:02'],
  ip: '192.168.1.2',
  subnetId: 'Hypervisors',
  ipmi: { hostname: 'hyper0-ipmi', ip: '192.168.0.2', mac: 'de:ad:be:ef:00:00' },
  tags: { RequiredImage: 'hypervisor/2024-01-18:22:57:43', Type: 'SuperMicro Ultra' },
  state: 'birth',
  stateChangedAt: '2026-11-22T00:00:00.000Z',
  createdAt: '2026-11-22T00:00:00.000Z',
};
const subnets: Subnet[] = [
  {
    id: 'Dev',
    gateway: '192.168.100.1',
    mask: '255.255.255.0',
    domainName: 'dev.company.com',
    dnsServers: ['192.168.1.53', '8.8.8.8'],
    manage: true,
    vlanId: 100,
  },
  {
    id: 'Hypervisors',
    gateway: '192.168.1.1',
    mask: '255.255.255.0',
    domainName: 'hypervisors.company.com',
    dnsServers: ['192.168.1.53', '8.8.8.8'],
    manage: false,
  },
];
const settings: BootSettings = {
  imageServer: '192.168.1.1:6971',
  bootServerUrl: 'http://192.168.1.1:6977',
  defaultLayout: { BootDriveLayout: [{ MountPoint: '/', MinimumFreeBytes: 2147483648 }], Encrypt: true },
};
const ipxe = { baseUrl: 'http://192.168.1.1:6977', kernelArgs: 'console=ttyS0,115200n8' };

function golden(name: string, actual: string): void {
  const file = path.join(import.meta.dirname, 'testdata', name);
  if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs (UPDATE_GOLDEN=1 rewrites it after review)`);
}

describe('configuration files for a machine', () => {
  it("config.json is Dominator's format and passes the installer's schema", () => {
    const text = configFile('config.json', machine, subnets, settings)!;
    golden('config.json', text);
    const parsed = parseMachineConfig(text);
    assert.equal(parsed.Machine.HostMacAddress, 'de:ad:be:ef:00:01');
    assert.equal(parsed.Subnets[1].Id, 'Hypervisors');
  });
  it('a machine without an address gets none written (the server first makes its lease its own)', () => {
    const text = configFile('config.json', { ...machine, ip: undefined }, subnets, settings)!;
    assert.equal(parseMachineConfig(text).Machine.HostIpAddress, undefined);
  });
  it('the small files, and the default layout valid for the installer', () => {
    assert.equal(configFile('imagename', machine, subnets, settings), 'hypervisor/2024-01-18:22:57:43\n');
    assert.equal(configFile('imagename', { ...machine, tags: {} }, subnets, settings), undefined);
    assert.equal(
      configFile('imagename', { ...machine, tags: {} }, subnets, { ...settings, defaultImage: 'debian' }),
      'debian\n',
    );
    assert.equal(configFile('imageserver', machine, subnets, settings), '192.168.1.1:6971\n');
    assert.equal(configFile('bootserver', machine, subnets, settings), 'http://192.168.1.1:6977\n');
    assert.equal(configFile('tools-imagename', machine, subnets, settings), undefined);
    assert.equal(parseStorageLayout(configFile('storage-layout.json', machine, subnets, settings)!).Encrypt, true);
  });
});

describe('a machine in a node group', () => {
  const group: NodeGroup = {
    name: 'compute',
    description: '',
    osKit: { name: 'debian', version: '12.8-1', digest: `sha256:${'a'.repeat(64)}` },
    components: [],
    storageLayout: { BootDriveLayout: [{ MountPoint: '/', MinimumFreeBytes: 1073741824 }], Encrypt: false },
    installerFlags: ['failure-wait=60', 'skip-network'],
    createdAt: '2026-12-06T00:00:00.000Z',
    updatedAt: '2026-12-06T00:00:00.000Z',
  };
  const member: Machine = { ...machine, tags: {}, nodeGroup: 'compute' };
  it("installs its group's newest image and takes its layout, unless it names its own", () => {
    const withDefault = { ...settings, defaultImage: 'debian' };
    assert.equal(configFile('imagename', member, subnets, withDefault, group), 'nodegroup/compute\n');
    assert.equal(
      configFile('imagename', { ...member, tags: { RequiredImage: 'mine/1' } }, subnets, withDefault, group),
      'mine/1\n',
    );
    assert.equal(
      parseStorageLayout(configFile('storage-layout.json', member, subnets, settings, group)!).Encrypt,
      false,
    );
    const own = { ...member, storageLayout: { ...settings.defaultLayout, Encrypt: true } };
    assert.equal(parseStorageLayout(configFile('storage-layout.json', own, subnets, settings, group)!).Encrypt, true);
  });
  it("boots the installer with its group's installer flags", () => {
    const script = ipxeScript(member.macs[0], member, ipxe, group);
    assert.match(script, /^kernel .* console=ttyS0,115200n8 cradle\.failure-wait=60 cradle\.skip-network$/m);
  });
});

describe('iPXE scripts', () => {
  it('machines to (re)install boot the installer, told where their configuration is', () => {
    // Both stages of the image, in order; an image of one initrd (built before the second stage) alone.
    golden('birth.ipxe', ipxeScript(machine.macs[0], machine, { ...ipxe, initrds: ['initrd.img', 'stage2.img'] }));
    assert.deepEqual(
      ipxeScript(machine.macs[0], machine, ipxe)
        .split('\n')
        .filter((l) => /^initrd |initrd=/.test(l))
        .map((l) => l.match(/initrd[ =]\S+/g)),
      [['initrd=initrd.img'], ['initrd http://192.168.1.1:6977/installer/initrd.img']],
    );
    for (const state of ['rebirth', 'clean', 'installing'] as const)
      assert.match(
        ipxeScript(machine.macs[0], { ...machine, state }, ipxe),
        /^kernel http:\/\/192\.168\.1\.1:6977\/installer\/vmlinuz /m,
      );
  });
  it('installed and unknown machines boot from their disk', () => {
    golden('healthy.ipxe', ipxeScript(machine.macs[0], { ...machine, state: 'healthy' }, ipxe));
    assert.match(ipxeScript('aa:bb:cc:dd:ee:ff', undefined, ipxe), /^exit$/m);
    assert.match(ipxeScript(machine.macs[0], { ...machine, state: 'unknown' }, ipxe), /^exit$/m);
    assert.match(
      ipxeScript(machine.macs[0], { ...machine, state: 'failed' }, ipxe),
      /^exit$/m,
      'a failed install is not retried without an operator',
    );
  });
});
