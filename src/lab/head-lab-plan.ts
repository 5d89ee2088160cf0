// The head-node lab on paper (pure): its two networks, the head node's NICs and disks, the compute
// nodes' MACs and addresses, and the answer file the head node installs from. One head node with
// a NIC on each network and two blank disks that pass the 40 GB rule only together (so LVM spans
// both), and compute nodes with one NIC on the provisioning network, registered in the answers
// (Kusu's addhost pre-populate mode) so the head node births them as soon as it serves.
import path from 'node:path';
import type { Firmware } from './qemu.ts';

/** The public network: the lab's own address, and the one its DHCP reserves for the head node. */
export const PUBLIC = {
  bridge: 'br-pub',
  network: '192.0.2.0',
  mask: '255.255.255.0',
  router: '192.0.2.1',
  head: '192.0.2.10',
} as const;

/**
 * The provisioning network: the head node's address is the wizard's default, so Enter on its
 * network screen gives the lab's. The namespace holds a passive address below the compute nodes'
 * and the pool, only to reach the head node's servers (they listen on this network alone).
 */
export const PROVISIONING = {
  bridge: 'br-prov',
  head: '10.1.0.1',
  prefix: 24,
  lab: '10.1.0.2',
} as const;

/** 30 GiB each: 32.2 GB, so only both disks together pass the setup's 40 GB rule. */
export const HEAD_DISK_GIB = 30;

export interface HeadLabOptions {
  dir: string;
  compute: number;
  firmware: Firmware;
}

export interface ComputeNode {
  hostname: string;
  mac: string;
  ip: string;
  tap: string;
  disk: string;
  uefiVars?: string;
  serialLog: string;
}

export interface HeadLabPlan {
  head: {
    hostname: string;
    nics: { role: 'public' | 'provisioning'; mac: string; tap: string; bridge: string }[];
    disks: string[];
    uefiVars?: string;
    serialLog: string;
  };
  compute: ComputeNode[];
  /** The lab's answers, written each run as a starting point for --answers. */
  answersFile: string;
  iso: string;
}

const hex = (n: number) => n.toString(16).padStart(2, '0');

export function headLabPlan(o: HeadLabOptions): HeadLabPlan {
  if (!Number.isInteger(o.compute) || o.compute < 0 || o.compute > 20)
    throw new Error(`--compute ${o.compute}: give 0 to 20 compute nodes`);
  const logs = path.join(o.dir, 'logs');
  const uefi = (name: string) => (o.firmware === 'uefi' ? { uefiVars: path.join(o.dir, `${name}.uefi-vars`) } : {});
  return {
    head: {
      hostname: 'head.lab.test',
      nics: [
        { role: 'public', mac: '52:54:00:10:00:01', tap: 'tap-head-pub', bridge: PUBLIC.bridge },
        { role: 'provisioning', mac: '52:54:00:10:00:02', tap: 'tap-head-prov', bridge: PROVISIONING.bridge },
      ],
      disks: ['a', 'b'].map((d) => path.join(o.dir, `head-disk-${d}.raw`)),
      ...uefi('head'),
      serialLog: path.join(logs, 'head.console.log'),
    },
    compute: Array.from({ length: o.compute }, (_, n) => {
      const i = n + 1;
      const hostname = `compute${i}`;
      return {
        hostname,
        mac: `52:54:00:10:01:${hex(i)}`,
        ip: `10.1.0.${10 + i}`,
        tap: `tap-${hostname}`,
        disk: path.join(o.dir, `${hostname}.disk`),
        ...uefi(hostname),
        serialLog: path.join(logs, `${hostname}.console.log`),
      };
    }),
    answersFile: path.join(o.dir, 'head-answers.yaml'),
    iso: path.join(o.dir, 'head-node.iso'),
  };
}

/**
 * The head node's answers, in the shape the wizard writes them (so the wizard's file and this one
 * compare): settings that are not the defaults, so the checks prove they were applied; the public
 * side by DHCP (the lab reserves the address), the provisioning side the wizard's default; both
 * disks, the default layout, every kit on the medium; the compute nodes; and the lab's CA as an
 * operators' CA, so the lab's operator certificate reads the head node's API.
 */
export function labHeadAnswers(
  plan: HeadLabPlan,
  o: { password: string; operatorCa: string },
): Record<string, unknown> {
  const [pub, prov] = plan.head.nics;
  return {
    cradleSetup: 1,
    language: 'en_US.UTF-8',
    keyboard: 'de',
    timezone: 'Europe/Berlin',
    hostname: plan.head.hostname,
    rootPassword: { plain: o.password },
    network: {
      interfaces: [
        { match: { mac: pub.mac }, role: 'public', ipv4: 'dhcp' },
        { match: { mac: prov.mac }, role: 'provisioning', ipv4: `${PROVISIONING.head}/${PROVISIONING.prefix}` },
      ],
      gateway: 'dhcp',
      dns: 'dhcp',
    },
    disks: { pick: 'all', layout: 'default' },
    kits: { fromMedia: 'all', urls: [] },
    nodes: plan.compute.map((c) => ({ hostname: c.hostname, mac: c.mac, ip: c.ip, nodeGroup: 'compute' })),
    operators: { ca: o.operatorCa },
  };
}
