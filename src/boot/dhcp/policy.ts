// What Cradle's DHCP server answers, as a pure function of the request and what the machine
// database knows: no sockets, no clock, no database. server.ts does the I/O around it (finds the
// subnet, the machine and its lease, allocates, sends). Keeping every rule here makes them
// golden-testable in milliseconds (policy.test.ts) and keeps the I/O layer dumb. The decision is
// here; what the request says about its client is client-kind.ts, the reply packets are built in
// reply-packets.ts, the types of the contract are policy-types.ts, IPv4 arithmetic ipv4-subnet.ts.
//
// The rules, and why (docs/dhcp-server.md has the full table):
// - A known machine's primary MAC (macs[0]) with a static ip gets that ip (a reservation, no lease
//   row); its other MACs and known machines without an ip get a pool lease like anyone else.
// - Unknown MACs get nothing unless config.unknownMachines allows it and the subnet has a pool.
// - Only machines whose state wants an install (birth, rebirth, clean, installing; unknown ones
//   with unknownMachines 'birth') get boot information. Healthy, failed and 'unknown'-state
//   machines get an address and no boot file: PXE firmware without a file name gives up at once
//   and the BIOS/UEFI boot order moves on to the local disk. No HTTP round trip, nothing to break.
// - PXE firmware gets the iPXE binary for its architecture by TFTP; iPXE gets the URL of its
//   per-machine script, so a second DHCP round (iPXE's own) moves the chain from TFTP to HTTP.
import type { MachineState } from '../../inventory/types.ts';
import {
  BOOTREQUEST,
  MessageType,
  Opt,
  formatMac,
  hardwareAddress,
  messageType,
  messageTypeName,
  optionIp,
  type DhcpPacket,
} from '../../protocols/dhcp/packet.ts';
import { clientHostname, clientKind, firmwarePatch, lenient, type ClientKind } from './client-kind.ts';
import { inSubnet } from './ipv4-subnet.ts';
import type { Decision, Destination, PolicyContext } from './policy-types.ts';
import { destination, inform, nak, proxyReply, reply, type Offerable } from './reply-packets.ts';

export const PXE_PORT = 4011;
const INSTALL_STATES: ReadonlySet<MachineState> = new Set(['birth', 'rebirth', 'clean', 'installing']);

/** Decides the answer to one decoded request. Never throws for anything the codec decodes. */
export function answer(p: DhcpPacket, ctx: PolicyContext): Decision {
  try {
    return decide(p, ctx);
  } catch (err) {
    return { log: `ignored: ${(err as Error).message}` };
  }
}

