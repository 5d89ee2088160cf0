// What Cradle's DHCP server answers, as a pure function of the request and what the machine
// database knows: no sockets, no clock, no database. server.ts does the I/O around it (finds the
// subnet, the machine and its lease, allocates, sends). Keeping every rule here makes them
// golden-testable in milliseconds (policy.test.ts) and keeps the I/O layer dumb.
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
import type { Lease, Machine, MachineState, Subnet } from '../../inventory/types.ts';
import {
  BOOTREPLY,
  BOOTREQUEST,
  MessageType,
  Opt,
  formatMac,
  hardwareAddress,
  ipv4ToInt,
  messageType,
  messageTypeName,
  optionIp,
  optionString,
  optionU16,
  parseIp,
  type DhcpPacket,
  type DhcpPacketInit,
} from '../../protocols/dhcp/packet.ts';

export interface DhcpServerConfig {
  /** 'server' hands out addresses; 'proxy' (proxyDHCP) only adds boot information for PXE clients. Default 'server'. */
  mode?: 'server' | 'proxy';
  /** MACs not in the inventory: 'ignore' (default), 'lease' (pool address only), 'birth' (pool address + installer). */
  unknownMachines?: 'ignore' | 'lease' | 'birth';
  /** Reservations; default 172800 (48 h, as the original). */
  staticLeaseSeconds?: number;
  /** Pool leases; default 14400 (4 h, as the original). */
  poolLeaseSeconds?: number;
  /** How long an offered pool address is held for the client's REQUEST; default 60. */
  offerHoldSeconds?: number;
  /** NAK requests for addresses we know are not the client's even without a record of it; default true. */
  authoritative?: boolean;
  /** TFTP server (siaddr, option 66); default the server's own address on that network. */
  tftpServer?: string;
  /** Base of the HTTP boot server; default http://<server address>:6977. */
  httpBootUrl?: string;
  /** iPXE binaries served by TFTP, by firmware. */
  bootFiles?: Partial<Record<Firmware, string>>;
}

export type Firmware = 'bios' | 'uefi32' | 'uefi64' | 'arm64';
export const DEFAULT_BOOT_FILES: Record<Firmware, string> = {
  bios: 'undionly.kpxe',
  uefi32: 'ipxe-i386.efi',
  uefi64: 'ipxe.efi',
  arm64: 'ipxe-arm64.efi',
};
/** RFC 4578 / IANA processor architecture types (option 93) → the iPXE build for it. */
const ARCH_FIRMWARE = new Map<number, Firmware>([
  [0, 'bios'],
  [6, 'uefi32'],
  [7, 'uefi64'],
  [9, 'uefi64'],
  [11, 'arm64'],
]);
const INSTALL_STATES: ReadonlySet<MachineState> = new Set(['birth', 'rebirth', 'clean', 'installing']);
/** PXE vendor options (option 43): PXE_DISCOVERY_CONTROL = 8, "boot the file in this offer, no boot-server discovery". */
const PXE_VENDOR_OPTIONS = Buffer.from([6, 1, 8, 255]);
export const PXE_PORT = 4011;

export interface PolicyContext {
  /** Our address on the network the request came from (server identifier, default siaddr). */
  serverIp: string;
  /** The subnet of the receiving interface, or the one containing giaddr for relayed requests. */
  interfaceSubnet?: Subnet;
  /** The machine whose macs include chaddr. */
  machine?: Machine;
  /** The lease the inventory holds for chaddr (any subnet, possibly expired). */
  lease?: Lease;
  /** Set when allocateLease was asked (leaseWanted) and gave nothing: the pool is exhausted. */
  leaseUnavailable?: boolean;
  /** UDP port the request came to: 67, or 4011 (PXE boot-server requests of proxyDHCP clients). */
  port?: number;
  /** The request's source, for port 4011 replies. */
  source?: { ip: string; port: number };
  now: Date;
  config: DhcpServerConfig;
}

export type Destination =
  | { kind: 'broadcast' } // 255.255.255.255:68 as an Ethernet broadcast on the receiving interface
  | { kind: 'unicast'; ip: string; mac: string } // ip:68 sent straight to the client's MAC (no ARP needed)
  | { kind: 'relay'; ip: string } // giaddr:67 over UDP, the relay delivers it
  | { kind: 'source'; ip: string; port: number }; // back to where a port-4011 request came from

