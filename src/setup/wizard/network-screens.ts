// Kusu's Network and Gateway/DNS screens: every NIC of the machine listed (MAC, driver, link),
// each given a role (public, provisioning, unused) and an address (DHCP or a static one with its
// prefix); then the default route and the name servers, given or from DHCP. The rules and their
// messages are planNetwork's, with the answer file's key paths turned into the NICs' names.
import type { InterfaceAnswer } from '../answers.ts';
import { globMatch } from '../disks.ts';
import type { NicFact } from '../facts.ts';
import { planNetwork } from '../network.ts';
import {
  before,
  type Checked,
  choice,
  type Entries,
  problemsOf,
  type Screen,
  type WizardState,
  words,
} from './model.ts';

type Network = NonNullable<WizardState['answers']['network']>;
type Role = InterfaceAnswer['role'];

const ROLES = ['public', 'provisioning', 'unused'] as const;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([1-9]|[12]\d|3[0-2])$/;
/** Stands in for the host name (asked later) and the DNS servers (asked next) while checking NICs. */
const SOME_HOST = 'head.cluster.example';
const SOME_DNS = ['192.0.2.53'];

/** How the Network screen lists a NIC: name, MAC, driver, link state. */
export const nicLine = (n: NicFact) =>
  `  ${n.name.padEnd(12)} ${n.mac}  ${(n.driver || 'no driver').padEnd(12)} ${n.carrier ? 'link up' : 'no link'}`;

/** The given interface answer that describes this NIC (its match, as planNetwork reads it), if one does. */
function givenFor(network: Network | undefined, nic: NicFact): InterfaceAnswer | undefined {
  const found = network?.interfaces.filter(
    ({ match: m }) =>
      (!m.name || globMatch(m.name, nic.name)) &&
      (!m.mac || globMatch(m.mac.toLowerCase(), nic.mac)) &&
      (!m.driver || globMatch(m.driver, nic.driver)),
  );
  return found?.length === 1 ? found[0] : undefined;
}

/** planNetwork's messages, for someone at the wizard rather than editing a file. */
export function forOperator(message: string, interfaces: InterfaceAnswer[], nics: NicFact[]): string {
  const nameOf = (i: number) => {
    const m = interfaces[i]?.match;
    return nics.find((n) => n.mac === m?.mac)?.name ?? m?.name ?? `interface ${i + 1}`;
  };
  return message
    .replace(/'network\.interfaces\[(\d+)\]\.ipv4'/g, (_, i) => `${nameOf(Number(i))}'s address`)
    .replace(/'network\.interfaces\[(\d+)\]\.pool'/g, (_, i) => `${nameOf(Number(i))}'s pool`)
    .replace(/'network\.interfaces\[(\d+)\](\.match)?'/g, (_, i) => nameOf(Number(i)))
    .replace(/give one interface 'role: provisioning'/, 'make one interface provisioning')
    .replace(/'network\.gateway'/g, 'the gateway')
    .replace(/'network\.dns'/g, 'DNS');
}

function networkProblems(network: Network, nics: NicFact[], hostname = SOME_HOST): string[] {
  try {
    planNetwork(network, nics, hostname);
    return [];
  } catch (err) {
    return problemsOf(err).map((p) => forOperator(p, network.interfaces, nics));
  }
}

/** The interfaces as the screen writes them: each NIC by its MAC, unused ones left out (planNetwork's default). */
export function interfacesFrom(st: WizardState, entered: Entries): InterfaceAnswer[] {
  const out: InterfaceAnswer[] = [];
  for (const nic of st.facts.nics) {
    const role = entered[`role:${nic.name}`] as Role;
    if (role === 'unused') continue;
    const ipv4 = entered[`ipv4:${nic.name}`];
    const given = givenFor(st.answers.network, nic);
    out.push({
      match: { mac: nic.mac },
      role,
      ...(ipv4 ? { ipv4: ipv4 as InterfaceAnswer['ipv4'] } : {}),
      ...(given?.pool && role === 'provisioning' ? { pool: given.pool } : {}),
    });
  }
  return out;
}

function roleDefault(st: WizardState, nic: NicFact, index: number): Role {
  const typed = before(st, 'network', `role:${nic.name}`);
  if (typed) return typed as Role;
  if (st.answers.network) return givenFor(st.answers.network, nic)?.role ?? 'unused';
  // Kusu's topology: the first NIC to the world, the second to the cluster.
  if (st.facts.nics.length === 1) return 'provisioning';
  return index === 0 ? 'public' : index === 1 ? 'provisioning' : 'unused';
}

function addressDefault(st: WizardState, nic: NicFact, role: Role, entered: Entries): string {
  const fits = (a: string | undefined) => (a && !(role === 'provisioning' && a === 'dhcp') ? a : undefined);
  const found = fits(before(st, 'network', `ipv4:${nic.name}`)) ?? fits(givenFor(st.answers.network, nic)?.ipv4);
  if (found) return found;
  if (role === 'public') return 'dhcp';
  const earlier = st.facts.nics
    .slice(0, st.facts.nics.indexOf(nic))
    .filter((n) => entered[`role:${n.name}`] === 'provisioning').length;
  return `10.${earlier + 1}.0.1/24`;
}

const checkAddress = (raw: string): Checked =>
  raw.toLowerCase() === 'dhcp'
    ? { value: 'dhcp' }
    : CIDR.test(raw)
      ? { value: raw }
      : { problem: `'${raw}': give dhcp, or an address with its prefix length such as 10.1.0.1/24` };

