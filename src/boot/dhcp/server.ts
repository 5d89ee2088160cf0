// Cradle's DHCP server: the I/O around policy.ts. It receives, looks the client up in the
// inventory, lets the policy decide, applies the decision's side effects (lease allocation and
// release, firmware seen, unknown machine reported) and sends the reply.
//
// Sockets, and why:
// - Clients on a served link: a packet socket per interface (socket.ts PacketReceiver), read by a
//   worker thread blocked in poll(2) (receive-worker.ts). It tells which interface a broadcast
//   came in on, which picks the subnet and our server address, and sees packets before rp_filter
//   and the firewall. Replies go out through a packet socket too (PacketSender), as Ethernet
//   frames to the client's MAC or to broadcast: a client without an address can be unicast to
//   without ARP tricks (RFC 2131 4.1), as ISC dhcpd's LPF mode does. The alternative, IP_PKTINFO
//   through recvmsg over node:ffi, would still need this thread and could not unicast to a MAC.
// - Relayed requests (giaddr set) come from a relay agent's address, possibly over a routed
//   interface we do not serve: a plain UDP socket on 0.0.0.0:67, replies to giaddr:67 over UDP.
//   It also keeps the kernel from answering unicast renewals with ICMP port unreachable.
//   Each request is handled by exactly one path: giaddr 0 by the packet sockets, else by UDP.
// - PXE boot-server requests (proxyDHCP clients, which have an address by then): UDP 0.0.0.0:4011.
// A packet that does not decode, or that the policy rejects, is counted and never answered.
import dgram from 'node:dgram';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Inventory, Lease, Subnet } from '../../inventory/types.ts';
import {
  DhcpPacketError,
  decodeDhcpPacket,
  encodeDhcpPacket,
  formatMac,
  hardwareAddress,
  messageType,
  messageTypeName,
  MessageType,
  type DhcpPacket,
} from '../../protocols/dhcp/packet.ts';
import { BROADCAST_MAC, PacketSender } from '../../protocols/dhcp/socket.ts';
import type { UdpDatagram } from '../../protocols/dhcp/udp-ipv4.ts';
import { interfaceIpv4, WakeFd } from '../../system/packet-socket.ts';
import {
  answer,
  inSubnet,
  PXE_PORT,
  type Decision,
  type DhcpServerConfig,
  type Firmware,
  type PolicyContext,
} from './policy.ts';
import { leaseBatcher } from './lease-batch.ts';
import { LANE } from './receive-queue.ts';
import { RequestScheduler } from './request-scheduler.ts';
import type { ReceiveMessage, ReceiveWorkerData } from './receive-worker.ts';

export type { DhcpServerConfig } from './policy.ts';

export interface UnknownMachineInfo {
  /** The interface it asked on, or undefined when relayed. */
  interface?: string;
  relay?: string;
  subnetId?: string;
  /** Whether it was answered (unknownMachines 'lease'/'birth' and a pool with room). */
  served: boolean;
  firmware?: Firmware;
  arch?: number;
}

export interface DhcpServerOptions {
  interfaces: string[];
  inventory: Inventory;
  config: DhcpServerConfig;
  log?: (line: string) => void;
  /** Called once a minute at most per MAC when a MAC not in the inventory sends a DISCOVER. */
  onUnknownMachine?: (mac: string, info: UnknownMachineInfo) => Promise<void>;
}

export interface DhcpServerStats {
  received: number;
  malformed: number;
  /** Decoded, but the policy answered nothing. */
  unanswered: number;
  offers: number;
  acks: number;
  naks: number;
  relayed: number;
  /** Inventory or send failures. */
  errors: number;
  /** Dropped unanswered under load: the queue was full, or they waited too long (receive-queue.ts). */
  shed: number;
}

export interface DhcpServer {
  start(): Promise<void>;
  close(): Promise<void>;
  readonly stats: DhcpServerStats;
}

const SUBNET_CACHE_MS = 2000;
const ADDRESS_CACHE_MS = 5000;
const UNKNOWN_REPORT_MS = 60_000;
const DECLINE_HOLD_MS = 600_000; // as dnsmasq: a declined address is not offered for 10 minutes
const MALFORMED_LOGS_PER_MINUTE = 20;
/**
 * Lines a second about single answers: past it they are counted, not written. Under a flood the
 * log would otherwise cost more than the answers (a synchronous write per line to the journal).
 */
const ANSWER_LOGS_PER_SECOND = 50;
/** Requests answered at once: most of their time is spent waiting for a batch's commit. */
const CONCURRENT_REQUESTS = 128;
/** Requests waiting their turn, at most, and how long one may wait (receive-queue.ts). */
const QUEUE_CAPACITY = 2048;
const QUEUE_MAX_AGE_MS = 800;
const UDP_RECEIVE_BUFFER = 1 << 20;
/** MACs last found registered, kept to put their DISCOVERs ahead of unknown ones. */
const REGISTERED_CACHE = 100_000;