export interface Decision {
  reply?: DhcpPacketInit;
  to?: Destination;
  /** allocateLease(mac, subnetId, seconds, now, hostname), then ask again with the lease. */
  leaseWanted?: { subnetId: string; seconds: number; hostname?: string };
  releaseLease?: boolean;
  /** An address the client found in use (DECLINE): keep it out of offers. */
  declined?: string;
  /** An unknown MAC asked (DISCOVER): for the caller to register (state birth) or report. */
  unknownMachine?: { mac: string; subnetId?: string; served: boolean; firmware?: Firmware; arch?: number };
  /** What the request taught us about a known machine (option 93). */
  machinePatch?: { firmware: 'bios' | 'uefi' };
  log: string;
}

// ---- small helpers -------------------------------------------------------------------------

export const ipToInt = (ip: string): number => ipv4ToInt(ip);
export const intToIp = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** Is `ip` inside `subnet` (gateway & mask)? */
export function inSubnet(ip: string, subnet: Subnet): boolean {
  const mask = ipToInt(subnet.mask);
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(subnet.gateway) & mask) >>> 0;
}

export const broadcastOf = (s: Subnet): string => intToIp((ipToInt(s.gateway) | ~ipToInt(s.mask)) >>> 0);

/** A malformed optional option is treated as absent: it must not cost the client its answer. */
function lenient<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const ips = (list: string[]) => Buffer.concat(list.map(parseIp));

/** What the request says about the client's boot firmware. */
export interface ClientKind {
  pxe: boolean;
  ipxe: boolean;
  arch?: number;
  firmware?: Firmware;
}

export function clientKind(p: DhcpPacket): ClientKind {
  const vendor = lenient(() => optionString(p.options, Opt.VENDOR_CLASS)) ?? '';
  const pxe = vendor.startsWith('PXEClient');
  // iPXE sends option 77 as the bare string "iPXE"; RFC 3004 clients length-prefix each class.
  const uc = p.options.get(77);
  const ipxe =
    !!uc && (uc.toString('latin1') === 'iPXE' || (uc[0] === 4 && uc.subarray(1, 5).toString('latin1') === 'iPXE'));
  // Option 93 first; PXE ROMs also encode it in option 60 ("PXEClient:Arch:00007:UNDI:003016").
  let arch = lenient(() => optionU16(p.options, Opt.CLIENT_ARCH));
  if (arch === undefined && p.options.get(Opt.CLIENT_ARCH)?.length)
    arch = lenient(() => p.options.get(Opt.CLIENT_ARCH)!.readUInt16BE(0));
  if (arch === undefined) {
    const m = /^PXEClient:Arch:(\d{5})/.exec(vendor);
    if (m) arch = Number(m[1]);
  }
  return { pxe: pxe || ipxe, ipxe, arch, firmware: arch === undefined ? undefined : ARCH_FIRMWARE.get(arch) };
}

// ---- the decision --------------------------------------------------------------------------

interface Offerable {
  ip: string;
  subnet: Subnet;
  seconds: number;
  /** undefined: a reservation (no lease row); else the lease row that must exist. */
  dynamic: boolean;
  hostname?: string;
}

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
    if (type === MessageType.RELEASE)
      return ours
        ? { releaseLease: true, log: `RELEASE of ${addr}: lease freed` }
        : { log: `RELEASE of ${addr}: no such lease` };
    return {
      releaseLease: !!ours,
      declined: addr,
      log: `DECLINE: ${addr ?? '(no address)'} is in use by another host; kept out of offers`,
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

/** The client's option 12 if it is a valid host name (the inventory refuses others), lower-cased. */
function clientHostname(p: DhcpPacket): string | undefined {
  const h = lenient(() => optionString(p.options, Opt.HOSTNAME))?.toLowerCase();
  return h && h.length <= 253 && h.split('.').every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l))
    ? h
    : undefined;
}

function firmwarePatch(m: Machine | undefined, k: ClientKind): Decision['machinePatch'] {
  if (!m || k.arch === undefined || !k.pxe) return undefined;
  const fw = k.arch === 0 ? 'bios' : 'uefi';
  return m.firmware === fw ? undefined : { firmware: fw };
}

