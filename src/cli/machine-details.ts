// `cradle machine show`'s lines for what Dominator's config.json says of a machine beyond its
// boot interface: the other interfaces, trunk, gateway subnet, locations, owners and hardware.
import type { Machine, NetworkEntry } from '../inventory/types.ts';
import { formatBytes } from '../util/format.ts';

/** One of Dominator's NetworkEntries: MAC, address and subnet, or the bridge it is; trunk; name. */
function describeEntry(e: NetworkEntry): string {
  return [
    e.mac,
    e.ip && `${e.ip}${e.subnetId ? ` (${e.subnetId})` : ''}`,
    !e.ip && e.subnetId && `bridge to ${e.subnetId}`,
    e.vlanTrunk && 'VLAN trunk',
    e.hostname,
  ]
    .filter(Boolean)
    .join(' ');
}

/** The rest of what Dominator's config.json said about the machine, for `machine show`. */
export function dominatorDetails(m: Machine): string[] {
  const lines: string[] = [];
  if (m.vlanTrunk) lines.push('trunk:     the boot interface carries the VLANs of managed subnets');
  for (const e of m.secondaryNetworkEntries ?? []) lines.push(`interface: ${describeEntry(e)}`);
  if (m.gatewaySubnetId) lines.push(`gateway:   the default route is subnet ${m.gatewaySubnetId}'s`);
  if (m.location || m.topologyLocation) {
    const topology = m.topologyLocation && m.topologyLocation !== m.location ? ` (topology ${m.topologyLocation})` : '';
    lines.push(`location:  ${m.location ?? '-'}${topology}`);
  }
  const owners = [
    m.ownerGroups?.length ? `groups ${m.ownerGroups.join(', ')}` : '',
    m.ownerUsers?.length ? `users ${m.ownerUsers.join(', ')}` : '',
  ].filter(Boolean);
  if (owners.length) lines.push(`owners:    ${owners.join('; ')}`);
  const hw = m.hardware;
  if (hw) {
    const parts = [
      hw.architecture,
      hw.cpus !== undefined && `${hw.cpus} CPUs`,
      hw.memoryMiB !== undefined && `${formatBytes(hw.memoryMiB * 2 ** 20)} memory`,
      hw.totalVolumeBytes !== undefined && `${formatBytes(hw.totalVolumeBytes)} of volumes`,
    ];
    lines.push(`hardware:  ${parts.filter(Boolean).join(', ')}`);
  }
  return lines;
}
