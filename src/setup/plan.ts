// The whole head-node install, planned from the answers and the machine's facts before anything is
// touched: what `cradle setup --dry-run` prints, what the confirmation shows, and what the install
// then carries out. Every section's problems are gathered, so one run names them all.
import { sha512Crypt } from '../util/sha512-crypt.ts';
import { AnswersError, type Answers, missing } from './answers.ts';
import { describeDisk, selectDisks } from './disks.ts';
import type { DiskFact, MachineFacts } from './facts.ts';
import { describeLayout, type HeadLayout, planHeadLayout } from './layout.ts';
import { type NetworkPlan, planNetwork } from './network.ts';
import { describeNodes, nodeGroupNames, type PlannedNode, planNodes } from './nodes.ts';
import { describeOperatorCa, planOperatorCa } from './operators.ts';

export interface SetupPlan {
  /** The answers as they are saved in the new system: the password only as its hash. */
  answers: Answers;
  language: string;
  keyboard: string;
  timezone: string;
  hostname: string;
  rootPasswordHash: string;
  /** Every disk erased, as the confirmation names them. */
  wipe: DiskFact[];
  storage: HeadLayout;
  network: NetworkPlan;
  kits: NonNullable<Answers['kits']>;
  /** Created after the kits are in the depot; `compute` from the first OS kit when none are named. */
  nodeGroups: NonNullable<Answers['nodeGroups']> | 'default';
  /** Compute nodes registered in state birth, on the provisioning subnet (nodes.ts). */
  nodes: PlannedNode[];
  /** An operator CA's certificates (PEM), checked: its client certificates are operators' too. */
  operatorCa?: string;
}

/** The answers with a plain root password replaced by its SHA-512 crypt hash. */
export function hashAnswers(a: Answers, salt?: string): Answers {
  if (!a.rootPassword?.plain) return a;
  return { ...a, rootPassword: { hash: sha512Crypt(a.rootPassword.plain, salt) } };
}

/** Plans the install; throws an AnswersError naming every problem (and what is missing). */
export function planSetup(input: Answers, facts: MachineFacts, opts: { salt?: string } = {}): SetupPlan {
  const gaps = missing(input);
  if (gaps.length)
    throw new AnswersError(
      `the answers leave out ${gaps.map((g) => `'${g}'`).join(', ')}: add them, or run the wizard (cradle setup without --answers) to be asked`,
    );
  const answers = hashAnswers(input, opts.salt);
  const problems: string[] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof AnswersError)) throw err;
      problems.push(err.message);
      return undefined;
    }
  };
  const disks = answers.disks as NonNullable<Answers['disks']>;
  const chosen = attempt(() => selectDisks(disks, facts));
  const storage = chosen && attempt(() => planHeadLayout(disks.layout, chosen, facts.firmware));
  const hostname = answers.hostname as string;
  const network = attempt(() => planNetwork(answers.network as NonNullable<Answers['network']>, facts.nics, hostname));
  const nodeGroups = answers.nodeGroups ?? 'default';
  if (nodeGroups !== 'default') {
    const names = nodeGroups.map((g) => g.name);
    for (const n of new Set(names.filter((x, i) => names.indexOf(x) !== i)))
      problems.push(`'nodeGroups': ${n} is listed twice`);
  }
  const nodes = attempt(() =>
    planNodes(answers.nodes ?? [], { network, nics: facts.nics, groups: nodeGroupNames(nodeGroups), hostname }),
  );
  const operatorCa = answers.operators && attempt(() => planOperatorCa(answers.operators?.ca as string));
  if (problems.length || !storage || !network || !chosen || !nodes) throw new AnswersError(problems.join('\n'));
  return {
    answers,
    language: answers.language as string,
    keyboard: answers.keyboard as string,
    timezone: answers.timezone as string,
    hostname,
    rootPasswordHash: answers.rootPassword?.hash as string,
    wipe: chosen,
    storage,
    network,
    kits: answers.kits ?? { fromMedia: 'all', urls: [] },
    nodeGroups,
    nodes,
    ...(operatorCa ? { operatorCa } : {}),
  };
}

/** The plan as `--dry-run` and the confirmation show it. */
export function describePlan(p: SetupPlan): string {
  const n = p.network;
  const address = (i: NetworkPlan['interfaces'][number]) =>
    i.ipv4 === 'dhcp' ? 'DHCP' : i.ipv4 ? `${i.ipv4.address}/${i.ipv4.prefix}` : '-';
  const lines = [
    `host name:   ${p.hostname}`,
    `language:    ${p.language}, keyboard ${p.keyboard}, time zone ${p.timezone}`,
    'root:        password set (SHA-512 crypt)',
    '',
    'ERASED (every partition and file system on them):',
    ...p.wipe.map((d) => `  ${describeDisk(d)}`),
    '',
    `storage (${p.storage.firmware.toUpperCase()}):`,
    ...describeLayout(p.storage).map((l) => `  ${l}`),
    '',
    'network:',
    ...n.interfaces.map((i) => `  ${i.nic.name.padEnd(10)} ${i.nic.mac}  ${i.role.padEnd(12)} ${address(i)}`),
    `  gateway ${n.gateway === 'dhcp' ? 'from DHCP' : (n.gateway ?? 'none')}, DNS ${n.dns === 'dhcp' ? 'from DHCP' : n.dns.join(', ')}, domain ${n.domain || '-'}`,
    `  compute nodes: subnet ${n.provisioning.subnet.id} on ${n.provisioning.nic}, pool ${n.provisioning.subnet.pool?.start}-${n.provisioning.subnet.pool?.end}`,
    '',
    `kits:        ${p.kits.fromMedia === 'all' ? 'every kit on the installation medium' : p.kits.fromMedia.join(', ')}${p.kits.urls.length ? `, and ${p.kits.urls.map((u) => u.url).join(', ')}` : ''}`,
    `node groups: ${p.nodeGroups === 'default' ? 'compute, from the first OS kit' : p.nodeGroups.map((g) => `${g.name} (${g.kits.join(', ')})`).join('; ')}`,
    ...(p.operatorCa ? [`operators:   the site CA's, and those of ${describeOperatorCa(p.operatorCa)}`] : []),
    ...(p.nodes.length ? ['', 'registered nodes (state birth: their first network boot installs them):'] : []),
    ...describeNodes(p.nodes),
  ];
  return `${lines.join('\n')}\n`;
}