type Via = { kind: 'link'; ifname: string } | { kind: 'udp'; port: number; source: string; sourcePort: number };

export function createDhcpServer(opts: DhcpServerOptions): DhcpServer {
  const { inventory: inv, config } = opts;
  const log = opts.log ?? (() => {});
  const stats: DhcpServerStats = {
    received: 0,
    malformed: 0,
    unanswered: 0,
    offers: 0,
    acks: 0,
    naks: 0,
    relayed: 0,
    errors: 0,
    shed: 0, // the scheduler's
  };
  const leases = leaseBatcher(inv);
  type Job = { p: DhcpPacket; mac: string; via: Via; where: string };
  const scheduler = new RequestScheduler<Job>({
    capacity: QUEUE_CAPACITY,
    maxAgeMs: QUEUE_MAX_AGE_MS,
    concurrency: CONCURRENT_REQUESTS,
    handle: ({ p, mac, via, where }) => handle(p, mac, via, where),
    failed: ({ p, mac, where }, err) => {
      stats.errors++;
      log(`${where}: ${messageTypeName(safeType(p))} from ${mac} failed: ${err.message}`);
    },
    log,
  });
  const registered = new Set<string>();
  const senders = new Map<string, PacketSender>();
  const udp: dgram.Socket[] = [];
  let udp67: dgram.Socket | undefined;
  let udp4011: dgram.Socket | undefined;
  let worker: Worker | undefined;
  let workerExit: Promise<unknown> | undefined;
  let wake: WakeFd | undefined;
  let closed = false;
  const declined = new Map<string, number>();
  const reported = new Map<string, number>();
  let malformedWindow = { start: 0, count: 0 };
  let answerWindow = { start: 0, count: 0 };
  /** Logs a line about one request, within ANSWER_LOGS_PER_SECOND. */
  const logAnswer = (line: string) => {
    const now = performance.now();
    if (now - answerWindow.start > 1000) {
      if (answerWindow.count > ANSWER_LOGS_PER_SECOND)
        log(
          `… ${answerWindow.count - ANSWER_LOGS_PER_SECOND} more answers not logged (at most ${ANSWER_LOGS_PER_SECOND} lines a second)`,
        );
      answerWindow = { start: now, count: 0 };
    }
    if (++answerWindow.count <= ANSWER_LOGS_PER_SECOND) log(line);
  };

  // ---- cached views of the inventory's subnets and our interfaces' addresses ----
  let subnets: { at: number; list: Subnet[] } = { at: -Infinity, list: [] };
  const getSubnets = async () => {
    if (performance.now() - subnets.at > SUBNET_CACHE_MS)
      subnets = { at: performance.now(), list: await inv.listSubnets() };
    return subnets.list;
  };
  let addrs: { at: number; byIf: Map<string, { address: string; netmask: string }[]> } = {
    at: -Infinity,
    byIf: new Map(),
  };
  const addresses = (ifname: string) => {
    if (performance.now() - addrs.at > ADDRESS_CACHE_MS) {
      const byIf = new Map(
        Object.entries(os.networkInterfaces()).map(([n, l]) => [
          n,
          (l ?? [])
            .filter((a) => a.family === 'IPv4' && !a.internal)
            .map((a) => ({ address: a.address, netmask: a.netmask })),
        ]),
      );
      // Node lists no address of an interface without carrier (a switch port down, a bridge
      // settling): ask the kernel for its primary one.
      for (const i of opts.interfaces) {
        const primary = byIf.get(i)?.length ? undefined : interfaceIpv4(i);
        if (primary) byIf.set(i, [primary]);
      }
      addrs = { at: performance.now(), byIf };
    }
    return addrs.byIf.get(ifname) ?? [];
  };
  /** Our address on `ifname` and the inventory subnet it lies in (the first address that has one). */
  const linkView = (ifname: string, list: Subnet[]) => {
    const a = addresses(ifname);
    for (const x of a) {
      const s = list.find((sub) => inSubnet(x.address, sub));
      if (s) return { serverIp: x.address, subnet: s };
    }
    return a[0] ? { serverIp: a[0].address, subnet: undefined } : undefined;
  };
  /** Our address facing `peer` (a relay or a PXE client): the served interface on its network, else the first. */
  const addressFacing = (peer: string) => {
    for (const ifname of opts.interfaces) {
      for (const a of addresses(ifname))
        if (inSubnet(peer, { id: '', gateway: a.address, mask: a.netmask, dnsServers: [], manage: false }))
          return a.address;
    }
    return opts.interfaces.map((i) => addresses(i)[0]?.address).find(Boolean);
  };

  function noteMalformed(why: string, where: string): void {
    stats.malformed++;
    const now = performance.now();
    if (now - malformedWindow.start > 60_000) {
      if (malformedWindow.count > MALFORMED_LOGS_PER_MINUTE)
        log(`… ${malformedWindow.count - MALFORMED_LOGS_PER_MINUTE} more malformed packets not logged`);
      malformedWindow = { start: now, count: 0 };
    }
    if (++malformedWindow.count <= MALFORMED_LOGS_PER_MINUTE) log(`malformed packet on ${where} ignored: ${why}`);
  }

  function receive(raw: Buffer, via: Via): void {
    if (closed) return;
    // One path per request: the packet sockets own direct clients, UDP port 67 owns relays.
    const giaddrSet = raw.length >= 28 && raw.readUInt32BE(24) !== 0;
    if (via.kind === 'udp' && via.port === 67 && !giaddrSet) return;
    if (via.kind === 'link' && giaddrSet) return;
    stats.received++;
    const where = via.kind === 'link' ? via.ifname : `${via.source}:${via.sourcePort}→${via.port}`;
    let p: DhcpPacket;
    try {
      p = decodeDhcpPacket(raw);
    } catch (err) {
      return noteMalformed(
        err instanceof DhcpPacketError ? err.message : `decoder failed: ${(err as Error).message}`,
        where,
      );
    }
    const mac = formatMac(hardwareAddress(p));
    const lane =
      safeType(p) !== MessageType.DISCOVER ? LANE.request : registered.has(mac) ? LANE.registered : LANE.other;
    scheduler.offer({ p, mac, via, where }, lane);
  }

  /** A request left unanswered, and why (in the log). */
  function unanswered(why: string): void {
    stats.unanswered++;
    logAnswer(why);
  }

  async function handle(p: DhcpPacket, mac: string, via: Via, where: string): Promise<void> {
    const list = await getSubnets();
    let serverIp: string | undefined;
    let subnet: Subnet | undefined;
    if (via.kind === 'link') {
      const v = linkView(via.ifname, list);
      if (!v) return unanswered(`${where}: no IPv4 address on ${via.ifname}: cannot answer ${mac}`);
      ({ serverIp, subnet } = v);
    } else {
      const anchor = p.giaddr !== '0.0.0.0' ? p.giaddr : p.ciaddr !== '0.0.0.0' ? p.ciaddr : via.source;
      subnet = list.find((s) => inSubnet(anchor, s));
      serverIp = addressFacing(via.source);
      if (!serverIp) return unanswered(`${where}: no address of ours to answer from`);
    }
    // Not Ethernet: the policy refuses it anyway, and the inventory is not asked about a non-MAC.
    const ethernet = p.htype === 1 && p.hlen === 6;
    const [machine, lease] = ethernet
      ? await Promise.all([inv.findMachineByMac(mac), inv.getLease(mac)])
      : [undefined, undefined];
    if (machine) {
      if (registered.size >= REGISTERED_CACHE) registered.clear();
      registered.add(mac);
    } else registered.delete(mac);
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
    send(encodeDhcpPacket(d.reply), d, via, serverIp);
    const t = d.reply.options?.get(53)?.[0];
    if (t === MessageType.OFFER) stats.offers++;
    else if (t === MessageType.ACK) stats.acks++;
    else if (t === MessageType.NAK) stats.naks++;
    if (d.to.kind === 'relay') stats.relayed++;
    logAnswer(line);
  }

  const isDeclined = (ip: string) => (declined.get(ip) ?? 0) > Date.now();
  /** Drops expired entries once a map is large: a stream of random MACs must not grow memory. */
  const remember = (m: Map<string, number>, key: string, until: number) => {
    if (m.size >= 10_000) for (const [k, t] of m) if (t < Date.now()) m.delete(k);
    if (m.size < 100_000) m.set(key, until);
  };

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
    if (u && opts.onUnknownMachine && (reported.get(mac) ?? 0) < Date.now()) {
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
      void opts
        .onUnknownMachine(mac, info)
        .catch((err) => log(`onUnknownMachine(${mac}) failed: ${(err as Error).message}`));
    }
  }

  function send(buf: Buffer, d: Decision, via: Via, serverIp: string): void {
    const to = d.to!;
    const udpSend = (sock: dgram.Socket | undefined, port: number, ip: string) => {
      if (!sock) throw new Error(`no UDP socket to reach ${ip}:${port}`);
      sock.send(buf, port, ip, (err) => {
        if (!err) return;
        stats.errors++;
        log(`sending to ${ip}:${port} failed: ${err.message}`);
      });
    };
    if (to.kind === 'relay') return udpSend(udp67, 67, to.ip);
    if (to.kind === 'source') return udpSend(udp4011, to.port, to.ip);
    if (via.kind !== 'link') return udpSend(udp4011 ?? udp67, 68, to.kind === 'unicast' ? to.ip : '255.255.255.255');
    const datagram: UdpDatagram = {
      source: serverIp,
      destination: to.kind === 'unicast' ? to.ip : '255.255.255.255',
      sourcePort: 67,
      destinationPort: 68,
      payload: buf,
    };
    senders
      .get(via.ifname)!
      .send(
        datagram,
        to.kind === 'unicast' ? Buffer.from(to.mac.split(':').map((h) => parseInt(h, 16))) : BROADCAST_MAC,
      );
  }

  function bindUdp(port: number, optional: boolean): Promise<dgram.Socket | undefined> {
    // Room for the requests that arrive while the event loop is busy (a commit's sync, a batch of
    // answers): about 250 ms of a flood, which the receive queue then sheds by age if it must.
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: UDP_RECEIVE_BUFFER });
    return new Promise((resolve, reject) => {
      sock.once('error', (err: NodeJS.ErrnoException) => {
        sock.close();
        const msg =
          err.code === 'EADDRINUSE'
            ? `UDP port ${port} is in use (another DHCP server on this host?)`
            : `UDP port ${port}: ${err.message}`;
        if (optional) {
          log(`${msg}; relayed requests will not be answered`);
          resolve(undefined);
        } else reject(new Error(msg));
      });
      sock.bind(port, '0.0.0.0', () => {
        sock.removeAllListeners('error');
        sock.on('error', (err) => log(`UDP ${port}: ${err.message}`));
        sock.on('message', (msg, rinfo) =>
          receive(msg, { kind: 'udp', port, source: rinfo.address, sourcePort: rinfo.port }),
        );
        sock.setBroadcast(true);
        udp.push(sock);
        resolve(sock);
      });
    });
  }

  async function start(): Promise<void> {
    if (opts.interfaces.length === 0) throw new Error('the DHCP server needs at least one interface');
    for (const ifname of opts.interfaces) {
      if (addresses(ifname).length === 0) throw new Error(`interface ${ifname} has no IPv4 address to serve DHCP from`);
      senders.set(ifname, new PacketSender(ifname));
    }
    try {
      // proxyDHCP often shares its host with the address server, which holds port 67.
      udp67 = await bindUdp(67, config.mode === 'proxy');
      udp4011 = await bindUdp(PXE_PORT, false);
      wake = new WakeFd();
      const data: ReceiveWorkerData = {
        listen: opts.interfaces.map((ifname) => ({ ifname, port: 67 })),
        wakeFd: wake.fd,
      };
      const w = new Worker(new URL('./receive-worker.ts', import.meta.url), { workerData: data });
      worker = w;
      workerExit = new Promise((r) => w.once('exit', r));
      await new Promise<void>((resolve, reject) => {
        w.on('message', (m: ReceiveMessage) => {
          if (m.kind === 'ready') resolve();
          else if (m.kind === 'error') {
            reject(new Error(m.message));
            if (!closed) log(`DHCP receiver stopped: ${m.message}`);
          } else if (m.kind === 'lost') {
            stats.errors++;
            log(`no longer receiving on ${m.ifname}: ${m.message}`);
          } else {
            for (const why of m.malformed) noteMalformed(why, m.ifname);
            for (const pk of m.packets)
              receive(Buffer.from(pk.payload.buffer, pk.payload.byteOffset, pk.payload.byteLength), {
                kind: 'link',
                ifname: m.ifname,
              });
          }
        });
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`DHCP receiver exited (${code})`)));
      });
    } catch (err) {
      await close();
      throw err;
    }
    log(
      `DHCP server (${config.mode ?? 'server'} mode) on ${opts.interfaces
        .map(
          (i) =>
            `${i} ${addresses(i)
              .map((a) => a.address)
              .join(',')}`,
        )
        .join('; ')}`,
    );
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    if (worker) {
      wake?.wake();
      await workerExit;
    }
    wake?.close();
    await Promise.all(udp.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await scheduler.close();
    await leases.drain();
    for (const s of senders.values()) s.close();
    senders.clear();
  }

  return {
    start,
    close,
    get stats() {
      return { ...stats, shed: scheduler.shed };
    },
  };
}

function safeType(p: DhcpPacket): number | undefined {
  try {
    return messageType(p);
  } catch {
    return undefined;
  }
}
