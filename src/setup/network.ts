// The head node's networks, planned from the answers and the machine's NICs (Kusu's network and
// gateway/DNS screens): each NIC public, provisioning or unused; at least one provisioning
// network, on a static address (the head node is its DHCP server); no address twice, no two
// networks overlapping; gateway and DNS given, or taken from DHCP on a public side. The first
// provisioning network becomes the head node's managed subnet, with a pool for compute nodes.
// The new system's network files are rendered by the installer's own renderer (headNetworkFiles).
import { cidrOf, inSubnet, intToIp, ipToInt, subnetRange } from '../inventory/validate.ts';
import type { Subnet } from '../inventory/types.ts';
import type { NetworkFilesInput } from '../netconfig/files.ts';
import type { Subnet as NetconfigSubnet } from '../netconfig/machine-config.ts';
import type { NetworkPlan as NetconfigPlan } from '../netconfig/plan.ts';
import { AnswersError, type Answers, type InterfaceAnswer } from './answers.ts';
import { globMatch } from './disks.ts';
import type { NicFact } from './facts.ts';

export interface PlannedInterface {
  nic: NicFact;
  role: 'public' | 'provisioning' | 'unused';
  /** DHCP, or a static address. */
  ipv4?: 'dhcp' | { address: string; prefix: number; mask: string };
}

export interface NetworkPlan {
  interfaces: PlannedInterface[];
  /** The default route: from DHCP, an address, or none (a cluster with no way out). */
  gateway?: 'dhcp' | string;
  dns: 'dhcp' | string[];
  domain: string;
  /** The head node's managed subnet in its machine database, on the provisioning NIC. */
  provisioning: { nic: string; address: string; subnet: Subnet };
}

const maskOf = (prefix: number) => intToIp(prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0);

function matchesNic(m: InterfaceAnswer['match'], n: NicFact): boolean {
  return (
    (!m.name || globMatch(m.name, n.name)) &&
    (!m.mac || globMatch(m.mac.toLowerCase(), n.mac)) &&
    (!m.driver || globMatch(m.driver, n.driver))
  );
}

const describeNic = (n: NicFact) =>
  `${n.name} (${n.mac}, ${n.driver || 'no driver'}, ${n.carrier ? 'link up' : 'no link'})`;

