// Cradle's DHCP client for the netbooted installer: DISCOVER/OFFER/REQUEST/ACK (RFC 2131) on
// every candidate interface at once; the first valid ACK wins.
//
// Fixes over the original installer: it asks for what it needs
// (options 55, 57, 60, 61, 93, 12); an ACK without a router is a valid lease (a flat network
// needs no gateway); every router of option 3 is kept; option 66 is read as text; a NAK restarts
// from DISCOVER after a growing, bounded delay instead of a 100 ms loop; and when the race ends
// (a winner, the timeout or the caller's AbortSignal) every exchange is cancelled and its socket
// closed before dhcpRace returns, instead of goroutines retrying in the background forever.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DhcpPacketError,
  MessageType,
  Opt,
  decodeDhcpPacket,
  encodeDhcpPacket,
  hardwareAddress,
  messageType,
  messageTypeName,
  optionIp,
  optionIpList,
  optionString,
  optionU32,
  parseIp,
  parseMac,
  type DhcpPacket,
} from './packet.ts';
import { openDhcpSocket, type DhcpSocket } from './socket.ts';

export interface DhcpLease {
  interface: string;
  mac: string;
  /** yiaddr of the ACK. */
  ip: string;
  subnetMask?: string;
  routers: string[];
  dnsServers: string[];
  hostname?: string;
  domainName?: string;
  serverId?: string;
  /** undefined when 0.0.0.0. */
  siaddr?: string;
  /** Option 66, TEXT (the original installer wrongly read it as IP bytes); else the sname field. */
  tftpServerName?: string;
  /** Option 67, else the file field. */
  bootFile?: string;
  leaseSeconds?: number;
  options: Map<number, Buffer>;
  /** The raw ACK. */
  packet: Buffer;
}

export interface DhcpOptions {
  signal?: AbortSignal;
  /** The whole race, default 300000. */
  timeoutMs?: number;
  /** Per phase, default 4000, with exponential backoff + jitter per RFC 2131 4.1. */
  attemptTimeoutMs?: number;
  hostname?: string;
  /** Default "Cradle-installer". */
  vendorClass?: string;
  /** Option 93, default 0 BIOS; 7 for x64 UEFI. */
  clientArch?: number;
  log?: (line: string) => void;
}

export class DhcpError extends Error {
  override name = 'DhcpError';
}

/** Option 55. No 121 (classless routes): RFC 3442 would then oblige us to ignore option 3. */
export const PARAMETER_REQUEST_LIST = [1, 3, 6, 12, 15, 26, 28, 42, 51, 54, 58, 59, 66, 67, 119];
/** Option 57: we can take a full Ethernet frame's worth (the socket reads up to 64 KiB). */
const MAX_MESSAGE_SIZE = 1500;
/** REQUESTs sent (with backoff) before giving up on an offer and going back to DISCOVER. */
const REQUEST_ATTEMPTS = 4;
/** RFC 2131 4.1: retransmission delays double up to 64 s. */
const MAX_RETRANSMIT_MS = 64_000;
/** After a NAK: 250 ms, 500 ms, 1 s ... capped, so a server that NAKs everything is not hammered. */
const NAK_DELAY_MS = 250;
const MAX_NAK_DELAY_MS = 8_000;

interface Config extends ClientIdentity {
  attemptMs: number;
  log: (line: string) => void;
}

/** What the DISCOVER and REQUEST say about the client (defaults as in DhcpOptions). */
export type ClientIdentity = Pick<DhcpOptions, 'hostname' | 'vendorClass' | 'clientArch'>;

/** The options both DISCOVER and REQUEST carry, after option 53 and the REQUEST's 50/54. */
function commonOptions(mac: Buffer, id: ClientIdentity): [number, Buffer][] {
  const maxSize = Buffer.alloc(2);
  maxSize.writeUInt16BE(MAX_MESSAGE_SIZE);
  const arch = Buffer.alloc(2);
  arch.writeUInt16BE(id.clientArch ?? 0);
  const out: [number, Buffer][] = [
    [Opt.CLIENT_ID, Buffer.concat([Buffer.from([1]), mac])], // type 1 = Ethernet, then the MAC
    [Opt.MAX_MESSAGE_SIZE, maxSize],
    [Opt.PARAMETER_REQUEST_LIST, Buffer.from(PARAMETER_REQUEST_LIST)],
    [Opt.VENDOR_CLASS, Buffer.from(id.vendorClass ?? 'Cradle-installer')],
    [Opt.CLIENT_ARCH, arch],
  ];
  if (id.hostname) out.push([Opt.HOSTNAME, Buffer.from(id.hostname)]);
  return out;
}

