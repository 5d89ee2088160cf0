// The DHCP policy's replies, built once it has decided what to answer: an OFFER or ACK with an
// address (reply), a NAK, the ACK to an INFORM, and proxyDHCP's boot-only OFFER or ACK; each
// with its options in the client's order and the destination the protocol gives it. Pure.
import type { Subnet } from '../../inventory/types.ts';
import {
  BOOTREPLY,
  MessageType,
  Opt,
  formatMac,
  hardwareAddress,
  messageTypeName,
  parseIp,
  type DhcpPacket,
} from '../../protocols/dhcp/packet.ts';
import { bootFile, type ClientKind } from './client-kind.ts';
import { broadcastOf, inSubnet } from './ipv4-subnet.ts';
import type { Decision, Destination, PolicyContext } from './policy-types.ts';

/** PXE vendor options (option 43): PXE_DISCOVERY_CONTROL = 8, "boot the file in this offer, no boot-server discovery". */
const PXE_VENDOR_OPTIONS = Buffer.from([6, 1, 8, 255]);

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const ips = (list: string[]) => Buffer.concat(list.map(parseIp));

/** The address a client is answered with, on which subnet, for how long, and what backs it. */
export interface Offerable {
  ip: string;
  subnet: Subnet;
  seconds: number;
  /** undefined: a reservation (no lease row); else the lease row that must exist. */
  dynamic: boolean;
  hostname?: string;
}

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
export function destination(p: DhcpPacket, yiaddr: string, mac: string): Destination {
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

export function reply(
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

export function nak(p: DhcpPacket, ctx: PolicyContext, why: string): Decision {
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

export function inform(p: DhcpPacket, ctx: PolicyContext, s: Subnet, hostname: string | undefined): Decision {
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

/** proxyDHCP's answer: boot information only, no address (on port 67 or 4011). */
export function proxyReply(
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