/** Plans the networks; throws with every problem found, each naming the key. */
export function planNetwork(answers: NonNullable<Answers['network']>, nics: NicFact[], hostname: string): NetworkPlan {
  const problems: string[] = [];
  const listing = `the NICs of this machine: ${nics.map(describeNic).join('; ') || 'none'}`;
  const chosen = new Map<string, { index: number; plan: PlannedInterface }>();
  for (const [index, a] of answers.interfaces.entries()) {
    const key = `network.interfaces[${index}]`;
    const found = nics.filter((n) => matchesNic(a.match, n));
    if (found.length !== 1) {
      problems.push(
        found.length
          ? `'${key}.match' matches ${found.map((n) => n.name).join(' and ')}: narrow it to one NIC (name or mac)`
          : `'${key}.match' matches no NIC; ${listing}`,
      );
      continue;
    }
    const nic = found[0];
    const twice = chosen.get(nic.name);
    if (twice) {
      problems.push(
        `'${key}' and 'network.interfaces[${twice.index}]' both describe ${nic.name}: describe each NIC once`,
      );
      continue;
    }
    let ipv4: PlannedInterface['ipv4'];
    if (a.ipv4 === 'dhcp') ipv4 = 'dhcp';
    else if (a.ipv4) {
      const [address, prefix] = a.ipv4.split('/');
      ipv4 = { address, prefix: Number(prefix), mask: maskOf(Number(prefix)) };
    }
    if (a.role === 'provisioning' && ipv4 === 'dhcp')
      problems.push(
        `'${key}.ipv4': a provisioning network has a static address (the head node is its DHCP server), e.g. 10.1.0.1/24`,
      );
    if (a.role === 'provisioning' && !ipv4)
      problems.push(`'${key}.ipv4': give the head node's address, e.g. 10.1.0.1/24`);
    if (a.role === 'public' && !ipv4) problems.push(`'${key}.ipv4': give 'dhcp' or an address such as 192.0.2.10/24`);
    if (a.role === 'unused' && ipv4) problems.push(`'${key}.ipv4': an unused NIC gets no address`);
    if (a.pool && a.role !== 'provisioning') problems.push(`'${key}.pool': only a provisioning network has a pool`);
    chosen.set(nic.name, { index, plan: { nic, role: a.role, ...(ipv4 ? { ipv4 } : {}) } });
  }
  const planned = [...chosen.values()].map((c) => c.plan);
  for (const n of nics) if (!chosen.has(n.name)) planned.push({ nic: n, role: 'unused' });
  const statics = planned.filter(
    (p): p is PlannedInterface & { ipv4: { address: string; prefix: number; mask: string } } =>
      typeof p.ipv4 === 'object',
  );
  for (const [i, a] of statics.entries())
    for (const b of statics.slice(i + 1)) {
      if (a.ipv4.address === b.ipv4.address)
        problems.push(`${a.nic.name} and ${b.nic.name} both have ${a.ipv4.address}: give each its own address`);
      else if (
        inSubnet(a.ipv4.address, { gateway: b.ipv4.address, mask: b.ipv4.mask }) ||
        inSubnet(b.ipv4.address, { gateway: a.ipv4.address, mask: a.ipv4.mask })
      )
        problems.push(
          `${a.nic.name} (${a.ipv4.address}/${a.ipv4.prefix}) and ${b.nic.name} (${b.ipv4.address}/${b.ipv4.prefix}) are on one network: give each network its own subnet`,
        );
    }
  const provisioning = statics.find((p) => p.role === 'provisioning');
  if (!planned.some((p) => p.role === 'provisioning'))
    problems.push(
      `no provisioning network: give one interface 'role: provisioning' (compute nodes boot on it); ${listing}`,
    );
  const dhcp = planned.some((p) => p.ipv4 === 'dhcp');
  const gateway = answers.gateway ?? (dhcp ? 'dhcp' : undefined);
  const dns = answers.dns ?? (dhcp ? 'dhcp' : undefined);
  if (gateway === 'dhcp' && !dhcp)
    problems.push("'network.gateway' is dhcp, but no public interface uses DHCP: give an address");
  if (dns === 'dhcp' && !dhcp)
    problems.push("'network.dns' is dhcp, but no public interface uses DHCP: list DNS servers");
  if (!dns) problems.push("'network.dns': list the DNS servers, e.g. [192.0.2.53]");
  if (
    typeof gateway === 'string' &&
    gateway !== 'dhcp' &&
    !statics.some((p) => p.role === 'public' && inSubnet(gateway, { gateway: p.ipv4.address, mask: p.ipv4.mask }))
  )
    problems.push(`'network.gateway' ${gateway} is on no public network of this head node: give a router on one`);
  let pool: Subnet['pool'];
  if (provisioning) {
    const index = chosen.get(provisioning.nic.name)?.index ?? 0;
    const a = answers.interfaces[index];
    const s = { gateway: provisioning.ipv4.address, mask: provisioning.ipv4.mask };
    const { first, last } = subnetRange(s);
    pool = a.pool ?? defaultPool(first, last, ipToInt(provisioning.ipv4.address));
    if (!pool)
      problems.push(
        `'network.interfaces[${index}]': ${cidrOf(s)} is too small for a pool of compute nodes: use /29 or larger`,
      );
    else {
      const [start, end] = [ipToInt(pool.start), ipToInt(pool.end)];
      const own = ipToInt(provisioning.ipv4.address);
      if (!inSubnet(pool.start, s) || !inSubnet(pool.end, s) || start <= first || end >= last || start > end)
        problems.push(
          `'network.interfaces[${index}].pool' ${pool.start}-${pool.end} is not a range inside ${cidrOf(s)} (network and broadcast addresses excluded)`,
        );
      else if (own >= start && own <= end)
        problems.push(
          `'network.interfaces[${index}].pool' ${pool.start}-${pool.end} contains the head node's own ${provisioning.ipv4.address}`,
        );
    }
  }
  if (problems.length) throw new AnswersError(`the network:\n  ${problems.join('\n  ')}`);
  const p = provisioning as NonNullable<typeof provisioning>;
  const domain = answers.domain ?? hostname.split('.').slice(1).join('.');
  return {
    interfaces: planned,
    ...(gateway ? { gateway } : {}),
    dns: dns as NetworkPlan['dns'],
    domain,
    provisioning: {
      nic: p.nic.name,
      address: p.ipv4.address,
      subnet: {
        id: 'provisioning',
        gateway: p.ipv4.address,
        mask: p.ipv4.mask,
        domainName: domain,
        dnsServers: [p.ipv4.address],
        manage: false,
        pool,
      },
    },
  };
}

