// Compute nodes registered by the install (the answers' `nodes`, Kusu's addhost in its pre-populate
// mode beside "listen"): each goes into the head node's machine database in state birth, so its
// first network boot installs it. Planned here, from the answers, the head node's network and its
// node groups: every name and MAC once (and no MAC of the head node's own NICs), every address on
// the provisioning network, neither the head node's nor in the DHCP pool, and every group one the
// install makes. A node without an address takes one from the pool at its first boot, and the boot
// server keeps it as the node's address when its installer fetches its configuration (boot/http.ts
// keepLeaseAddress), since the installed system configures it statically.
import { cidrOf, inSubnet, ipToInt, subnetRange } from '../inventory/validate.ts';
import { type Answers, AnswersError } from './answers.ts';
import type { NicFact } from './facts.ts';
import type { NetworkPlan } from './network.ts';

export interface PlannedNode {
  hostname: string;
  /** Lower case, colon-separated: the MAC it network-boots from. */
  mac: string;
  /** Its reserved address; absent: a pool address at its first boot, kept as its own from then on. */
  ip?: string;
  nodeGroup: string;
}

/** The node groups an install makes: `head` always, then `compute` or those the answers name. */
export function nodeGroupNames(groups: NonNullable<Answers['nodeGroups']> | 'default'): string[] {
  return ['head', ...(groups === 'default' ? ['compute'] : groups.map((g) => g.name))];
}

/**
 * Plans the nodes; throws with every problem found, each naming its key. Without a network plan
 * (its own problems are reported apart) the addresses are not checked.
 */
export function planNodes(
  nodes: NonNullable<Answers['nodes']>,
  o: { network?: NetworkPlan; nics: NicFact[]; groups: string[]; hostname: string },
): PlannedNode[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  const macs = new Map<string, number>();
  const ips = new Map<string, number>();
  const headNames = new Set([o.hostname, o.hostname.split('.')[0]]);
  const prov = o.network?.provisioning;
  const range = prov && subnetRange(prov.subnet);
  const pool = prov?.subnet.pool;
  for (const [i, n] of nodes.entries()) {
    const key = `nodes[${i}]`;
    const seen = (map: Map<string, number>, value: string, field: string, what: string) => {
      const first = map.get(value);
      if (first === undefined) map.set(value, i);
      else problems.push(`'${key}.${field}' ${value} is also nodes[${first}]'s: give each node its own ${what}`);
    };
    seen(names, n.hostname, 'hostname', 'name');
    if (headNames.has(n.hostname))
      problems.push(`'${key}.hostname' ${n.hostname} is the head node's own name: give the node another`);
    seen(macs, n.mac, 'mac', 'MAC');
    const own = o.nics.find((nic) => nic.mac === n.mac);
    if (own) problems.push(`'${key}.mac' ${n.mac} is the head node's own ${own.name}: give the compute node's MAC`);
    if (!o.groups.includes(n.nodeGroup))
      problems.push(
        `'${key}.nodeGroup' ${n.nodeGroup} is not a node group this install makes (${o.groups.join(', ')}): name one of them, or add it under nodeGroups`,
      );
    if (!n.ip || !prov || !range) continue;
    seen(ips, n.ip, 'ip', 'address');
    const subnet = `the provisioning network ${cidrOf(prov.subnet)} (on ${prov.nic})`;
    const at = ipToInt(n.ip);
    if (!inSubnet(n.ip, prov.subnet))
      problems.push(
        `'${key}.ip' ${n.ip} is not on ${subnet}: give an address on it, or leave ip out for a pool address`,
      );
    else if (at === range.first || at === range.last)
      problems.push(`'${key}.ip' ${n.ip} is the network's or broadcast address of ${subnet}: give another`);
    else if (n.ip === prov.address) problems.push(`'${key}.ip' ${n.ip} is the head node's own address: give another`);
    else if (pool && at >= ipToInt(pool.start) && at <= ipToInt(pool.end))
      problems.push(
        `'${key}.ip' ${n.ip} is in the DHCP pool ${pool.start}-${pool.end}: give an address outside it, or leave ip out for a pool address`,
      );
  }
  const pooled = nodes.filter((n) => !n.ip).length;
  if (pool && pooled > ipToInt(pool.end) - ipToInt(pool.start) + 1)
    problems.push(
      `${pooled} nodes have no ip, but the DHCP pool ${pool.start}-${pool.end} holds ${ipToInt(pool.end) - ipToInt(pool.start) + 1} addresses: give them addresses outside it, or a larger pool`,
    );
  if (problems.length) throw new AnswersError(`the compute nodes:\n  ${problems.join('\n  ')}`);
  return nodes.map((n) => ({
    hostname: n.hostname,
    mac: n.mac,
    ...(n.ip ? { ip: n.ip } : {}),
    nodeGroup: n.nodeGroup,
  }));
}

/** The nodes as the plan and the confirmation list them. */
export function describeNodes(nodes: PlannedNode[]): string[] {
  const width = Math.max(10, ...nodes.map((n) => n.hostname.length));
  return nodes.map(
    (n) => `  ${n.hostname.padEnd(width)} ${n.mac}  ${(n.ip ?? 'pool address').padEnd(15)} ${n.nodeGroup}`,
  );
}
