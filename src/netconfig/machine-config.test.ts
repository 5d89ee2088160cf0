// config.json as Dominator's parser reads it: every field of GetMachineInfoResponse, Machine,
// MachineData, NetworkEntry and Subnet, in Dominator's encodings (Go's nil IP as "", MACs in Go's
// spellings, ArchitectureType as text or number), and Dominator's README example as it is.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseHardwareAddress, parseMachineConfig, parseMachineConfigWithNotes } from './machine-config.ts';

const testdata = (name: string) => fs.readFileSync(path.join(import.meta.dirname, 'testdata', name), 'utf8');

describe('config.json as Dominator writes it', () => {
  it("accepts Dominator's README example unchanged, noting the fields only fleet tools use", () => {
    const { config, notes } = parseMachineConfigWithNotes(testdata('dominator-readme-config.json'));
    assert.equal(config.Machine.Hostname, 'hyper0');
    assert.equal(config.Machine.IPMI?.HostMacAddress, 'de:ad:be:ef:00:00');
    assert.deepEqual(
      config.Subnets.map((s) => [s.Id, s.VlanId]),
      [
        ['Dev', 100],
        ['Hypervisors', undefined],
        ['Prod', 120],
      ],
    );
    assert.deepEqual(notes, [
      "config.json: Machine.IPMI, Machine.Tags: for fleet tools; the installer does not use them (as Dominator's does not)",
    ]);
  });

  it("accepts every field of Dominator's types", () => {
    const entry = {
      Hostname: 'h',
      HostIpAddress: '10.0.0.2',
      HostMacAddress: 'de:ad:be:ef:00:02',
      SubnetId: 'A',
      VlanTrunk: true,
    };
    const text = JSON.stringify({
      Error: '',
      Location: 'site/rack1',
      Machine: {
        ArchitectureType: 'arm64',
        MemoryInMiB: 65536,
        NumCPUs: 32,
        TotalVolumeBytes: 4e12,
        ...entry,
        GatewaySubnetId: 'A',
        IPMI: { Hostname: 'h-ipmi', HostIpAddress: '10.0.1.2', HostMacAddress: 'de:ad:be:ef:00:03', SubnetId: 'B' },
        Location: 'site/rack1',
        OwnerGroups: ['ops'],
        OwnerUsers: ['alice'],
        SecondaryNetworkEntries: [entry, { HostIpAddress: '10.0.2.2', SubnetId: 'C' }],
        Tags: { RequiredImage: 'debian/12' },
      },
      Subnets: [
        {
          Id: 'A',
          IpGateway: '10.0.0.1',
          IpMask: '255.255.255.0',
          DomainName: 'a.example',
          DomainNameServers: ['10.0.0.53'],
          DisableMetadata: true,
          Manage: true,
          VlanId: 10,
          AllowedGroups: ['ops'],
          AllowedUsers: ['alice'],
          FirstDynamicIP: '10.0.0.100',
          LastDynamicIP: '10.0.0.200',
          Tags: { Zone: 'a' },
        },
      ],
    });
    const { config, notes } = parseMachineConfigWithNotes(text);
    assert.deepEqual(notes, [
      'config.json: Location, Machine.ArchitectureType, Machine.MemoryInMiB, Machine.NumCPUs, Machine.TotalVolumeBytes, ' +
        'Machine.IPMI, Machine.Location, Machine.OwnerGroups, Machine.OwnerUsers, Machine.Tags, ' +
        'Subnets[].DisableMetadata, Subnets[].AllowedGroups, Subnets[].AllowedUsers, Subnets[].FirstDynamicIP, ' +
        "Subnets[].LastDynamicIP, Subnets[].Tags: for fleet tools; the installer does not use them (as Dominator's does not)",
    ]);
    assert.equal(config.Machine.ArchitectureType, 'arm64');
    assert.equal(config.Machine.SecondaryNetworkEntries?.[1].SubnetId, 'C');
    assert.equal(config.Subnets[0].FirstDynamicIP, '10.0.0.100');
    assert.equal(config.Subnets[0].DisableMetadata, true);
  });

  it("reads Go's encodings: empty IPs and MACs, null as absent, ArchitectureType as a number", () => {
    const c = parseMachineConfig(
      JSON.stringify({
        Location: null,
        Machine: { Hostname: 'h', HostIpAddress: '', HostMacAddress: '', IPMI: {}, ArchitectureType: 1, Tags: null },
        Subnets: [{ Id: 'A', IpGateway: '10.0.0.1', IpMask: '255.0.0.0', DomainNameServers: null, FirstDynamicIP: '' }],
      }),
    );
    assert.equal(c.Machine.HostIpAddress, undefined);
    assert.equal(c.Machine.HostMacAddress, undefined);
    assert.equal(c.Machine.ArchitectureType, 'amd64');
    assert.equal(c.Machine.Tags, undefined);
    assert.equal(c.Subnets[0].DomainNameServers, undefined);
    assert.equal(c.Subnets[0].FirstDynamicIP, undefined);
    assert.deepEqual(parseMachineConfig('{"Machine": {}, "Subnets": null}').Subnets, []);
    assert.throws(
      () => parseMachineConfig('{"Machine": {"ArchitectureType": "x86"}}'),
      /field 'Machine\.ArchitectureType' is invalid: '"x86"' is not an architecture: use auto, amd64 or arm64/,
    );
  });

  it('reads MACs as Dominator does: lower-cased, 1-2 hex digits a group, else Go’s ParseMAC', () => {
    const cases: [string, string | undefined][] = [
      ['de:ad:be:ef:0:1', 'de:ad:be:ef:00:01'],
      ['DE:AD:BE:EF:0:1', 'de:ad:be:ef:00:01'],
      ['DE-AD-BE-EF-00-01', 'de:ad:be:ef:00:01'],
      ['dead.beef.0001', 'de:ad:be:ef:00:01'],
      ['02:00:5e:10:00:00:00:01', '02:00:5e:10:00:00:00:01'],
      ['de:ad-be:ef:00:01', undefined],
      ['de-ad-be-ef-0-1', undefined],
      ['de:ad:be:ef:00', undefined],
      ['de:ad:be:ef:00:1g', undefined],
      ['deadbeef0001', undefined],
    ];
    for (const [text, want] of cases) assert.equal(parseHardwareAddress(text), want, text);
    assert.equal(
      parseMachineConfig('{"Machine": {"HostMacAddress": "DE:AD:BE:EF:0:1"}}').Machine.HostMacAddress,
      'de:ad:be:ef:00:01',
    );
    assert.throws(
      () => parseMachineConfig('{"Machine": {"SecondaryNetworkEntries": [{"HostMacAddress": "nope"}]}}'),
      /field 'Machine\.SecondaryNetworkEntries\.0\.HostMacAddress' is invalid: expected a MAC address such as de:ad:be:ef:00:01, not 'nope'/,
    );
  });

  it('keeps keys that are no field of Dominator’s and notes them, with a server’s Error', () => {
    const { config, notes } = parseMachineConfigWithNotes(
      JSON.stringify({
        Error: 'no such machine',
        Machine: { Hostnme: 'h', IPMI: { Mac: 'x' }, SecondaryNetworkEntries: [{ Vlan: 3 }] },
        Subnets: [{ Id: 'A', IpGateway: '10.0.0.1', IpMask: '255.0.0.0', Gateway: '10.0.0.1' }],
      }),
      'c.json',
    );
    assert.equal(config.Machine.Hostnme, 'h');
    assert.deepEqual(notes, [
      "c.json: field 'Machine.Hostnme' is not one of Dominator's (GetMachineInfoResponse): ignored",
      "c.json: field 'Machine.IPMI.Mac' is not one of Dominator's (GetMachineInfoResponse): ignored",
      "c.json: field 'Machine.SecondaryNetworkEntries.0.Vlan' is not one of Dominator's (GetMachineInfoResponse): ignored",
      "c.json: field 'Subnets.0.Gateway' is not one of Dominator's (GetMachineInfoResponse): ignored",
      "c.json: field 'Error' says the server that wrote it failed ('no such machine'): ignored",
      "c.json: Machine.IPMI: for fleet tools; the installer does not use them (as Dominator's does not)",
    ]);
  });
});
