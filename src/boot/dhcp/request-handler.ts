// One DHCP request answered: the client looked up in the inventory, the policy's decision
// (policy.ts), the lease it asks for taken or renewed (lease-batch.ts, group commit), its side
// effects applied (a lease released, a declined address held back, the firmware recorded, an
// unknown machine reported) and the reply sent.
import type { Inventory, Lease, Subnet } from '../../inventory/types.ts';
import {
  type DhcpPacket,
  encodeDhcpPacket,
  MessageType,
  messageType,
  messageTypeName,
} from '../../protocols/dhcp/packet.ts';
import type { LeaseWrites } from './lease-batch.ts';
import type { LimitedLog } from '../../util/limited-log.ts';
import { inSubnet } from './ipv4-subnet.ts';
import { answer } from './policy.ts';
import { RecentMacs } from './recent-macs.ts';
import type { Decision, DhcpServerConfig, PolicyContext } from './policy-types.ts';
import type { ReplySender } from './reply-sender.ts';
import type { ServedNetworks } from './served-networks.ts';
import type { DhcpServerStats, UnknownMachineInfo, Via } from './types.ts';

const UNKNOWN_REPORT_MS = 60_000;
const DECLINE_HOLD_MS = 600_000; // as dnsmasq: a declined address is not offered for 10 minutes
/**
 * MACs last found registered, and MACs last sent an OFFER or ACK, kept for the receive queue's
 * lanes (receive-queue.ts): at most this many of each.
 */
const RECENT_MACS = 100_000;

export interface RequestHandlerDeps {
  inventory: Inventory;
  config: DhcpServerConfig;
  leases: LeaseWrites;
  networks: ServedNetworks;
  replies: ReplySender;
  stats: DhcpServerStats;
  log: (line: string) => void;
  /** Lines about single answers, rate-limited. */
  answerLog: LimitedLog;
  onUnknownMachine?: (mac: string, info: UnknownMachineInfo) => Promise<void>;
}

export interface RequestHandler {
  handle(p: DhcpPacket, mac: string, via: Via, where: string): Promise<void>;
  /** Whether `mac` was a registered machine when last looked up (its DISCOVERs go first). */
  isRegistered(mac: string): boolean;
  /** Whether `mac` was recently sent an OFFER or ACK (its REQUEST continues an exchange). */
  wasAnswered(mac: string): boolean;
  /**
   * Learns the registered machines and the clients holding leases from the inventory, so that
   * after a restart their requests still go ahead of unknown MACs' before each is looked up.
   */
  learnFromInventory(): Promise<void>;
}

/** The message type, or undefined for a packet without a valid one (the policy refuses it). */
export function safeType(p: DhcpPacket): number | undefined {
  try {
    return messageType(p);
  } catch {
    return undefined;
  }
}

