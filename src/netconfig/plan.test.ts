// Golden cases: Dominator's example config.json with one, two and three links up renders exactly
// the Debian files Dominator's installer writes for it, kept in testdata/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderInterfaces, renderResolvConf, renderHostname } from './ifupdown.ts';
import { prefixLength, renderNetworkd } from './networkd.ts';
import { parseMachineConfig, type MachineConfig } from './machine-config.ts';
import { planNetwork, type LinkInfo } from './plan.ts';

const testdata = path.join(import.meta.dirname, 'testdata');
const golden = (name: string) => fs.readFileSync(path.join(testdata, name), 'utf8');
const seed = () => parseMachineConfig(golden('seed-config.json'), 'seed-config.json');
const links = (up: number): LinkInfo[] =>
  ['de:ad:be:ef:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03'].map((mac, i) => ({
    name: `eth${i}`,
    mac,
    up: i < up,
  }));

describe("ifupdown rendering of Dominator's example", () => {
  it('one link up: the primary address only, no trunk, no VLANs or bridges', () => {
    const plan = planNetwork(seed(), links(1));
    assert.equal(renderInterfaces(plan), golden('interfaces-1-link'));
    assert.deepEqual(plan.down, ['eth1', 'eth2']);
  });

  it('two links up: the second is the trunk, with a VLAN and a bridge per managed subnet', () => {
    assert.equal(renderInterfaces(planNetwork(seed(), links(2))), golden('interfaces-2-links'));
  });

  it('three links up: an 802.3ad bond of the two free links carries the VLANs', () => {
    assert.equal(renderInterfaces(planNetwork(seed(), links(3))), golden('interfaces-3-links'));
  });

  it('DNS and hostname come from the subnet holding the primary address', () => {
    const plan = planNetwork(seed(), links(3));
    assert.equal(renderResolvConf(plan.defaultSubnet), golden('resolv.conf'));
    assert.equal(renderHostname('hyper0.hypervisors.company.com'), 'hyper0\n');
  });
});

/** All networkd files of a plan as one text, in name order (the layout of the golden files). */
const networkdText = (files: Map<string, string>) =>
  `${[...files]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([n, t]) => `==> ${n} <==\n${t}`)
    .join('\n')}\n`;

describe("systemd-networkd rendering of Dominator's example", () => {
  for (const [up, file] of [
    [1, 'networkd-1-link'],
    [2, 'networkd-2-links'],
    [3, 'networkd-3-links'],
  ] as const) {
    it(`${up} link(s) up renders the same network as the ifupdown files`, () => {
      assert.equal(networkdText(renderNetworkd(planNetwork(seed(), links(up)))), golden(file));
    });
  }

  it('a VlanTrunk interface keeps its address and carries the VLANs in one file', () => {
    const c = seed();
    const files = renderNetworkd(planNetwork({ ...c, Machine: { ...c.Machine, VlanTrunk: true } }, links(1)));
    assert.match(files.get('40-eth0.network')!, /Address=192\.168\.1\.2\/24\n[^[]*VLAN=eth0\.100\nVLAN=eth0\.120\n$/);
  });

  it('turns masks into prefix lengths', () => {
    assert.equal(prefixLength('255.255.255.0'), 24);
    assert.equal(prefixLength('255.255.252.0'), 22);
    assert.equal(prefixLength('255.255.255.255'), 32);
  });
});

describe('network planning', () => {
  const withEntries = (extra: Partial<MachineConfig['Machine']>): MachineConfig => {
    const c = seed();
    return { ...c, Machine: { ...c.Machine, ...extra } };
  };

  it('GatewaySubnetId overrides which subnet gives the default route', () => {
    const c = withEntries({ GatewaySubnetId: 'Prod', SecondaryNetworkEntries: [{ HostIpAddress: '192.168.120.7' }] });
    const plan = planNetwork(c, links(2));
    assert.equal(plan.defaultSubnet?.Id, 'Prod');
    assert.deepEqual(
      plan.vlanAddresses.map((v) => `${v.vid} ${v.ip}`),
      ['120 192.168.120.7'],
    );
    assert.deepEqual(plan.bridgedVlans, [100], 'a subnet with an address gets no extra bridge');
    assert.match(
      renderInterfaces(plan),
      /auto eth1\.120\niface eth1\.120 inet static\n\tvlan-raw-device eth1\n\taddress 192\.168\.120\.7\n\tnetmask 255\.255\.255\.0\n\tgateway 192\.168\.120\.1\n/,
    );
    assert.doesNotMatch(renderInterfaces(plan), /gateway {6}192\.168\.1\.1/, 'only the default subnet gets a gateway');
  });

  it("a VlanTrunk interface plus one more live link: no slave-less bond (Dominator's bug)", () => {
    const plan = planNetwork(withEntries({ VlanTrunk: true }), links(2));
    assert.deepEqual(plan.trunk, { raw: 'eth0', slaves: [], configured: true });
    const text = renderInterfaces(plan);
    assert.doesNotMatch(text, /bond0/);
    assert.match(text, /auto eth0\.100\niface eth0\.100 inet manual\n\tvlan-raw-device eth0\n/);
    assert.match(plan.warnings.join('\n'), /links eth1 are up but not used: eth0 is the VLAN trunk/);
  });

  it('bridge-only entries become br@<SubnetId>, and bad ones are refused by name', () => {
    const ok = planNetwork(
      withEntries({ SecondaryNetworkEntries: [{ HostMacAddress: '52:54:00:00:00:03', SubnetId: 'Dev' }] }),
      links(3),
    );
    assert.match(
      renderInterfaces(ok),
      /auto br@Dev\niface br@Dev inet manual\n\thwaddress {4}52:54:00:00:00:03\n\tbridge_ports eth2\n/,
    );
    assert.deepEqual(
      ok.trunk,
      { raw: 'eth1', slaves: [], configured: false },
      'the bridged link leaves the trunk pool',
    );
    const bad = (entry: Record<string, string>, message: RegExp) =>
      assert.throws(() => planNetwork(withEntries({ SecondaryNetworkEntries: [entry] }), links(3)), message);
    bad(
      { HostMacAddress: '52:54:00:00:00:09', SubnetId: 'Dev' },
      /MAC address 52:54:00:00:00:09 .* matches no interface/,
    );
    bad({ HostMacAddress: '52:54:00:00:00:03', SubnetId: 'Nope' }, /subnetId Nope .* names no subnet/);
    bad({ HostMacAddress: '52:54:00:00:00:03', SubnetId: 'Hypervisors' }, /subnet Hypervisors is not managed/);
  });

  it('config.json errors name the field and what it should be; MACs are normalised', () => {
    assert.throws(
      () => parseMachineConfig('{"Machine": {"HostIpAddress": "192.168.1.300"}}'),
      /config\.json: field 'Machine\.HostIpAddress' is invalid: expected a dotted IPv4 address/,
    );
    assert.throws(
      () => parseMachineConfig('{"Machine": {}, "Subnets": [{"Id": "x", "IpGateway": "10.0.0.1"}]}'),
      /field 'Subnets\.0\.IpMask'/,
    );
    assert.throws(() => parseMachineConfig('{nope'), /config\.json is not valid JSON/);
    assert.equal(
      parseMachineConfig('{"Machine": {"HostMacAddress": "DE:AD:BE:EF:0:1"}}').Machine.HostMacAddress,
      'de:ad:be:ef:00:01',
    );
  });
});
