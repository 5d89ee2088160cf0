// The DHCP client's transport on an interface that has no IPv4 address yet.
//
// Why a packet socket and not a UDP socket: an AF_INET socket bound to 0.0.0.0:68 with
// SO_BINDTODEVICE does receive the server's broadcast OFFER on an unconfigured interface, but
// only while reverse-path filtering is off. With rp_filter 1 or 2 (systemd's sysctl.d sets 2 on
// Debian) the kernel finds no route back to the server on an address-less interface and drops
// the reply before UDP sees it (measured: the OFFER is logged by dnsmasq, never received), and
// a server that unicasts to the offered address is dropped too, as that address is not ours yet.
// An AF_PACKET/SOCK_DGRAM socket bound to the interface and ETH_P_IP sees IPv4 packets before
// routing, firewall and rp_filter, so it works whatever the host's sysctls; we build and strip the
// IPv4 and UDP headers ourselves (the kernel adds the Ethernet header). This is what ISC dhclient
// (LPF), udhcpc and systemd-networkd do.
//
// How it is polled: node:ffi calls are synchronous and Node cannot watch a foreign fd, so the
// socket is nonblocking and `receive` drains it with recvfrom(MSG_DONTWAIT) every POLL_MS on a
// timer. A worker blocked in poll(2) would answer a few ms sooner but needs a second thread,
// message passing and a wake-up to cancel; a 10 ms timer costs ~100 cheap syscalls a second for
// the seconds DHCP takes, and an AbortSignal stops it at once. A kernel BPF filter keeps every
// packet that is not UDP to port 68 out of the socket's queue.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  boundPacketSocket,
  type BpfProgram,
  EAGAIN,
  EINTR,
  ENETDOWN,
  FrameReader,
  interfaceIndex,
  OwnedFd,
  packetSocket,
  sendFrame,
  sockaddrLl,
} from '../../system/packet-socket.ts';
import { decodeUdpIpv4, encodeUdpIpv4, type UdpDatagram } from './udp-ipv4.ts';

const POLL_MS = 10;
export const CLIENT_PORT = 68;
export const SERVER_PORT = 67;

// Classic BPF, run on the IPv4 header (SOCK_DGRAM): accept UDP, not a fragment, to port 68.
// Each instruction is {u16 code, u8 jt, u8 jf, u32 k}; jumps are relative to the next one.
const FILTER: BpfProgram = [
  [0x30, 0, 0, 9], // ldb [9]              IP protocol
  [0x15, 0, 6, 17], // jeq #17 ? next : drop
  [0x28, 0, 0, 6], // ldh [6]              flags + fragment offset
  [0x45, 4, 0, 0x3fff], // jset MF|offset ? drop : next
  [0xb1, 0, 0, 0], // ldxb 4*([0]&0xf)     X = IP header length
  [0x48, 0, 0, 2], // ldh [x+2]            UDP destination port
  [0x15, 0, 1, CLIENT_PORT], // jeq #68 ? accept : drop
  [0x06, 0, 0, 0x40000], // ret whole packet
  [0x06, 0, 0, 0], // drop
];

export class DhcpSocket extends OwnedFd {
  #dest: Buffer;
  #reader = new FrameReader();

  constructor(ifname: string) {
    const ifindex = interfaceIndex(ifname);
    super(ifname, boundPacketSocket(ifname, ifindex, FILTER));
    this.#dest = sockaddrLl(ifindex, true);
  }

  /** Broadcasts a DHCP message from 0.0.0.0:68 to 255.255.255.255:67 (Ethernet broadcast). */
  send(dhcp: Buffer): void {
    if (this.fd_ < 0) throw new Error(`DHCP socket on ${this.ifname} is closed`);
    const frame = encodeUdpIpv4({
      source: '0.0.0.0',
      destination: '255.255.255.255',
      sourcePort: CLIENT_PORT,
      destinationPort: SERVER_PORT,
      payload: dhcp,
    });
    sendFrame(this.fd_, this.ifname, frame, this.#dest);
  }

  /** The next UDP datagram to port 68 on this interface, or undefined after `timeoutMs`. */
  async receive(timeoutMs: number, signal?: AbortSignal): Promise<UdpDatagram | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const got = this.#tryReceive();
      if (got) return got;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await sleep(Math.min(POLL_MS, left), undefined, { signal });
    }
  }

  #tryReceive(): UdpDatagram | undefined {
    for (
      let frame: Buffer | undefined;
      this.fd_ >= 0 && (frame = this.#reader.next(this.fd_, this.ifname, [EAGAIN, EINTR]));
    ) {
      const d = decodeUdpIpv4(frame);
      if (typeof d !== 'string' && d.destinationPort === CLIENT_PORT) return d;
    }
    return undefined;
  }
}