function decide(p: DhcpPacket, ctx: PolicyContext): Decision {
  const type = messageType(p);
  if (p.op !== BOOTREQUEST) return { log: `ignored: op ${p.op} is not a BOOTREQUEST` };
  if (p.htype !== 1 || p.hlen !== 6)
    return { log: `ignored: hardware type ${p.htype}/length ${p.hlen} is not Ethernet` };
  if (type === undefined) return { log: 'ignored: BOOTP (no option 53); Cradle answers DHCP only' };
  if (p.hops > 16) return { log: `ignored: ${p.hops} relay hops` };
  const mac = formatMac(hardwareAddress(p));
  if (/^(00:){5}00$|^(ff:){5}ff$/.test(mac) || parseInt(mac.slice(0, 2), 16) & 1)
    return { log: `ignored: ${mac} is not a unicast MAC` };
  const cfg = ctx.config;
  const kind = clientKind(p);
  const known = ctx.machine;
  const boot = known ? INSTALL_STATES.has(known.state) : cfg.unknownMachines === 'birth';
  const machinePatch = firmwarePatch(known, kind);
  const withPatch = (d: Decision): Decision => (machinePatch ? { ...d, machinePatch } : d);

  if (ctx.port === PXE_PORT) return withPatch(pxeBootServer(p, ctx, kind, boot, mac));
  if (cfg.mode === 'proxy') return withPatch(proxy(p, ctx, kind, boot, mac, type));

  const subnet = ctx.interfaceSubnet;
  const unknownReport = (served: boolean): Decision['unknownMachine'] =>
    !known && type === MessageType.DISCOVER
      ? { mac, subnetId: subnet?.id, served, firmware: kind.firmware, arch: kind.arch }
      : undefined;
  const serverId = lenient(() => optionIp(p.options, Opt.SERVER_ID));
  const requested = lenient(() => optionIp(p.options, Opt.REQUESTED_IP));

  if (type === MessageType.INFORM) {
    if (!known && cfg.unknownMachines !== 'ignore' && cfg.unknownMachines !== undefined && subnet)
      return inform(p, ctx, subnet, undefined);
    if (known && subnet) return inform(p, ctx, subnet, known.hostname);
    return { log: 'INFORM ignored: unknown machine or no subnet for this network' };
  }
  if (type === MessageType.RELEASE || type === MessageType.DECLINE) {
    if (serverId !== ctx.serverIp)
      return { log: `${messageTypeName(type)} for server ${serverId ?? '(none)'}, not us` };
    const addr = type === MessageType.RELEASE ? p.ciaddr : requested;
    const ours = ctx.lease && ctx.lease.ip === addr;
    // A reservation has no lease row: its primary MAC holds the address all the same.
    const reserved = known?.ip !== undefined && known.ip === addr && known.macs[0] === mac;
    if (type === MessageType.RELEASE)
      return ours
        ? { releaseLease: true, log: `RELEASE of ${addr}: lease freed` }
        : { log: `RELEASE of ${addr}: no such lease` };
    // Only the client holding the address can say another host uses it: anyone else's DECLINE
    // (any MAC, or a relayed packet from off the link) would keep an address of its choosing out
    // of offers, and the lowest free one is every new client's.
    if (!ours && !reserved)
      return { log: `DECLINE of ${addr ?? '(no address)'}: ${mac} holds no lease of it; ignored` };
    return {
      releaseLease: ours || undefined,
      declined: addr,
      log: `DECLINE: ${addr} is in use by another host; kept out of offers`,
    };
  }
  if (type !== MessageType.DISCOVER && type !== MessageType.REQUEST)
    return { log: `ignored: ${messageTypeName(type)} from a client` };

  if (!subnet)
    return { unknownMachine: unknownReport(false), log: 'no subnet in the inventory for this network: not answering' };
  if (!known && (cfg.unknownMachines ?? 'ignore') === 'ignore')
    return {
      unknownMachine: unknownReport(false),
      log: `unknown machine ${mac}: not answering (unknownMachines is 'ignore')`,
    };

  // What this client may have here.
  let offer: Offerable | undefined;
  const staleLeaseRow = !!known?.ip && known.macs[0] === mac && !!ctx.lease;
  if (known?.ip && known.macs[0] === mac) {
    if (!inSubnet(known.ip, subnet))
      return { log: `${known.hostname}'s address ${known.ip} is not on this network (${subnet.id}): not answering` };
    offer = {
      ip: known.ip,
      subnet,
      seconds: cfg.staticLeaseSeconds ?? 172_800,
      dynamic: false,
      hostname: known.hostname,
    };
  } else if (!subnet.pool) {
    return withPatch({
      unknownMachine: unknownReport(false),
      log: `${known ? known.hostname : mac} has no reserved address and subnet ${subnet.id} has no pool: not answering`,
    });
  }
  const poolSeconds = cfg.poolLeaseSeconds ?? 14_400;
  const leaseHere = ctx.lease && ctx.lease.subnetId === subnet.id ? ctx.lease : undefined;
  const hostname = known?.hostname ?? clientHostname(p);
  const leaseFor = (minSeconds: number): Offerable | Decision => {
    const fresh = leaseHere && Date.parse(leaseHere.expiresAt) >= ctx.now.getTime() + (minSeconds - 5) * 1000;
    if (fresh) return { ip: leaseHere.ip, subnet, seconds: poolSeconds, dynamic: true, hostname: known?.hostname };
    if (ctx.leaseUnavailable) return { log: `pool of ${subnet.id} is exhausted: not answering` };
    return { leaseWanted: { subnetId: subnet.id, seconds: minSeconds, hostname }, log: 'needs a lease' };
  };

  if (type === MessageType.DISCOVER) {
    if (!offer) {
      const l = leaseFor(
        leaseHere && Date.parse(leaseHere.expiresAt) > ctx.now.getTime() ? 5 : (cfg.offerHoldSeconds ?? 60),
      );
      if (!('ip' in l)) return withPatch({ ...l, unknownMachine: l.leaseWanted ? undefined : unknownReport(false) });
      offer = l;
    }
    const d = reply(p, ctx, MessageType.OFFER, offer, kind, boot, mac);
    return withPatch({ ...d, releaseLease: staleLeaseRow || undefined, unknownMachine: unknownReport(true) });
  }

  // REQUEST: which state the client is in decides what it asks for (RFC 2131 4.3.2).
  const selecting = serverId !== undefined;
  if (selecting && serverId !== ctx.serverIp) return { log: `REQUEST selects server ${serverId}, not us` };
  const asked = selecting || p.ciaddr === '0.0.0.0' ? requested : p.ciaddr;
  const state = selecting ? 'selecting' : p.ciaddr === '0.0.0.0' ? 'init-reboot' : 'renewing';
  if (!asked) return { log: `REQUEST (${state}) names no address` };
  if (!inSubnet(asked, subnet)) return nak(p, ctx, `${asked} is not on this network (${subnet.id})`);
  if (!offer) {
    // A pool client: its lease must already exist, except in SELECTING where we offered it.
    if (!leaseHere && !selecting) {
      return ctx.config.authoritative === false
        ? { log: `REQUEST (${state}) for ${asked}: no lease on record, silent` }
        : nak(p, ctx, `no lease for ${asked}`);
    }
    if (leaseHere && leaseHere.ip !== asked)
      return nak(p, ctx, `${asked} is not this client's lease (${leaseHere.ip})`);
    const l = leaseFor(poolSeconds);
    if (!('ip' in l)) return withPatch(l);
    offer = l;
  }
  if (offer.ip !== asked) return nak(p, ctx, `${asked} is not this client's address (${offer.ip})`);
  const d = reply(p, ctx, MessageType.ACK, offer, kind, boot, mac);
  return withPatch({ ...d, releaseLease: staleLeaseRow || undefined, log: `${state}: ${d.log}` });
}