/** The boot file for this client, or why there is none. */
function bootFile(ctx: PolicyContext, k: ClientKind, mac: string): { file?: string; why: string } {
  if (k.ipxe) return { file: `${httpBase(ctx)}/boot/${mac}.ipxe`, why: 'iPXE: HTTP script' };
  if (!k.pxe) return { why: 'not a PXE client' };
  if (!k.firmware) return { why: `no iPXE build for client architecture ${k.arch ?? '(none)'}` };
  return {
    file: ctx.config.bootFiles?.[k.firmware] ?? DEFAULT_BOOT_FILES[k.firmware],
    why: `PXE ${k.firmware}: chainload iPXE`,
  };
}

const httpBase = (ctx: PolicyContext) => (ctx.config.httpBootUrl ?? `http://${ctx.serverIp}:6977`).replace(/\/+$/, '');

/** Options in the client's option-55 order first, then ours; 53 and 54 lead. */
function ordered(p: DhcpPacket, opts: [number, Buffer][]): Map<number, Buffer> {
  const prl = [...(p.options.get(Opt.PARAMETER_REQUEST_LIST) ?? [])];
  const rank = (c: number) =>
    c === Opt.MESSAGE_TYPE ? -2 : c === Opt.SERVER_ID ? -1 : prl.includes(c) ? prl.indexOf(c) : 1000;
  const out = new Map([...opts].sort((a, b) => rank(a[0]) - rank(b[0])));
  // RFC 3046: relay agent information goes back to the relay, last.
  const agent = p.options.get(82);
  if (agent && p.giaddr !== '0.0.0.0') out.set(82, agent);
  return out;
}

/** RFC 2131 4.1: relay, then the client's own address, then broadcast flag, then its MAC. */
function destination(p: DhcpPacket, yiaddr: string, mac: string): Destination {
  if (p.giaddr !== '0.0.0.0') return { kind: 'relay', ip: p.giaddr };
  if (p.ciaddr !== '0.0.0.0') return { kind: 'unicast', ip: p.ciaddr, mac };
  if (p.flags & 0x8000 || yiaddr === '0.0.0.0') return { kind: 'broadcast' };
  return { kind: 'unicast', ip: yiaddr, mac };
}

const base = (p: DhcpPacket) => ({
  op: BOOTREPLY,
  xid: p.xid,
  flags: p.flags & 0x8000,
  giaddr: p.giaddr,
  chaddr: hardwareAddress(p),
});

/** PXE boot options (siaddr, file, 60, 43, 97, 66, 67) when this client should boot the installer. */
function bootOptions(p: DhcpPacket, ctx: PolicyContext, k: ClientKind, mac: string) {
  const tftp = ctx.config.tftpServer ?? ctx.serverIp;
  const b = bootFile(ctx, k, mac);
  const opts: [number, Buffer][] = [[Opt.TFTP_SERVER_NAME, Buffer.from(tftp)]];
  if (b.file) opts.push([Opt.BOOTFILE_NAME, Buffer.from(b.file)]);
  if (k.pxe && b.file) {
    // Echoing PXEClient makes UEFI firmware treat this as a PXE offer; option 43 tells BIOS ROMs
    // to boot the file named here instead of starting boot-server discovery; 97 is echoed (PXE 2.1).
    opts.push([Opt.VENDOR_CLASS, Buffer.from('PXEClient')], [43, PXE_VENDOR_OPTIONS]);
    const uuid = p.options.get(Opt.CLIENT_UUID);
    if (uuid) opts.push([Opt.CLIENT_UUID, uuid]);
  }
  return { siaddr: tftp, file: b.file ?? '', opts, why: b.why };
}