export const openDhcpSocket = (ifname: string): DhcpSocket => new DhcpSocket(ifname);

// ---- Server side (src/boot/dhcp/server.ts) --------------------------------------------------
// The DHCP server uses the same kind of socket for the opposite reason: a UDP socket on 0.0.0.0:67
// does not say which interface a broadcast DISCOVER came in on (Node's dgram has no IP_PKTINFO),
// and a reply to a client without an address must go to its MAC, which a UDP socket can only do
// after planting an ARP entry. A packet socket per interface gives both. Receiving and sending
// are split: a PacketReceiver (bound, filtered, read by a worker thread blocked in poll(2), see
// pollReadable) and a PacketSender (unbound, so nothing is ever queued on it).

/** The BPF program of FILTER, for UDP to any destination port. */
export function udpPortFilter(port: number): BpfProgram {
  return FILTER.map(([code, jt, jf, k], i) => [code, jt, jf, i === 6 ? port : k]);
}

/**
 * Receives the UDP datagrams to `port` that arrive on one interface, before routing, firewall and
 * rp_filter. Nonblocking: `drain` returns what is queued; a worker polls `fd`.
 */
export class PacketReceiver extends OwnedFd {
  readonly ifindex: number;
  readonly port: number;
  #reader = new FrameReader();

  /** `rcvbuf`: bytes of queue; a rack powering on sends hundreds of DISCOVERs in a second. */
  constructor(ifname: string, port: number, rcvbuf = 4 << 20) {
    const ifindex = interfaceIndex(ifname);
    super(ifname, boundPacketSocket(ifname, ifindex, udpPortFilter(port), rcvbuf));
    this.ifindex = ifindex;
    this.port = port;
  }

  get fd(): number {
    return this.fd_;
  }

  /**
   * Up to `max` queued datagrams, without waiting. Packets that are not whole IPv4/UDP datagrams
   * come back as the reason string (the caller counts them as malformed).
   */
  drain(max = 512): (UdpDatagram | string)[] {
    const out: (UdpDatagram | string)[] = [];
    // ENETDOWN is reported once when the link goes down; the socket receives again when it is up.
    for (
      let frame: Buffer | undefined;
      this.fd_ >= 0 &&
      out.length < max &&
      (frame = this.#reader.next(this.fd_, this.ifname, [EAGAIN, EINTR, ENETDOWN]));
    ) {
      const d = decodeUdpIpv4(frame);
      if (typeof d === 'string' || d.destinationPort === this.port) out.push(d);
    }
    return out;
  }
}

export const BROADCAST_MAC = Buffer.alloc(6, 0xff);

/** Sends IPv4/UDP datagrams as Ethernet frames on one interface to a given MAC. */
export class PacketSender extends OwnedFd {
  readonly ifindex: number;
  #dest: Buffer;

  constructor(ifname: string) {
    const ifindex = interfaceIndex(ifname);
    // Never bound: the kernel queues nothing on this socket.
    super(ifname, packetSocket(ifname));
    this.ifindex = ifindex;
    this.#dest = sockaddrLl(ifindex, true);
  }

  /** One frame to `mac` (BROADCAST_MAC for everyone on the link). */
  send(d: UdpDatagram, mac: Buffer): void {
    this.sendFrame(encodeUdpIpv4(d), mac);
  }

  /** An IPv4 packet as it is (tests use it to send broken headers). */
  sendFrame(frame: Buffer, mac: Buffer): void {
    if (this.fd_ < 0) throw new Error(`packet socket on ${this.ifname} is closed`);
    mac.copy(this.#dest, 12, 0, 6);
    sendFrame(this.fd_, this.ifname, frame, this.#dest);
  }
}