export const networkScreen: Screen = {
  id: 'network',
  step: 4,
  title: 'Network',
  prefilled: (st) =>
    st.given.includes('network') &&
    !!st.answers.network &&
    networkProblems({ interfaces: st.answers.network.interfaces, dns: SOME_DNS }, st.facts.nics).length === 0,
  body: (st) => [
    "The network interfaces of this machine. Each is public (to the world), provisioning (the cluster's own network, where compute nodes boot; a static address, as the head node is its DHCP server) or unused. At least one is provisioning.",
    ...(st.facts.nics.length ? st.facts.nics.map(nicLine) : ['  (this machine has no network interface)']),
  ],
  next: (st, entered) => {
    for (const [index, nic] of st.facts.nics.entries()) {
      const roleId = `role:${nic.name}`;
      if (entered[roleId] === undefined)
        return {
          id: roleId,
          prompt: `${nic.name} role (public/provisioning/unused)`,
          default: roleDefault(st, nic, index),
          check: choice(ROLES),
        };
      const role = entered[roleId] as Role;
      const ipId = `ipv4:${nic.name}`;
      if (role !== 'unused' && entered[ipId] === undefined)
        return {
          id: ipId,
          prompt: role === 'public' ? `${nic.name} address (dhcp or address/prefix)` : `${nic.name} address/prefix`,
          default: addressDefault(st, nic, role, entered),
          check: checkAddress,
        };
    }
    return undefined;
  },
  commit: (st, entered) => {
    const interfaces = interfacesFrom(st, entered);
    if (!interfaces.length)
      return { problems: ['every interface is unused: make one interface provisioning (compute nodes boot on it)'] };
    const problems = networkProblems({ interfaces, dns: SOME_DNS }, st.facts.nics);
    if (problems.length) return { problems };
    const { gateway, dns, domain } = st.answers.network ?? {};
    const network: Network = {
      interfaces,
      ...(gateway ? { gateway } : {}),
      ...(dns ? { dns } : {}),
      ...(domain ? { domain } : {}),
    };
    return { state: { ...st, answers: { ...st.answers, network } } };
  },
};

/** The public NICs on DHCP: they can give the route and the name servers. */
const dhcpNics = (st: WizardState) =>
  (st.answers.network?.interfaces ?? [])
    .filter((i) => i.ipv4 === 'dhcp')
    .map((i) => st.facts.nics.find((n) => givenFor({ interfaces: [i] }, n))?.name ?? 'a public interface');

export const gatewayScreen: Screen = {
  id: 'gateway',
  step: 5,
  title: 'Gateway and DNS',
  prefilled: (st) =>
    st.given.includes('network') &&
    !!st.answers.network &&
    networkProblems(st.answers.network, st.facts.nics, st.answers.hostname).length === 0,
  body: (st) => {
    const dhcp = dhcpNics(st);
    return [
      "The head node's default route and its name servers.",
      dhcp.length
        ? `${dhcp.join(' and ')} take${dhcp.length === 1 ? 's' : ''} an address from DHCP, which can give both (dhcp).`
        : 'No interface uses DHCP: give a router on a public network (or none, for a cluster with no way out) and up to three DNS servers.',
    ];
  },
  next: (st, entered) => {
    const dhcp = dhcpNics(st);
    const given = st.answers.network;
    if (entered.gateway === undefined)
      return {
        id: 'gateway',
        prompt: dhcp.length ? 'gateway (dhcp or an address)' : 'gateway (an address or none)',
        default: before(st, 'gateway', 'gateway') ?? given?.gateway ?? (dhcp.length ? 'dhcp' : 'none'),
        check: (raw) => {
          const t = raw.toLowerCase();
          if (t === 'dhcp' || IPV4.test(raw)) return { value: t === 'dhcp' ? t : raw };
          if (t === 'none')
            return dhcp.length
              ? { problem: `${dhcp.join(' and ')} on DHCP will get the route from DHCP: write dhcp or an address` }
              : { value: t };
          return { problem: `'${raw}': give ${dhcp.length ? 'dhcp' : 'none'} or an IPv4 address such as 192.0.2.1` };
        },
      };
    if (entered.dns === undefined) {
      const typed = given?.dns === undefined ? undefined : given.dns === 'dhcp' ? 'dhcp' : given.dns.join(' ');
      return {
        id: 'dns',
        prompt: dhcp.length ? 'DNS servers (dhcp, or up to 3 addresses)' : 'DNS servers (up to 3 addresses)',
        default: before(st, 'gateway', 'dns') ?? typed ?? (dhcp.length ? 'dhcp' : undefined),
        check: (raw) => {
          if (raw.toLowerCase() === 'dhcp') return { value: 'dhcp' };
          const list = words(raw);
          const bad = list.find((a) => !IPV4.test(a));
          if (bad) return { problem: `'${bad}' is not an IPv4 address such as 192.0.2.53` };
          if (list.length > 3) return { problem: `${list.length} DNS servers: give at most three` };
          return { value: list.join(' ') };
        },
      };
    }
    return undefined;
  },
  commit: (st, entered) => {
    const { gateway: _g, dns: _d, ...rest } = st.answers.network ?? { interfaces: [] };
    const network: Network = {
      ...rest,
      ...(entered.gateway !== 'none' ? { gateway: entered.gateway } : {}),
      dns: entered.dns === 'dhcp' ? 'dhcp' : words(entered.dns),
    };
    const problems = networkProblems(network, st.facts.nics, st.answers.hostname);
    if (problems.length) return { problems };
    return { state: { ...st, answers: { ...st.answers, network } } };
  },
};