export function requestHandler(deps: RequestHandlerDeps): RequestHandler {
  const { inventory: inv, config, leases, networks, replies, stats, log, answerLog } = deps;
  const registered = new RecentMacs(RECENT_MACS);
  const answered = new RecentMacs(RECENT_MACS);
  const declined = new Map<string, number>();
  const reported = new Map<string, number>();

  const isDeclined = (ip: string) => (declined.get(ip) ?? 0) > Date.now();
  /** Drops expired entries once a map is large: a stream of random MACs must not grow memory. */
  const remember = (m: Map<string, number>, key: string, until: number) => {
    if (m.size >= 10_000) for (const [k, t] of m) if (t < Date.now()) m.delete(k);
    if (m.size < 100_000) m.set(key, until);
  };

  /** A request left unanswered, and why (in the log). */
  function unanswered(why: string): void {
    stats.unanswered++;
    answerLog.line(why);
  }

  async function handle(p: DhcpPacket, mac: string, via: Via, where: string): Promise<void> {
    const list = await networks.listSubnets();
    let serverIp: string | undefined;
    let subnet: Subnet | undefined;
    if (via.kind === 'link') {
      const v = networks.linkView(via.ifname, list);
      if (!v) return unanswered(`${where}: no IPv4 address on ${via.ifname}: cannot answer ${mac}`);
      ({ serverIp, subnet } = v);
    } else {
      const anchor = p.giaddr !== '0.0.0.0' ? p.giaddr : p.ciaddr !== '0.0.0.0' ? p.ciaddr : via.source;
      subnet = list.find((s) => inSubnet(anchor, s));
      serverIp = networks.addressFacing(via.source);
      if (!serverIp) return unanswered(`${where}: no address of ours to answer from`);
    }
    // Not Ethernet: the policy refuses it anyway, and the inventory is not asked about a non-MAC.
    const ethernet = p.htype === 1 && p.hlen === 6;
    const [machine, lease] = ethernet
      ? await Promise.all([inv.findMachineByMac(mac), inv.getLease(mac)])
      : [undefined, undefined];
    if (machine) registered.add(mac);
    else registered.delete(mac);
    const ctx: PolicyContext = {
      serverIp,
      interfaceSubnet: subnet,
      machine,
      lease,
      now: new Date(),
      config,
      port: via.kind === 'udp' ? via.port : 67,
      source: via.kind === 'udp' ? { ip: via.source, port: via.sourcePort } : undefined,
    };
    let d: Decision = answer(p, ctx);
    for (let round = 0; d.leaseWanted && round < 2; round++) {
      const w = d.leaseWanted;
      const got: Lease | undefined = await leases.allocate(mac, w.subnetId, w.seconds, ctx.now, w.hostname);
      if (got && isDeclined(got.ip)) {
        await leases.release(mac);
        return unanswered(
          `${where}: ${mac}: the pool gave ${got.ip}, declined by a client as in use; not offering it for now`,
        );
      }
      d = answer(p, { ...ctx, lease: got, leaseUnavailable: !got });
    }
    const who = machine ? `${mac} (${machine.hostname}, ${machine.state})` : `${mac} (unknown)`;
    const line = `${where}: ${messageTypeName(safeType(p))} from ${who}: ${d.leaseWanted ? 'the inventory gave no usable lease' : d.log}`;
    await effects(d, p, mac, via, machine?.hostname, subnet);
    if (!d.reply || !d.to || d.leaseWanted) return unanswered(line);
    if (d.reply.yiaddr && d.reply.yiaddr === lease?.ip && isDeclined(d.reply.yiaddr)) {
      return unanswered(
        `${where}: ${mac}: its lease ${d.reply.yiaddr} was declined as in use; not offering it for now`,
      );
    }
    replies.send(encodeDhcpPacket(d.reply), d, via, serverIp);
    const t = d.reply.options?.get(53)?.[0];
    if (t === MessageType.OFFER || t === MessageType.ACK) answered.add(mac);
    if (t === MessageType.OFFER) stats.offers++;
    else if (t === MessageType.ACK) stats.acks++;
    else if (t === MessageType.NAK) stats.naks++;
    if (d.to.kind === 'relay') stats.relayed++;
    answerLog.line(line);
  }

  async function effects(
    d: Decision,
    p: DhcpPacket,
    mac: string,
    via: Via,
    hostname: string | undefined,
    subnet?: Subnet,
  ): Promise<void> {
    if (d.releaseLease) await leases.release(mac);
    if (d.declined) {
      remember(declined, d.declined, Date.now() + DECLINE_HOLD_MS);
      log(`WARNING: ${mac} declined ${d.declined}: another host uses that address`);
    }
    if (d.machinePatch && hostname) {
      await inv
        .updateMachine(hostname, d.machinePatch)
        .catch((err) => log(`recording firmware of ${hostname} failed: ${(err as Error).message}`));
    }
    const u = d.unknownMachine;
    if (u && deps.onUnknownMachine && (reported.get(mac) ?? 0) < Date.now()) {
      remember(reported, mac, Date.now() + UNKNOWN_REPORT_MS);
      const info: UnknownMachineInfo = {
        interface: via.kind === 'link' ? via.ifname : undefined,
        relay: p.giaddr !== '0.0.0.0' ? p.giaddr : undefined,
        subnetId: u.subnetId ?? subnet?.id,
        served: u.served,
        firmware: u.firmware,
        arch: u.arch,
      };
      // Not awaited: registering must not delay the answer; the next packet finds the machine.
      void deps
        .onUnknownMachine(mac, info)
        .catch((err) => log(`onUnknownMachine(${mac}) failed: ${(err as Error).message}`));
    }
  }

  async function learnFromInventory(): Promise<void> {
    const [machines, held] = await Promise.all([inv.listMachines(), inv.listLeases()]);
    for (const m of machines) for (const mac of m.macs) registered.add(mac);
    for (const l of held) answered.add(l.mac);
  }

  return {
    handle,
    isRegistered: (mac) => registered.has(mac),
    wasAnswered: (mac) => answered.has(mac),
    learnFromInventory,
  };
}