/** The upper half of the subnet, without the broadcast address and the head node's own. */
function defaultPool(first: number, last: number, own: number): Subnet['pool'] {
  if (last - first < 7) return undefined;
  let start = first + Math.ceil((last - first) / 2);
  let end = last - 1;
  if (own === end) end--;
  if (own >= start && own <= end) start = own + 1;
  return start <= end ? { start: intToIp(start), end: intToIp(end) } : undefined;
}

/**
 * The head node's networks as the installer's renderer takes them (netconfig/files.ts), so the
 * head node and its compute nodes get their network files from one place: each static address a
 * subnet of its own, the public subnet holding the gateway the default one, DHCP interfaces as
 * such, unused NICs unconfigured, and every NIC's name pinned to its MAC (and bus address).
 */
export function headNetworkFiles(n: NetworkPlan): Omit<NetworkFilesInput, 'flavour'> {
  const statics: NetconfigPlan['statics'] = [];
  let defaultSubnet: NetconfigSubnet | undefined;
  for (const i of n.interfaces) {
    if (typeof i.ipv4 !== 'object') continue;
    const own = { gateway: i.ipv4.address, mask: i.ipv4.mask };
    const routed = i.role === 'public' && n.gateway && n.gateway !== 'dhcp' && inSubnet(n.gateway, own);
    const subnet: NetconfigSubnet = {
      Id: `${i.role}-${i.nic.name}`,
      // The provisioning side routes nowhere: its "gateway" is the head node itself, never the default.
      IpGateway: routed ? (n.gateway as string) : i.ipv4.address,
      IpMask: i.ipv4.mask,
      ...(n.domain ? { DomainName: n.domain } : {}),
      ...(Array.isArray(n.dns) ? { DomainNameServers: n.dns } : {}),
    };
    if (routed) defaultSubnet = subnet;
    statics.push({ ifname: i.nic.name, mac: i.nic.mac, ip: i.ipv4.address, subnet });
  }
  const plan: NetconfigPlan = {
    statics,
    dhcp: n.interfaces.filter((i) => i.ipv4 === 'dhcp').map((i) => ({ ifname: i.nic.name })),
    bridgeOnly: [],
    vlanAddresses: [],
    bridgedVlans: [],
    ...(defaultSubnet ? { defaultSubnet } : {}),
    down: [],
    warnings: [],
  };
  const resolv: NetworkFilesInput['resolv'] = Array.isArray(n.dns)
    ? { ...(n.domain ? { DomainName: n.domain } : {}), DomainNameServers: n.dns }
    : 'dhcp';
  return {
    plan,
    pinned: n.interfaces.map((i) => ({
      name: i.nic.name,
      mac: i.nic.mac,
      ...(i.nic.busId ? { busId: i.nic.busId } : {}),
    })),
    resolv,
  };
}
