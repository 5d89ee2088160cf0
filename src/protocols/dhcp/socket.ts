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
import { dlopen, getInt32, getRawPointer } from 'node:ffi';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatIp, parseIp } from './packet.ts';

const AF_PACKET = 17;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const ETH_P_IP = 0x0800;
const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const MSG_DONTWAIT = 0x40;
const PACKET_OUTGOING = 4;
const SOCKADDR_LL_SIZE = 20;
const POLL_MS = 10;
export const CLIENT_PORT = 68;
export const SERVER_PORT = 67;

let cached: ReturnType<typeof open> | undefined;
function open() {
  return dlopen('libc.so.6', {
    socket: { arguments: ['int32', 'int32', 'int32'], return: 'int32' },
    setsockopt: { arguments: ['int32', 'int32', 'int32', 'buffer', 'uint32'], return: 'int32' },
    bind: { arguments: ['int32', 'buffer', 'uint32'], return: 'int32' },
    sendto: { arguments: ['int32', 'buffer', 'uint64', 'int32', 'buffer', 'uint32'], return: 'int64' },
    recvfrom: { arguments: ['int32', 'buffer', 'uint64', 'int32', 'buffer', 'buffer'], return: 'int64' },
    close: { arguments: ['int32'], return: 'int32' },
    if_nametoindex: { arguments: ['string'], return: 'uint32' },
    __errno_location: { arguments: [], return: 'pointer' },
  }).functions;
}
const libc = () => (cached ??= open());
const errno = () => getInt32(libc().__errno_location());
const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([n, v]) => [v as number, n]));