/** proxyDHCP on port 67: answer PXE DISCOVERs with boot information only, no address. */
function proxy(p: DhcpPacket, ctx: PolicyContext, k: ClientKind, boot: boolean, mac: string, type: number): Decision {
  const who = ctx.machine ? `${ctx.machine.hostname} (${ctx.machine.state})` : `unknown machine ${mac}`;
  if (!k.pxe) return { log: 'proxyDHCP: not a PXE client, not answering' };
  const unknownMachine =
    !ctx.machine && type === MessageType.DISCOVER
      ? { mac, served: boot, firmware: k.firmware, arch: k.arch }
      : undefined;
  if (!boot) return { unknownMachine, log: `proxyDHCP: ${who} does not boot the installer, not answering` };
  const serverId = lenient(() => optionIp(p.options, Opt.SERVER_ID));
  let replyType: number;
  if (type === MessageType.DISCOVER) replyType = MessageType.OFFER;
  else if (type === MessageType.REQUEST && serverId === ctx.serverIp) replyType = MessageType.ACK;
  else return { log: `proxyDHCP: ${messageTypeName(type)} is for the address server` };
  const d = proxyReply(p, ctx, k, mac, replyType, destination(p, '0.0.0.0', mac));
  return { ...d, unknownMachine };
}

/** Port 4011: the PXE client, now with an address, asks the proxy for its boot file (an ACK). */
function pxeBootServer(p: DhcpPacket, ctx: PolicyContext, k: ClientKind, boot: boolean, mac: string): Decision {
  const type = messageType(p);
  if (type !== MessageType.REQUEST && type !== MessageType.INFORM)
    return { log: `port ${PXE_PORT}: ${messageTypeName(type)} ignored` };
  if (!k.pxe || !boot) return { log: `port ${PXE_PORT}: no boot for ${ctx.machine?.hostname ?? mac}` };
  const to: Destination = ctx.source ? { kind: 'source', ...ctx.source } : destination(p, '0.0.0.0', mac);
  return proxyReply(p, ctx, k, mac, MessageType.ACK, to);
}
