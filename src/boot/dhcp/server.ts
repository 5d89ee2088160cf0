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
// The server is made of: served-networks.ts (our addresses, the subnets), request-scheduler.ts
// (queue, concurrency, per-client order), request-handler.ts (one request: lookup, policy, lease,
// effects), lease-batch.ts (group commit of leases) and reply-sender.ts (the answer on the wire),
// with util/limited-log.ts for its logs; this file owns the sockets, the receiving thread and the
// start and close.
import dgram from 'node:dgram';
import type { Worker } from 'node:worker_threads';
import {
  DhcpPacketError,
  decodeDhcpPacket,
  formatMac,
  hardwareAddress,
  messageTypeName,
  type DhcpPacket,
} from '../../protocols/dhcp/packet.ts';
import { WakeFd } from '../../system/packet-socket.ts';
import { PXE_PORT } from './policy.ts';
import { leaseBatcher } from './lease-batch.ts';
import { LimitedLog } from '../../util/limited-log.ts';
import { startThread } from '../../util/threads.ts';
import { laneOf } from './receive-queue.ts';
import type { ReceiveMessage, ReceiveWorkerData } from './receive-worker.ts';
import { ReplySender } from './reply-sender.ts';
import { requestHandler, safeType } from './request-handler.ts';
import { RequestScheduler } from './request-scheduler.ts';
import { ServedNetworks } from './served-networks.ts';
import type { DhcpServer, DhcpServerOptions, DhcpServerStats, Via } from './types.ts';

export type { DhcpServerConfig } from './policy-types.ts';
export type { DhcpServer, DhcpServerOptions, DhcpServerStats, UnknownMachineInfo } from './types.ts';

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
  const networks = new ServedNetworks(inv, opts.interfaces);
  const replies = new ReplySender((why) => {
    stats.errors++;
    log(why);
  });
  const malformedLog = new LimitedLog(
    log,
    MALFORMED_LOGS_PER_MINUTE,
    60_000,
    (n) => `… ${n} more malformed packets not logged`,
  );
  const answerLog = new LimitedLog(
    log,
    ANSWER_LOGS_PER_SECOND,
    1000,
    (n) => `… ${n} more answers not logged (at most ${ANSWER_LOGS_PER_SECOND} lines a second)`,
  );
  const requests = requestHandler({
    inventory: inv,
    config,
    leases,
    networks,
    replies,
    stats,
    log,
    answerLog,
    onUnknownMachine: opts.onUnknownMachine,
  });
  type Job = { p: DhcpPacket; mac: string; via: Via; where: string };
  const scheduler = new RequestScheduler<Job>({
    capacity: QUEUE_CAPACITY,
    maxAgeMs: QUEUE_MAX_AGE_MS,
    concurrency: CONCURRENT_REQUESTS,
    handle: ({ p, mac, via, where }) => requests.handle(p, mac, via, where),
    failed: ({ p, mac, where }, err) => {
      stats.errors++;
      log(`${where}: ${messageTypeName(safeType(p))} from ${mac} failed: ${err.message}`);
    },
    log,
  });
  const udp: dgram.Socket[] = [];
  let worker: Worker | undefined;
  let workerExit: Promise<unknown> | undefined;
  let wake: WakeFd | undefined;
  let closed = false;

  function noteMalformed(why: string, where: string): void {
    stats.malformed++;
    malformedLog.line(`malformed packet on ${where} ignored: ${why}`);
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
    const lane = laneOf(safeType(p), {
      registered: () => requests.isRegistered(mac),
      answered: () => requests.wasAnswered(mac),
    });
    if (lane === undefined) {
      stats.unanswered++; // not DHCP: the policy would ignore it anyway
      return;
    }
    scheduler.offer({ p, mac, via, where }, lane);
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
      if (networks.addresses(ifname).length === 0)
        throw new Error(`interface ${ifname} has no IPv4 address to serve DHCP from`);
      replies.addLink(ifname);
    }
    // Not fatal: without it, each machine's requests wait with unknown MACs' until it is looked up.
    await requests
      .learnFromInventory()
      .catch((err: Error) => log(`DHCP: could not list the machines and leases to answer first: ${err.message}`));
    try {
      // proxyDHCP often shares its host with the address server, which holds port 67.
      replies.udp67 = await bindUdp(67, config.mode === 'proxy');
      replies.udp4011 = await bindUdp(PXE_PORT, false);
      wake = new WakeFd();
      const data: ReceiveWorkerData = {
        listen: opts.interfaces.map((ifname) => ({ ifname, port: 67 })),
        wakeFd: wake.fd,
      };
      const w = startThread(new URL('./receive-worker.ts', import.meta.url), data);
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
            `${i} ${networks
              .addresses(i)
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
    replies.close();
  }

  return {
    start,
    close,
    get stats() {
      return { ...stats, shed: scheduler.shed };
    },
  };
}
