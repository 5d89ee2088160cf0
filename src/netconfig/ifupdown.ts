// Renders a network plan as Debian ifupdown files, in exactly the layout of Dominator's
// installer, marker line included: Dominator's hypervisor updater rewrites only files
// that carry it, so keeping it keeps those machines manageable by it.
import type { Subnet } from './machine-config.ts';
import type { NetworkPlan } from './plan.ts';

const MARKER = 'created by SmallStack installer';

export function renderInterfaces(plan: NetworkPlan): string {
  const stanzas: string[][] = [['auto lo', 'iface lo inet loopback']];
  const gateway = plan.defaultSubnet?.IpGateway;
  for (const s of plan.statics) {
    const managed = !!s.subnet.Manage;
    const name = managed ? `br${s.subnet.VlanId ?? 0}` : s.ifname;
    const lines = [
      `auto ${name}`,
      `iface ${name} inet static`,
      `\taddress      ${s.ip}`,
      `\tnetmask      ${s.subnet.IpMask}`,
    ];
    if (s.subnet.IpGateway === gateway) lines.push(`\tgateway      ${gateway}`);
    if (managed) lines.push(`\thwaddress    ${s.mac}`, `\tbridge_ports ${s.ifname}`);
    stanzas.push(lines);
  }
  for (const d of plan.dhcp) stanzas.push([`auto ${d.ifname}`, `iface ${d.ifname} inet dhcp`]);
  for (const b of plan.bridgeOnly) {
    const name = `br@${b.subnet.Id}`;
    stanzas.push([
      `auto ${name}`,
      `iface ${name} inet manual`,
      `\thwaddress    ${b.mac}`,
      `\tbridge_ports ${b.ifname}`,
    ]);
  }
  const trunk = plan.trunk;
  if (trunk && !trunk.configured) {
    const lines = [`auto ${trunk.raw}`, `iface ${trunk.raw} inet manual`];
    if (trunk.slaves.length >= 2) {
      lines.push(
        `\tup ip link set ${trunk.raw} mtu 9000`,
        '\tbond-mode 802.3ad',
        '\tbond-xmit_hash_policy 1',
        `\tslaves ${trunk.slaves.join(' ')}`,
      );
    }
    stanzas.push(lines);
  }
  if (trunk) {
    for (const v of plan.vlanAddresses) {
      const name = `${trunk.raw}.${v.vid}`;
      const lines = [
        `auto ${name}`,
        `iface ${name} inet static`,
        `\tvlan-raw-device ${trunk.raw}`,
        `\taddress ${v.ip}`,
        `\tnetmask ${v.subnet.IpMask}`,
      ];
      if (v.subnet.IpGateway === gateway) lines.push(`\tgateway ${gateway}`);
      stanzas.push(lines);
    }
    for (const vid of plan.bridgedVlans) {
      const vlan = `${trunk.raw}.${vid}`;
      stanzas.push([`auto ${vlan}`, `iface ${vlan} inet manual`, `\tvlan-raw-device ${trunk.raw}`]);
      stanzas.push([`auto br${vid}`, `iface br${vid} inet manual`, `\tbridge_ports ${vlan}`]);
    }
  }
  return `${[`# /etc/network/interfaces -- ${MARKER}`, ...stanzas.map((s) => ['', ...s].join('\n'))].join('\n')}\n`;
}

/** Where resolv.conf's servers come from: a subnet's domain and name servers. */
export type ResolverSettings = Pick<Subnet, 'DomainName' | 'DomainNameServers'>;

export function renderResolvConf(subnet: ResolverSettings | undefined): string {
  const lines = [`; /etc/resolv.conf -- ${MARKER}`, ''];
  if (subnet?.DomainName) lines.push(`domain ${subnet.DomainName}`, `search ${subnet.DomainName}`, '');
  for (const ns of subnet?.DomainNameServers ?? []) lines.push(`nameserver ${ns}`);
  return `${lines.join('\n')}\n`;
}

/** /etc/hostname: the host part of the configured name. */
export function renderHostname(hostname: string): string {
  return `${hostname.split('.')[0]}\n`;
}
