// Renders a network plan for systemd-networkd: .netdev files create bonds, VLANs and bridges,
// .network files attach and address them. The same plan as ifupdown.ts, for images that carry
// systemd-networkd instead of ifupdown. Files are returned by name, for /etc/systemd/network/.
import type { Subnet } from './machine-config.ts';
import type { NetworkPlan } from './plan.ts';

export type NetworkdFiles = Map<string, string>;

const HEADER = '# written by the Cradle installer\n';

/** 255.255.255.0 -> 24. */
export function prefixLength(mask: string): number {
  return mask.split('.').reduce((n, part) => n + (Number(part).toString(2).match(/1/g)?.length ?? 0), 0);
}

function unit(sections: [string, string[]][]): string {
  return HEADER + sections.map(([name, lines]) => `\n[${name}]\n${lines.join('\n')}\n`).join('');
}

function addressLines(ip: string, subnet: Subnet, defaultSubnet: Subnet | undefined): string[] {
  const lines = [`Address=${ip}/${prefixLength(subnet.IpMask)}`];
  if (defaultSubnet && subnet.IpGateway === defaultSubnet.IpGateway) {
    lines.push(`Gateway=${subnet.IpGateway}`);
    for (const ns of subnet.DomainNameServers ?? []) lines.push(`DNS=${ns}`);
    if (subnet.DomainName) lines.push(`Domains=${subnet.DomainName}`);
  }
  return lines;
}

export function renderNetworkd(plan: NetworkPlan): NetworkdFiles {
  const files: NetworkdFiles = new Map();
  const def = plan.defaultSubnet;
  const bridge = (name: string, mac?: string) =>
    files.set(
      `20-${name}.netdev`,
      unit([['NetDev', [`Name=${name}`, 'Kind=bridge', ...(mac ? [`MACAddress=${mac}`] : [])]]]),
    );
  const enslave = (ifname: string, key: 'Bridge' | 'Bond', master: string) =>
    files.set(
      `30-${ifname}.network`,
      unit([
        ['Match', [`Name=${ifname}`]],
        ['Network', [`${key}=${master}`]],
      ]),
    );
  const bare = ['LinkLocalAddressing=no', 'ConfigureWithoutCarrier=yes'];

  for (const s of plan.statics) {
    if (s.subnet.Manage) {
      const br = `br${s.subnet.VlanId ?? 0}`;
      bridge(br, s.mac);
      enslave(s.ifname, 'Bridge', br);
      files.set(
        `40-${br}.network`,
        unit([
          ['Match', [`Name=${br}`]],
          ['Network', addressLines(s.ip, s.subnet, def)],
        ]),
      );
    } else {
      files.set(
        `40-${s.ifname}.network`,
        unit([
          ['Match', [`Name=${s.ifname}`]],
          ['Network', addressLines(s.ip, s.subnet, def)],
        ]),
      );
    }
  }
  for (const d of plan.dhcp)
    files.set(
      `40-${d.ifname}.network`,
      unit([
        ['Match', [`Name=${d.ifname}`]],
        ['Network', ['DHCP=ipv4']],
      ]),
    );
  for (const b of plan.bridgeOnly) {
    const br = `br@${b.subnet.Id}`;
    bridge(br, b.mac);
    enslave(b.ifname, 'Bridge', br);
    files.set(
      `40-${br}.network`,
      unit([
        ['Match', [`Name=${br}`]],
        ['Network', bare],
      ]),
    );
  }
  const trunk = plan.trunk;
  if (!trunk) return files;
  if (trunk.slaves.length >= 2) {
    // 802.3ad with layer3+4 hashing and jumbo frames, as Dominator's ifupdown stanza asks.
    files.set(
      `10-${trunk.raw}.netdev`,
      unit([
        ['NetDev', [`Name=${trunk.raw}`, 'Kind=bond', 'MTUBytes=9000']],
        ['Bond', ['Mode=802.3ad', 'TransmitHashPolicy=layer3+4']],
      ]),
    );
    for (const slave of trunk.slaves) enslave(slave, 'Bond', trunk.raw);
  }
  const vids = [...plan.vlanAddresses.map((v) => v.vid), ...plan.bridgedVlans];
  for (const vid of vids)
    files.set(
      `20-${trunk.raw}.${vid}.netdev`,
      unit([
        ['NetDev', [`Name=${trunk.raw}.${vid}`, 'Kind=vlan']],
        ['VLAN', [`Id=${vid}`]],
      ]),
    );
  // The raw device carries the VLANs. A VlanTrunk interface has its own address file already:
  // the VLAN lines are added to it rather than written twice.
  const vlanLines = vids.map((vid) => `VLAN=${trunk.raw}.${vid}`);
  const rawFile = `40-${trunk.raw}.network`;
  const existing = files.get(rawFile);
  if (existing) files.set(rawFile, existing.replace(/\n$/, `\n${vlanLines.join('\n')}\n`));
  else
    files.set(
      rawFile,
      unit([
        ['Match', [`Name=${trunk.raw}`]],
        ['Network', [...vlanLines, ...bare]],
      ]),
    );
  for (const v of plan.vlanAddresses) {
    files.set(
      `50-${trunk.raw}.${v.vid}.network`,
      unit([
        ['Match', [`Name=${trunk.raw}.${v.vid}`]],
        ['Network', addressLines(v.ip, v.subnet, def)],
      ]),
    );
  }
  for (const vid of plan.bridgedVlans) {
    bridge(`br${vid}`);
    files.set(
      `50-${trunk.raw}.${vid}.network`,
      unit([
        ['Match', [`Name=${trunk.raw}.${vid}`]],
        ['Network', [`Bridge=br${vid}`]],
      ]),
    );
    files.set(
      `60-br${vid}.network`,
      unit([
        ['Match', [`Name=br${vid}`]],
        ['Network', bare],
      ]),
    );
  }
  return files;
}