/**
 * The DHCPDISCOVER we send. No broadcast flag: the packet socket receives replies unicast to our
 * MAC as well as broadcasts, and unicast spares the rest of the segment.
 */
export function buildDiscover(xid: number, mac: Buffer, secs: number, id: ClientIdentity): Buffer {
  return encodeDhcpPacket({
    op: BOOTREQUEST,
    xid,
    secs,
    chaddr: mac,
    options: new Map([[Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER])], ...commonOptions(mac, id)]),
  });
}

/** The DHCPREQUEST in SELECTING state: same xid and secs as the DISCOVER, ciaddr 0. */
export function buildRequest(xid: number, mac: Buffer, secs: number, offer: Offer, id: ClientIdentity): Buffer {
  return encodeDhcpPacket({
    op: BOOTREQUEST,
    xid,
    secs,
    chaddr: mac,
    options: new Map([
      [Opt.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST])],
      [Opt.REQUESTED_IP, parseIp(offer.ip)],
      [Opt.SERVER_ID, parseIp(offer.serverId)],
      ...commonOptions(mac, id),
    ]),
  });
}

export interface Offer {
  ip: string;
  serverId: string;
}

/** RFC 2131 4.1: base·2^n up to 64 s, randomised by ±1 s (±25% when the base is under 4 s). */
function backoff(baseMs: number, attempt: number): number {
  const delay = Math.min(baseMs * 2 ** attempt, MAX_RETRANSMIT_MS);
  const jitter = Math.min(1000, baseMs / 4);
  return Math.max(1, delay + (Math.random() * 2 - 1) * jitter);
}

const isContiguousMask = (mask: string) => {
  const n = parseIp(mask).readUInt32BE(0);
  return ((~n >>> 0) & ((~n >>> 0) + 1)) === 0;
};

/** A lease from an ACK, or DhcpPacketError when the ACK cannot be used as one. */
export function leaseFromAck(iface: { name: string; mac: string }, ack: DhcpPacket, raw: Buffer): DhcpLease {
  const o = ack.options;
  if (ack.yiaddr === '0.0.0.0') throw new DhcpPacketError('ACK carries no address (yiaddr 0.0.0.0)');
  const subnetMask = optionIp(o, Opt.SUBNET_MASK);
  if (subnetMask && !isContiguousMask(subnetMask))
    throw new DhcpPacketError(`subnet mask ${subnetMask} is not contiguous`);
  return {
    interface: iface.name,
    mac: iface.mac.toLowerCase(),
    ip: ack.yiaddr,
    subnetMask,
    routers: optionIpList(o, Opt.ROUTER),
    dnsServers: optionIpList(o, Opt.DNS_SERVERS),
    hostname: optionString(o, Opt.HOSTNAME),
    domainName: optionString(o, Opt.DOMAIN_NAME),
    serverId: optionIp(o, Opt.SERVER_ID),
    siaddr: ack.siaddr === '0.0.0.0' ? undefined : ack.siaddr,
    tftpServerName: optionString(o, Opt.TFTP_SERVER_NAME) ?? (ack.sname || undefined),
    bootFile: optionString(o, Opt.BOOTFILE_NAME) ?? (ack.file || undefined),
    leaseSeconds: optionU32(o, Opt.LEASE_TIME),
    options: o,
    packet: raw,
  };
}

/** One interface's exchange: its socket, its MAC and the transaction id now in use. */
interface Exchange {
  iface: { name: string; mac: string };
  mac: Buffer;
  sock: DhcpSocket;
  cfg: Config;
  signal: AbortSignal;
  xid: number;
}

/**
 * Sends `build()` up to `attempts` times with backoff and returns the first reply `accept` takes.
 * Replies for other clients (another xid or chaddr) are skipped silently; malformed ones that
 * carry our xid are logged. undefined when every attempt timed out.
 */
