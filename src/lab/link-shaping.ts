// The lab's link at a real rate (`cradle lab --link-mbit N`): every machine shares N Mbit/s with
// the others in each direction, as machines behind one switch port of the servers would. Pure:
// the commands, to run in the lab's namespace (LabNetwork.shapeLink).
//
// The lab's host kernel has few qdiscs (no netem, fq_codel, sfq or police action; checked with
// `tc qdisc add` in a throwaway namespace): HTB, TBF, plain FIFOs, the ingress qdisc, the u32 classifier,
// the mirred action and IFB devices are there, so:
//  - servers to machines: what the namespace's servers send leaves through the bridge device's
//    own egress, so one HTB class there holds every machine's download;
//  - machines to servers: frames the bridge passes up to the namespace enter the bridge device's
//    ingress, which has no shaping queue of its own; a u32 filter matching everything redirects
//    them to an IFB device whose egress carries the same HTB class, then the IFB hands them back.
// Traffic between two machines (none in the lab) is switched tap to tap and is not limited.

export interface LinkShaping {
  namespace: string;
  bridge: string;
  /** Mbit/s shared by every machine on the bridge, in each direction. */
  mbit: number;
}

/** The IFB device that carries a bridge's upstream queue (names stay within IFNAMSIZ). */
export function ifbFor(bridge: string): string {
  return `ifb-${bridge}`.slice(0, 15);
}

/**
 * The HTB class's token burst: 5 ms at the rate, at least 32 KiB (HTB's default of rate/HZ is too
 * small above a few hundred Mbit/s: the class then cannot reach its rate between timer ticks).
 */
export function burstBytes(mbit: number): number {
  return Math.max(32 * 1024, Math.ceil((mbit * 1e6 * 0.005) / 8));
}

/**
 * The queue behind the class: 100 ms at the rate, at least 256 KiB (a bridge has no transmit
 * queue, and HTB's default leaf FIFO takes its length from it: one packet).
 */
export function queueBytes(mbit: number): number {
  return Math.max(256 * 1024, Math.ceil((mbit * 1e6 * 0.1) / 8));
}

/** The commands (argv) that shape `bridge` in `namespace`, in order. */
export function linkShapingCommands(s: LinkShaping): string[][] {
  if (!Number.isInteger(s.mbit) || s.mbit < 1 || s.mbit > 100_000)
    throw new Error(`link rate ${s.mbit} Mbit/s: give a whole number from 1 to 100000 (--link-mbit)`);
  const tc = (...args: string[]) => ['tc', '-n', s.namespace, ...args];
  const ifb = ifbFor(s.bridge);
  const rate = `${s.mbit}mbit`;
  const burst = `${burstBytes(s.mbit)}b`;
  const shape = (dev: string) => [
    tc('qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1'),
    tc(
      'class',
      'add',
      'dev',
      dev,
      'parent',
      '1:',
      'classid',
      '1:1',
      'htb',
      'rate',
      rate,
      'ceil',
      rate,
      'burst',
      burst,
      'cburst',
      burst,
    ),
    tc('qdisc', 'add', 'dev', dev, 'parent', '1:1', 'handle', '10:', 'bfifo', 'limit', `${queueBytes(s.mbit)}b`),
  ];
  return [
    ...shape(s.bridge),
    ['ip', '-n', s.namespace, 'link', 'add', ifb, 'type', 'ifb'],
    ['ip', '-n', s.namespace, 'link', 'set', ifb, 'up'],
    ...shape(ifb),
    tc('qdisc', 'add', 'dev', s.bridge, 'handle', 'ffff:', 'ingress'),
    tc(
      'filter',
      'add',
      'dev',
      s.bridge,
      'parent',
      'ffff:',
      'protocol',
      'all',
      'u32',
      'match',
      'u32',
      '0',
      '0',
      'action',
      'mirred',
      'egress',
      'redirect',
      'dev',
      ifb,
    ),
  ];
}