function sysError(syscall: string, ifname: string, e = errno()): NodeJS.ErrnoException {
  const code = errnoNames.get(e) ?? `E${e}`;
  const hint = code === 'EPERM' || code === 'EACCES' ? ' (DHCP needs root: CAP_NET_RAW for a packet socket)' : '';
  const err = new Error(`${code}: ${syscall} failed on ${ifname}${hint}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -e;
  err.syscall = syscall;
  return err;
}

// Classic BPF, run on the IPv4 header (SOCK_DGRAM): accept UDP, not a fragment, to port 68.
// Each instruction is {u16 code, u8 jt, u8 jf, u32 k}; jumps are relative to the next one.
const FILTER: [number, number, number, number][] = [
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

/** Attaches a classic BPF program (rows of code, jt, jf, k) to a socket. */
function attachProgram(fd: number, ifname: string, program: [number, number, number, number][]): void {
  const prog = Buffer.from(new ArrayBuffer(program.length * 8));
  program.forEach(([code, jt, jf, k], i) => {
    prog.writeUInt16LE(code, i * 8);
    prog[i * 8 + 2] = jt;
    prog[i * 8 + 3] = jf;
    prog.writeUInt32LE(k, i * 8 + 4);
  });
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the kernel copies the
  // program during the call, so `prog` only has to outlive it.
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(program.length, 0);
  fprog.writeBigUInt64LE(getRawPointer(prog.buffer), 8);
  if (libc().setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16) !== 0)
    throw sysError('setsockopt(SO_ATTACH_FILTER)', ifname);
  void prog.length; // keeps `prog` reachable until after the call
}

function sockaddrLl(ifindex: number, broadcast: boolean): Buffer {
  const sa = Buffer.alloc(SOCKADDR_LL_SIZE);
  sa.writeUInt16LE(AF_PACKET, 0);
  sa.writeUInt16BE(ETH_P_IP, 2);
  sa.writeInt32LE(ifindex, 4);
  if (broadcast) {
    sa[11] = 6; // sll_halen
    sa.fill(0xff, 12, 18); // sll_addr = ff:ff:ff:ff:ff:ff
  }
  return sa;
}

/** The ones'-complement sum of 16-bit words (RFC 1071), folded to 16 bits. */
function sum16(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
const checksum = (buf: Buffer, initial = 0): number => ~sum16(buf, initial) & 0xffff;

export interface UdpDatagram {
  source: string;
  destination: string;
  sourcePort: number;
  destinationPort: number;
  payload: Buffer;
}

/** IPv4 + UDP headers around `payload`, both checksums filled in. */
export function encodeUdpIpv4(d: UdpDatagram): Buffer {
  const udpLen = 8 + d.payload.length;
  const out = Buffer.alloc(20 + udpLen);
  out[0] = 0x45; // version 4, 5-word header
  out.writeUInt16BE(20 + udpLen, 2);
  out[8] = 64; // TTL
  out[9] = 17; // UDP
  parseIp(d.source).copy(out, 12);
  parseIp(d.destination).copy(out, 16);
  out.writeUInt16BE(checksum(out.subarray(0, 20)), 10);
  out.writeUInt16BE(d.sourcePort, 20);
  out.writeUInt16BE(d.destinationPort, 22);
  out.writeUInt16BE(udpLen, 24);
  d.payload.copy(out, 28);
  const pseudo = Buffer.alloc(12);
  out.copy(pseudo, 0, 12, 20);
  pseudo[9] = 17;
  pseudo.writeUInt16BE(udpLen, 10);
  const sum = checksum(out.subarray(20), sum16(pseudo));
  out.writeUInt16BE(sum === 0 ? 0xffff : sum, 26);
  return out;
}

/**
 * Strips IPv4 + UDP headers, or says why the packet is not a whole UDP datagram. The UDP checksum
 * is not verified: on veth and virtio links a locally sent packet arrives with the checksum left
 * to offload (CHECKSUM_PARTIAL), and checking it is the classic dhclient-in-a-VM bug. The IPv4
 * header checksum is always computed in software, so that one is checked.
 */
export function decodeUdpIpv4(buf: Buffer): UdpDatagram | string {
  if (buf.length < 28) return `${buf.length} bytes is too short for IPv4 + UDP`;
  if (buf[0] >> 4 !== 4) return `IP version ${buf[0] >> 4}`;
  const ihl = (buf[0] & 0xf) * 4;
  const total = buf.readUInt16BE(2);
  if (ihl < 20 || total < ihl + 8 || total > buf.length)
    return `bad IPv4 lengths (header ${ihl}, total ${total}, got ${buf.length})`;
  if (checksum(buf.subarray(0, ihl)) !== 0) return 'bad IPv4 header checksum';
  if (buf[9] !== 17) return `IP protocol ${buf[9]}, not UDP`;
  if (buf.readUInt16BE(6) & 0x3fff) return 'IPv4 fragment';
  const udpLen = buf.readUInt16BE(ihl + 4);
  if (udpLen < 8 || ihl + udpLen > total) return `bad UDP length ${udpLen}`;
  return {
    source: formatIp(buf, 12),
    destination: formatIp(buf, 16),
    sourcePort: buf.readUInt16BE(ihl),
    destinationPort: buf.readUInt16BE(ihl + 2),
    payload: Buffer.from(buf.subarray(ihl + 8, ihl + udpLen)),
  };
}

/** A DHCP client socket on one interface. Close it (or `using` it); closing twice is harmless. */
/** A file descriptor this module owns: closed once, also by `using`. */
class OwnedFd implements Disposable {
  readonly ifname: string;
  protected fd_: number;
  constructor(ifname: string, fd: number) {
    this.ifname = ifname;
    this.fd_ = fd;
  }
  get closed(): boolean {
    return this.fd_ < 0;
  }
  close(): void {
    if (this.fd_ < 0) return;
    libc().close(this.fd_);
    this.fd_ = -1;
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

function interfaceIndex(ifname: string): number {
  const ifindex = libc().if_nametoindex(ifname);
  if (ifindex === 0) throw Object.assign(new Error(`no network interface named '${ifname}'`), { code: 'ENODEV' });
  return ifindex;
}

/** A nonblocking AF_PACKET/SOCK_DGRAM socket; protocol 0, so nothing is queued before bind(). */
function packetSocket(ifname: string): number {
  const fd = libc().socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw sysError('socket(AF_PACKET)', ifname);
  return fd;
}

/**
 * A packet socket that receives IPv4 on one interface, filtered by `program` before bind() names
 * ETH_P_IP (so no packet is queued unfiltered); `rcvbuf` bytes of queue when given.
 */
function boundPacketSocket(
  ifname: string,
  ifindex: number,
  program: [number, number, number, number][],
  rcvbuf?: number,
): number {
  const c = libc();
  const fd = packetSocket(ifname);
  try {
    attachProgram(fd, ifname, program);
    if (rcvbuf !== undefined) {
      const size = Buffer.alloc(4);
      size.writeInt32LE(rcvbuf);
      // FORCE (root) may exceed net.core.rmem_max; else the plain option, capped by the kernel.
      if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) !== 0) c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4);
    }
    if (c.bind(fd, sockaddrLl(ifindex, false), SOCKADDR_LL_SIZE) !== 0) throw sysError('bind', ifname);
    return fd;
  } catch (err) {
    c.close(fd);
    throw err;
  }
}

/** Reads the frames queued on a packet socket, skipping our own transmissions looped back to taps. */
class FrameReader {
  #buf = Buffer.alloc(65536);
  #from = Buffer.alloc(SOCKADDR_LL_SIZE);
  #fromLen = Buffer.alloc(4);

  /** The next received IPv4 packet, or undefined when none is queued (or `soft` errno said so). */
  next(fd: number, ifname: string, soft: readonly number[]): Buffer | undefined {
    for (;;) {
      this.#fromLen.writeUInt32LE(SOCKADDR_LL_SIZE);
      const n = Number(
        libc().recvfrom(fd, this.#buf, BigInt(this.#buf.length), MSG_DONTWAIT, this.#from, this.#fromLen),
      );
      if (n < 0) {
        const e = errno();
        if (soft.includes(e)) return undefined;
        throw sysError('recvfrom', ifname, e);
      }
      if (this.#from[10] !== PACKET_OUTGOING) return this.#buf.subarray(0, n);
    }
  }
}

const { EAGAIN, EINTR, ENETDOWN } = osConstants.errno;

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
    const n = Number(libc().sendto(this.fd_, frame, BigInt(frame.length), 0, this.#dest, SOCKADDR_LL_SIZE));
    if (n < 0) throw sysError('sendto', this.ifname);
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

let cachedServer: ReturnType<typeof openServerLibc> | undefined;
function openServerLibc() {
  return dlopen('libc.so.6', {
    poll: { arguments: ['buffer', 'uint64', 'int32'], return: 'int32' },
    eventfd: { arguments: ['uint32', 'int32'], return: 'int32' },
    write: { arguments: ['int32', 'buffer', 'uint64'], return: 'int64' },
  }).functions;
}
const serverLibc = () => (cachedServer ??= openServerLibc());

const POLLIN = 1;

/** The BPF program of FILTER, for UDP to any destination port. */
export function udpPortFilter(port: number): [number, number, number, number][] {
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
    const n = Number(libc().sendto(this.fd_, frame, BigInt(frame.length), 0, this.#dest, SOCKADDR_LL_SIZE));
    if (n < 0) throw sysError('sendto', this.ifname);
  }
}

/**
 * Blocks in poll(2) until one of `fds` is readable or `timeoutMs` passes (-1: forever); returns
 * the readable ones. It blocks the calling thread: only for worker threads.
 */
export function pollReadable(fds: number[], timeoutMs: number): number[] {
  const set = Buffer.alloc(fds.length * 8);
  fds.forEach((fd, i) => {
    set.writeInt32LE(fd, i * 8);
    set.writeInt16LE(POLLIN, i * 8 + 4);
  });
  const n = serverLibc().poll(set, BigInt(fds.length), timeoutMs);
  if (n < 0) {
    const e = errno();
    if (e === osConstants.errno.EINTR) return [];
    throw sysError('poll', fds.join(','), e);
  }
  // Any revents (POLLIN, or POLLERR/POLLHUP/POLLNVAL) means "look at this fd now".
  return fds.filter((_, i) => set.readInt16LE(i * 8 + 6) !== 0);
}

/** An eventfd: a thread blocked in pollReadable on `fd` wakes when another calls wake(). */
export class WakeFd extends OwnedFd {
  constructor() {
    const fd = serverLibc().eventfd(0, SOCK_NONBLOCK | SOCK_CLOEXEC); // EFD_NONBLOCK/EFD_CLOEXEC share the values
    if (fd < 0) throw sysError('eventfd', '-');
    super('-', fd);
  }
  get fd(): number {
    return this.fd_;
  }
  wake(): void {
    if (this.fd_ < 0) return;
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    serverLibc().write(this.fd_, one, 8n);
  }
}

let cachedIoctl: ReturnType<typeof openIoctl> | undefined;
function openIoctl() {
  return dlopen('libc.so.6', { ioctl: { arguments: ['int32', 'uint64', 'buffer'], return: 'int32' } }).functions;
}
const SIOCGIFADDR = 0x8915n;
const SIOCGIFNETMASK = 0x891bn;

/**
 * The primary IPv4 address and mask of an interface, also while it has no carrier (Node's
 * os.networkInterfaces() leaves out interfaces that are not RUNNING); undefined when it has none.
 */
export function interfaceIpv4(ifname: string): { address: string; netmask: string } | undefined {
  if (Buffer.byteLength(ifname) > 15) return undefined;
  const fd = libc().socket(2 /* AF_INET */, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw sysError('socket(AF_INET)', ifname);
  try {
    const get = (request: bigint) => {
      const ifr = Buffer.alloc(40); // struct ifreq: name[16], then a struct sockaddr_in
      ifr.write(ifname, 0, 'latin1');
      return openIoctlCached().ioctl(fd, request, ifr) === 0 ? formatIp(ifr, 20) : undefined;
    };
    const address = get(SIOCGIFADDR);
    const netmask = address && get(SIOCGIFNETMASK);
    return address && netmask ? { address, netmask } : undefined;
  } finally {
    libc().close(fd);
  }
}
const openIoctlCached = () => (cachedIoctl ??= openIoctl());