function reply(
  p: DhcpPacket,
  ctx: PolicyContext,
  type: number,
  o: Offerable,
  k: ClientKind,
  boot: boolean,
  mac: string,
): Decision {
  const s = o.subnet;
  const opts: [number, Buffer][] = [
    [Opt.MESSAGE_TYPE, Buffer.from([type])],
    [Opt.SERVER_ID, parseIp(ctx.serverIp)],
    [Opt.LEASE_TIME, u32(o.seconds)],
    [Opt.RENEWAL_TIME, u32(Math.floor(o.seconds / 2))],
    [Opt.REBINDING_TIME, u32(Math.floor(o.seconds * 0.875))],
    [Opt.SUBNET_MASK, parseIp(s.mask)],
    [Opt.ROUTER, parseIp(s.gateway)],
    [Opt.BROADCAST, parseIp(broadcastOf(s))],
  ];
  if (s.dnsServers.length) opts.push([Opt.DNS_SERVERS, ips(s.dnsServers)]);
  if (s.domainName) opts.push([Opt.DOMAIN_NAME, Buffer.from(s.domainName)]);
  if (o.hostname) opts.push([Opt.HOSTNAME, Buffer.from(o.hostname)]);
  let siaddr = '0.0.0.0';
  let file = '';
  let why = 'no boot (machine state)';
  if (boot) {
    const b = bootOptions(p, ctx, k, mac);
    ({ siaddr, file, why } = b);
    opts.push(...b.opts);
  }
  const verb = messageTypeName(type);
  return {
    reply: {
      ...base(p),
      yiaddr: o.ip,
      siaddr,
      file,
      ciaddr: type === MessageType.ACK ? p.ciaddr : '0.0.0.0',
      options: ordered(p, opts),
    },
    to: destination(p, o.ip, mac),
    log: `${verb} ${o.ip} (${o.dynamic ? 'pool lease' : 'reservation'}${o.hostname ? ` ${o.hostname}` : ''}); ${file ? `boot ${file}` : why}`,
  };
}

function nak(p: DhcpPacket, ctx: PolicyContext, why: string): Decision {
  const options = new Map([
    [Opt.MESSAGE_TYPE, Buffer.from([MessageType.NAK])],
    [Opt.SERVER_ID, parseIp(ctx.serverIp)],
    [Opt.MESSAGE, Buffer.from(why)],
  ]);
  // RFC 2131 4.3.2: a NAK is broadcast (through a relay: with the broadcast bit set).
  const reply = { ...base(p), flags: p.giaddr !== '0.0.0.0' ? 0x8000 : p.flags & 0x8000, options };
  return {
    reply,
    to: p.giaddr !== '0.0.0.0' ? { kind: 'relay', ip: p.giaddr } : { kind: 'broadcast' },
    log: `NAK: ${why}`,
  };
}

function inform(p: DhcpPacket, ctx: PolicyContext, s: Subnet, hostname: string | undefined): Decision {
  if (p.ciaddr === '0.0.0.0' || !inSubnet(p.ciaddr, s))
    return { log: `INFORM from ${p.ciaddr}, not on ${s.id}: ignored` };
  const opts: [number, Buffer][] = [
    [Opt.MESSAGE_TYPE, Buffer.from([MessageType.ACK])],
    [Opt.SERVER_ID, parseIp(ctx.serverIp)],
    [Opt.SUBNET_MASK, parseIp(s.mask)],
    [Opt.ROUTER, parseIp(s.gateway)],
    [Opt.BROADCAST, parseIp(broadcastOf(s))],
  ];
  if (s.dnsServers.length) opts.push([Opt.DNS_SERVERS, ips(s.dnsServers)]);
  if (s.domainName) opts.push([Opt.DOMAIN_NAME, Buffer.from(s.domainName)]);
  if (hostname) opts.push([Opt.HOSTNAME, Buffer.from(hostname)]);
  // RFC 2131 3.4: no lease time, no yiaddr; unicast to the configured address.
  const mac = formatMac(hardwareAddress(p));
  return {
    reply: { ...base(p), ciaddr: p.ciaddr, options: ordered(p, opts) },
    to: destination(p, '0.0.0.0', mac),
    log: `ACK to INFORM from ${p.ciaddr}`,
  };
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

function proxyReply(
  p: DhcpPacket,
  ctx: PolicyContext,
  k: ClientKind,
  mac: string,
  type: number,
  to: Destination,
): Decision {
  const b = bootOptions(p, ctx, k, mac);
  if (!b.file) return { log: `proxyDHCP: ${b.why}; not answering` };
  const opts: [number, Buffer][] = [
    [Opt.MESSAGE_TYPE, Buffer.from([type])],
    [Opt.SERVER_ID, parseIp(ctx.serverIp)],
    ...b.opts,
  ];
  const reply = { ...base(p), ciaddr: p.ciaddr, siaddr: b.siaddr, file: b.file, options: ordered(p, opts) };
  return { reply, to, log: `proxyDHCP ${messageTypeName(type)}: boot ${b.file}` };
}
