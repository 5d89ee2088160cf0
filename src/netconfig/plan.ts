// The target machine's network, planned from its configuration and the interfaces found with a
// link: a pure function, rendered later for ifupdown (ifupdown.ts) or other formats. It follows
// Dominator's installer so its files stay compatible, and mends its known bug:
// a VlanTrunk interface plus one more live link gave a `bond0` with no slaves; here the
// VlanTrunk interface is the raw device and other live links are left unconfigured.
import { subnetOf, type MachineConfig, type NetworkEntry, type Subnet } from './machine-config.ts';

export interface LinkInfo {
  name: string;
  mac: string;
  /** Carrier present: connected to a live switch port. */
  up: boolean;
}

export interface StaticInterface {
  ifname: string;
  mac: string;
  ip: string;
  subnet: Subnet;
}

export interface NetworkPlan {
  /** Interfaces with an address of their own (bridged as br<VlanId> when the subnet is managed). */
  statics: StaticInterface[];
  /** Interfaces that take their address, route and DNS by DHCP (a head node's public side). */
  dhcp: { ifname: string }[];
  /** Entries with a MAC and a managed subnet but no address: a bridge `br@<SubnetId>`. */
  bridgeOnly: { ifname: string; mac: string; subnet: Subnet }[];
  /** The trunk's raw device; a bond when it has two or more slaves. */
  trunk?: { raw: string; slaves: string[]; configured: boolean };
  /** Addresses on VLANs of the trunk (entries with an address but no MAC). */
  vlanAddresses: { vid: number; ip: string; subnet: Subnet }[];
  /** Managed subnets no entry uses: a VLAN of the trunk and a bridge `br<VlanId>` each. */
  bridgedVlans: number[];
  /** Where the default route and DNS come from. */
  defaultSubnet?: Subnet;
  /** Links without carrier, to be brought down. */
  down: string[];
  warnings: string[];
}

export class NetworkPlanError extends Error {
  override name = 'NetworkPlanError';
}

export function planNetwork(config: MachineConfig, links: LinkInfo[]): NetworkPlan {
  const subnets = config.Subnets;
  const machine = config.Machine;
  const plan: NetworkPlan = {
    statics: [],
    dhcp: [],
    bridgeOnly: [],
    vlanAddresses: [],
    bridgedVlans: [],
    down: [],
    warnings: [],
  };
  let preferred = machine.HostIpAddress ? subnetOf(machine.HostIpAddress, subnets) : undefined;
  if (machine.GatewaySubnetId) {
    preferred = subnets.find((s) => s.Id === machine.GatewaySubnetId);
    if (!preferred)
      throw new NetworkPlanError(
        `config.json: Machine.GatewaySubnetId '${machine.GatewaySubnetId}' names no subnet in Subnets`,
      );
  }
  const noteSubnet = (s: Subnet) => {
    if (s === preferred || !plan.defaultSubnet) plan.defaultSubnet = s;
  };
  const pool = new Map(links.map((l) => [l.name, l]));
  const byMac = new Map(links.map((l) => [l.mac, l]));
  const used = new Set<Subnet>();
  const deferred: NetworkEntry[] = [];
  let vlanTrunk: string | undefined;

  for (const entry of [machine, ...(machine.SecondaryNetworkEntries ?? [])]) {
    const { HostIpAddress: ip, HostMacAddress: mac } = entry;
    if (!ip) {
      if (mac && entry.SubnetId) plan.bridgeOnly.push(bridgeOnlyEntry(entry, byMac, subnets, pool, used));
      continue;
    }
    if (!mac) {
      deferred.push(entry);
      continue;
    }
    const link = byMac.get(mac);
    if (!link) {
      plan.warnings.push(`no interface has MAC ${mac} (address ${ip}): entry skipped`);
      continue;
    }
    const subnet = subnetOf(ip, subnets);
    if (!subnet) {
      plan.warnings.push(`no subnet in Subnets holds ${ip}: entry for ${link.name} skipped`);
      continue;
    }
    plan.statics.push({ ifname: link.name, mac, ip, subnet });
    pool.delete(link.name);
    used.add(subnet);
    noteSubnet(subnet);
    if (entry.VlanTrunk) vlanTrunk = link.name;
  }

  for (const link of links) if (!link.up) plan.down.push(link.name);
  const live = [...pool.values()]
    .filter((l) => l.up)
    .map((l) => l.name)
    .sort();
  if (vlanTrunk) {
    plan.trunk = { raw: vlanTrunk, slaves: [], configured: true };
    if (live.length) plan.warnings.push(`links ${live.join(', ')} are up but not used: ${vlanTrunk} is the VLAN trunk`);
  } else if (live.length === 1) plan.trunk = { raw: live[0], slaves: [], configured: false };
  else if (live.length > 1) plan.trunk = { raw: 'bond0', slaves: live, configured: false };

  if (!plan.trunk) {
    if (deferred.length) plan.warnings.push(`no trunk link is up: ${deferred.length} VLAN address entries skipped`);
    return plan;
  }
  for (const entry of deferred) {
    const subnet = subnetOf(entry.HostIpAddress!, subnets);
    if (!subnet?.VlanId) {
      plan.warnings.push(`address ${entry.HostIpAddress} has no MAC and no VLAN subnet: entry skipped`);
      continue;
    }
    plan.vlanAddresses.push({ vid: subnet.VlanId, ip: entry.HostIpAddress!, subnet });
    used.add(subnet);
    noteSubnet(subnet);
  }
  for (const s of subnets) if (!used.has(s) && s.Manage && s.VlanId) plan.bridgedVlans.push(s.VlanId);
  return plan;
}

function bridgeOnlyEntry(
  entry: NetworkEntry,
  byMac: Map<string, LinkInfo>,
  subnets: Subnet[],
  pool: Map<string, LinkInfo>,
  used: Set<Subnet>,
) {
  const mac = entry.HostMacAddress!;
  const id = entry.SubnetId!;
  const link = byMac.get(mac);
  if (!link)
    throw new NetworkPlanError(
      `config.json: MAC address ${mac} (bridge for subnet ${id}) matches no interface on this machine`,
    );
  const subnet = subnets.find((s) => s.Id === id);
  if (!subnet)
    throw new NetworkPlanError(`config.json: subnetId ${id} (bridge on ${link.name}) names no subnet in Subnets`);
  if (!subnet.Manage)
    throw new NetworkPlanError(
      `config.json: subnet ${id} is not managed (Manage: true), so ${link.name} cannot be bridged into it`,
    );
  if (id.length > 9 || /[/.]/.test(id))
    throw new NetworkPlanError(
      `config.json: subnet Id '${id}' must be at most 9 characters without '/' or '.', since it names the bridge br@${id}`,
    );
  pool.delete(link.name);
  used.add(subnet);
  return { ifname: link.name, mac, subnet };
}
