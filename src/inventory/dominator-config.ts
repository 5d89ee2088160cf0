// Dominator's config.json (GetMachineInfoResponse) to the machine database's records and back,
// both directions in one place so they cannot drift: `cradle machine import` reads with
// fromDominator, the boot server serves with toDominator, and a machine imported from a file is
// served back as the same document. Go's omitempty is followed on the way out: empty strings,
// false, zero and empty lists are left out (Subnets' DomainNameServers excepted, as in Go).
import type {
  MachineConfig,
  NetworkEntry as DominatorEntry,
  Subnet as DominatorSubnet,
} from '../netconfig/machine-config.ts';
import type { Machine, NetworkEntry, NewMachine, Subnet } from './types.ts';
import { ValidationError } from './validate.ts';

/** Drops keys whose value is undefined, so records compare equal to what the store returns. */
export function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Go's omitempty: undefined for "", false, 0, and empty lists and records. */
function some<T>(v: T): T | undefined {
  if (v === '' || v === false || v === 0 || v === null) return undefined;
  if (typeof v === 'object' && Object.keys(v as object).length === 0) return undefined;
  return v;
}

function entryFrom(e: DominatorEntry): NetworkEntry {
  return compact({
    hostname: some(e.Hostname),
    ip: e.HostIpAddress,
    mac: e.HostMacAddress,
    subnetId: some(e.SubnetId),
    vlanTrunk: some(e.VlanTrunk),
  });
}

function entryTo(e: NetworkEntry): Record<string, unknown> {
  return compact({
    Hostname: some(e.hostname),
    HostIpAddress: e.ip,
    HostMacAddress: e.mac,
    SubnetId: some(e.subnetId),
    VlanTrunk: some(e.vlanTrunk),
  });
}

/** A Dominator subnet as the database keeps it; the dynamic range is the pool. */
export function subnetFrom(s: DominatorSubnet, where: string): Subnet {
  if (Boolean(s.FirstDynamicIP) !== Boolean(s.LastDynamicIP))
    throw new ValidationError(
      `${where}: subnet '${s.Id}' has only one of FirstDynamicIP and LastDynamicIP: give both (the pool's first and last address) or neither`,
    );
  return compact({
    id: s.Id,
    gateway: s.IpGateway,
    mask: s.IpMask,
    domainName: some(s.DomainName),
    dnsServers: s.DomainNameServers ?? [],
    manage: s.Manage ?? false,
    vlanId: some(s.VlanId), // Dominator writes 0 for "no VLAN"
    pool: s.FirstDynamicIP && s.LastDynamicIP ? { start: s.FirstDynamicIP, end: s.LastDynamicIP } : undefined,
    disableMetadata: some(s.DisableMetadata),
    allowedGroups: some(s.AllowedGroups),
    allowedUsers: some(s.AllowedUsers),
    tags: some(s.Tags),
  });
}

/** Dominator's Subnets entry. */
export function subnetTo(s: Subnet): Record<string, unknown> {
  return compact({
    Id: s.id,
    IpGateway: s.gateway,
    IpMask: s.mask,
    DomainName: some(s.domainName),
    DomainNameServers: s.dnsServers,
    DisableMetadata: some(s.disableMetadata),
    Manage: some(s.manage),
    VlanId: some(s.vlanId),
    AllowedGroups: some(s.allowedGroups),
    AllowedUsers: some(s.allowedUsers),
    FirstDynamicIP: s.pool?.start,
    LastDynamicIP: s.pool?.end,
    Tags: some(s.tags),
  });
}

/**
 * The machine of a config.json. Its MACs are the primary interface's, then each secondary
 * interface's (each once): DHCP and HTTP find the machine by any of them.
 */
export function machineFrom(c: MachineConfig, where: string): NewMachine {
  const m = c.Machine;
  if (!m.Hostname)
    throw new ValidationError(`${where}: field 'Machine.Hostname' is missing: every machine needs a host name`);
  if (!m.HostMacAddress)
    throw new ValidationError(
      `${where}: field 'Machine.HostMacAddress' is missing: Cradle knows a machine by its primary interface's MAC`,
    );
  const secondaries = (m.SecondaryNetworkEntries ?? []).map(entryFrom);
  const macs = [...new Set([m.HostMacAddress, ...secondaries.map((e) => e.mac).filter((x): x is string => !!x)])];
  const ipmi = m.IPMI && entryFrom(m.IPMI);
  const hardware = compact({
    architecture: m.ArchitectureType,
    memoryMiB: some(m.MemoryInMiB),
    cpus: some(m.NumCPUs),
    totalVolumeBytes: some(m.TotalVolumeBytes),
  });
  return compact({
    hostname: m.Hostname,
    macs,
    ip: m.HostIpAddress,
    subnetId: some(m.SubnetId),
    vlanTrunk: some(m.VlanTrunk),
    secondaryNetworkEntries: some(secondaries),
    gatewaySubnetId: some(m.GatewaySubnetId),
    ipmi: ipmi && some(ipmi),
    location: some(m.Location),
    topologyLocation: some(c.Location),
    ownerGroups: some(m.OwnerGroups),
    ownerUsers: some(m.OwnerUsers),
    hardware: some(hardware),
    tags: m.Tags ?? {},
  });
}

/** config.json for a machine: Dominator's GetMachineInfoResponse, fields in Go's order. */
export function machineTo(m: Machine, subnets: Subnet[]): Record<string, unknown> {
  const hw = m.hardware ?? {};
  return compact({
    Location: some(m.topologyLocation),
    Machine: compact({
      ArchitectureType: hw.architecture,
      MemoryInMiB: some(hw.memoryMiB),
      NumCPUs: some(hw.cpus),
      TotalVolumeBytes: some(hw.totalVolumeBytes),
      ...entryTo({
        hostname: m.hostname,
        ip: m.ip,
        mac: m.macs[0],
        subnetId: m.subnetMatched ? undefined : m.subnetId,
        vlanTrunk: m.vlanTrunk,
      }),
      GatewaySubnetId: some(m.gatewaySubnetId),
      IPMI: m.ipmi && entryTo(m.ipmi),
      Location: some(m.location),
      OwnerGroups: some(m.ownerGroups),
      OwnerUsers: some(m.ownerUsers),
      SecondaryNetworkEntries: some(m.secondaryNetworkEntries?.map(entryTo)),
      Tags: some(m.tags),
    }),
    Subnets: subnets.map(subnetTo),
  });
}