async function transact<T>(
  ex: Exchange,
  what: string,
  attempts: number,
  build: () => Buffer,
  accept: (p: DhcpPacket, raw: Buffer, from: string) => T | undefined,
): Promise<T | undefined> {
  const { cfg, sock, signal } = ex;
  for (let n = 0; n < attempts; n++) {
    try {
      sock.send(build());
      cfg.log(`${ex.iface.name}: sent ${what} xid 0x${ex.xid.toString(16).padStart(8, '0')} (attempt ${n + 1})`);
    } catch (err) {
      // An interface without carrier or still coming up: not fatal, the next attempt retries.
      cfg.log(`${ex.iface.name}: sending ${what} failed: ${(err as Error).message}; retrying`);
    }
    const deadline = performance.now() + backoff(cfg.attemptMs, n);
    for (let left = deadline - performance.now(); left > 0; left = deadline - performance.now()) {
      const d = await sock.receive(left, signal);
      if (!d) break;
      const raw = d.payload;
      if (raw.length < 8 || raw.readUInt32BE(4) !== ex.xid) continue;
      let p: DhcpPacket;
      try {
        p = decodeDhcpPacket(raw);
      } catch (err) {
        cfg.log(`${ex.iface.name}: ignoring malformed reply from ${d.source}: ${(err as Error).message}`);
        continue;
      }
      if (p.op !== BOOTREPLY || !hardwareAddress(p).equals(ex.mac)) continue;
      const r = accept(p, raw, d.source);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

function acceptOffer(ex: Exchange, p: DhcpPacket, from: string): Offer | undefined {
  const type = messageType(p);
  if (type !== MessageType.OFFER) return undefined;
  try {
    const serverId = optionIp(p.options, Opt.SERVER_ID);
    if (!serverId) throw new DhcpPacketError('no server identifier (option 54)');
    if (p.yiaddr === '0.0.0.0') throw new DhcpPacketError('no address offered (yiaddr 0.0.0.0)');
    return { ip: p.yiaddr, serverId };
  } catch (err) {
    ex.cfg.log(`${ex.iface.name}: ignoring OFFER from ${from}: ${(err as Error).message}`);
    return undefined;
  }
}

type Answer = { lease: DhcpLease } | { nak: string };

function acceptAnswer(ex: Exchange, offer: Offer, p: DhcpPacket, raw: Buffer, from: string): Answer | undefined {
  const type = messageType(p);
  if (type !== MessageType.ACK && type !== MessageType.NAK) return undefined;
  const name = ex.iface.name;
  try {
    const server = optionIp(p.options, Opt.SERVER_ID);
    if (server !== undefined && server !== offer.serverId) return undefined; // another server's business
    if (type === MessageType.NAK) return { nak: optionString(p.options, Opt.MESSAGE) ?? '' };
    return { lease: leaseFromAck(ex.iface, p, raw) };
  } catch (err) {
    if (!(err instanceof DhcpPacketError)) throw err;
    ex.cfg.log(`${name}: rejecting ${messageTypeName(type)} from ${from}: ${err.message}`);
    return undefined;
  }
}

/** DISCOVER/OFFER/REQUEST/ACK on one interface until a lease or the signal aborts. */
async function acquire(
  iface: { name: string; mac: string },
  cfg: Config,
  signal: AbortSignal,
  setStatus: (s: string) => void,
): Promise<DhcpLease> {
  signal.throwIfAborted();
  const mac = parseMac(iface.mac);
  const sock = openDhcpSocket(iface.name);
  try {
    const ex: Exchange = { iface, mac, sock, cfg, signal, xid: 0 };
    const started = performance.now();
    let naks = 0;
    for (;;) {
      ex.xid = randomBytes(4).readUInt32BE(0);
      let discovers = 0;
      let secs = 0;
      const offer = await transact(
        ex,
        'DISCOVER',
        Infinity,
        () => {
          setStatus(`no OFFER after ${++discovers} DISCOVER(s)`);
          secs = Math.min(0xffff, Math.floor((performance.now() - started) / 1000));
          return buildDiscover(ex.xid, mac, secs, cfg);
        },
        (p, _raw, from) => acceptOffer(ex, p, from),
      );
      if (!offer) continue; // unreachable: DISCOVER retries until the signal aborts
      cfg.log(`${iface.name}: OFFER of ${offer.ip} from server ${offer.serverId}`);
      setStatus(`offered ${offer.ip} by ${offer.serverId}, no ACK`);
      const answer = await transact(
        ex,
        `REQUEST for ${offer.ip}`,
        REQUEST_ATTEMPTS,
        () => buildRequest(ex.xid, mac, secs, offer, cfg),
        (p, raw, from) => acceptAnswer(ex, offer, p, raw, from),
      );
      if (!answer) {
        cfg.log(`${iface.name}: no ACK from ${offer.serverId} after ${REQUEST_ATTEMPTS} REQUESTs; starting over`);
        continue;
      }
      if ('nak' in answer) {
        const delay = Math.min(NAK_DELAY_MS * 2 ** naks++, MAX_NAK_DELAY_MS);
        const why = answer.nak ? ` ("${answer.nak}")` : '';
        cfg.log(`${iface.name}: NAK from ${offer.serverId}${why}; DISCOVER again in ${delay} ms`);
        setStatus(`NAK from ${offer.serverId}${why}`);
        await sleep(delay, undefined, { signal });
        continue;
      }
      const l = answer.lease;
      cfg.log(
        `${iface.name}: ACK ${l.ip}${l.subnetMask ? `/${l.subnetMask}` : ''} from ${offer.serverId}` +
          `, routers [${l.routers.join(', ')}], DNS [${l.dnsServers.join(', ')}], lease ${l.leaseSeconds ?? '?'} s`,
      );
      if (l.routers.length === 0)
        cfg.log(`${iface.name}: the ACK names no router (option 3): a flat network, no default route`);
      return l;
    }
  } finally {
    sock.close();
  }
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(3)} s`;

/** Full DISCOVER/OFFER/REQUEST/ACK on one interface. */
export async function dhcpRequest(iface: { name: string; mac: string }, opts?: DhcpOptions): Promise<DhcpLease> {
  return dhcpRace([iface], opts);
}

/**
 * DHCP on all interfaces at once; the first valid ACK wins. The other exchanges are cancelled and
 * their sockets closed before this returns, whatever the outcome. Rejects with DhcpError on
 * timeout (naming each interface and how far it got) or when every interface failed outright
 * (e.g. no such interface, not root), and with the signal's reason when the caller aborts.
 */
export async function dhcpRace(ifaces: { name: string; mac: string }[], opts: DhcpOptions = {}): Promise<DhcpLease> {
  if (ifaces.length === 0) throw new DhcpError('DHCP needs at least one interface');
  opts.signal?.throwIfAborted();
  const cfg: Config = {
    attemptMs: opts.attemptTimeoutMs ?? 4000,
    hostname: opts.hostname,
    vendorClass: opts.vendorClass,
    clientArch: opts.clientArch,
    log: opts.log ?? (() => {}),
  };
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const stop = new AbortController();
  const timedOut = new DhcpError('timeout');
  const timer = setTimeout(() => stop.abort(timedOut), timeoutMs);
  const onAbort = () => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const status = new Map(ifaces.map((i) => [i.name, 'not started']));
  const runs = ifaces.map((i) => acquire(i, cfg, stop.signal, (s) => status.set(i.name, s)));
  try {
    return await Promise.any(runs);
  } catch (err) {
    const names = ifaces.map((i) => i.name).join(', ');
    if (stop.signal.reason === timedOut) {
      const detail = [...status].map(([n, s]) => `${n}: ${s}`).join('; ');
      throw new DhcpError(`no DHCP lease on ${names} within ${seconds(timeoutMs)} (${detail})`);
    }
    if (stop.signal.aborted) throw stop.signal.reason;
    const errors = (err as AggregateError).errors.map((e, i) => `${ifaces[i].name}: ${(e as Error).message}`);
    throw new DhcpError(`DHCP failed on every interface: ${errors.join('; ')}`);
  } finally {
    stop.abort();
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.allSettled(runs);
  }
}
