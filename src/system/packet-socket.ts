// Packet sockets (AF_PACKET, SOCK_DGRAM) on one interface: IPv4 packets as they arrive, before
// routing, firewall and reverse-path filtering, and sent to a chosen MAC. The DHCP client and
// server use them (protocols/dhcp/socket.ts says why). Here are only the system calls: sockets
// with a classic BPF filter attached before bind(), receiving and sending frames, poll(2) and an
// eventfd for a worker thread, and an interface's IPv4 address (which Node cannot tell while the
// interface has no carrier).
import { constants as osConstants } from 'node:os';
import { getRawPointer } from 'node:ffi';
import { errno, glibc, SOCK, syscallError } from './glibc.ts';

const AF_PACKET = 17;
const ETH_P_IP = 0x0800;
const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const MSG_DONTWAIT = 0x40;
const PACKET_OUTGOING = 4;
const SOCKADDR_LL_SIZE = 20;

export const { EAGAIN, EINTR, ENETDOWN } = osConstants.errno;

/** A classic BPF program: rows of {code, jt, jf, k}. */
export type BpfProgram = [number, number, number, number][];

function socketError(syscall: string, ifname: string, e = errno()): NodeJS.ErrnoException {
  const code = syscallError(syscall, `on ${ifname}`, e);
  const hint =
    code.code === 'EPERM' || code.code === 'EACCES' ? ' (DHCP needs root: CAP_NET_RAW for a packet socket)' : '';
  return hint ? syscallError(syscall, `on ${ifname}`, e, hint) : code;
}

/** Attaches a classic BPF program (rows of code, jt, jf, k) to a socket. */
function attachProgram(fd: number, ifname: string, program: BpfProgram): void {
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
  if (glibc().setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16) !== 0)
    throw socketError('setsockopt(SO_ATTACH_FILTER)', ifname);
  void prog.length; // keeps `prog` reachable until after the call
}

/** The link-layer address of `ifindex` for IPv4, to the broadcast MAC when `broadcast`. */
export function sockaddrLl(ifindex: number, broadcast: boolean): Buffer {
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

/** A file descriptor this module owns: closed once, also by `using`. */
export class OwnedFd implements Disposable {
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
    glibc().close(this.fd_);
    this.fd_ = -1;
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

export function interfaceIndex(ifname: string): number {
  const ifindex = glibc().if_nametoindex(ifname);
  if (ifindex === 0) throw Object.assign(new Error(`no network interface named '${ifname}'`), { code: 'ENODEV' });
  return ifindex;
}

/** A nonblocking AF_PACKET/SOCK_DGRAM socket; protocol 0, so nothing is queued before bind(). */
export function packetSocket(ifname: string): number {
  const fd = glibc().socket(AF_PACKET, SOCK.DGRAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0);
  if (fd < 0) throw socketError('socket(AF_PACKET)', ifname);
  return fd;
}

/**
 * A packet socket that receives IPv4 on one interface, filtered by `program` before bind() names
 * ETH_P_IP (so no packet is queued unfiltered); `rcvbuf` bytes of queue when given.
 */
export function boundPacketSocket(ifname: string, ifindex: number, program: BpfProgram, rcvbuf?: number): number {
  const c = glibc();
  const fd = packetSocket(ifname);
  try {
    attachProgram(fd, ifname, program);
    if (rcvbuf !== undefined) {
      const size = Buffer.alloc(4);
      size.writeInt32LE(rcvbuf);
      // FORCE (root) may exceed net.core.rmem_max; else the plain option, capped by the kernel.
      if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) !== 0) c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4);
    }
    if (c.bind(fd, sockaddrLl(ifindex, false), SOCKADDR_LL_SIZE) !== 0) throw socketError('bind', ifname);
    return fd;
  } catch (err) {
    c.close(fd);
    throw err;
  }
}

/** Reads the frames queued on a packet socket, skipping our own transmissions looped back to taps. */
export class FrameReader {
  #buf = Buffer.alloc(65536);
  #from = Buffer.alloc(SOCKADDR_LL_SIZE);
  #fromLen = Buffer.alloc(4);

  /** The next received IPv4 packet, or undefined when none is queued (or `soft` errno said so). */
  next(fd: number, ifname: string, soft: readonly number[]): Buffer | undefined {
    for (;;) {
      this.#fromLen.writeUInt32LE(SOCKADDR_LL_SIZE);
      const n = Number(
        glibc().recvfrom(fd, this.#buf, BigInt(this.#buf.length), MSG_DONTWAIT, this.#from, this.#fromLen),
      );
      if (n < 0) {
        const e = errno();
        if (soft.includes(e)) return undefined;
        throw socketError('recvfrom', ifname, e);
      }
      if (this.#from[10] !== PACKET_OUTGOING) return this.#buf.subarray(0, n);
    }
  }
}

/** Sends one IPv4 packet on a packet socket to the link-layer address `dest` (sockaddrLl). */
export function sendFrame(fd: number, ifname: string, frame: Buffer, dest: Buffer): void {
  const n = Number(glibc().sendto(fd, frame, BigInt(frame.length), 0, dest, SOCKADDR_LL_SIZE));
  if (n < 0) throw socketError('sendto', ifname);
}

/** An eventfd: a thread blocked in pollReadable on `fd` wakes when another calls wake(). */
export class WakeFd extends OwnedFd {
  constructor() {
    const fd = glibc().eventfd(0, SOCK.NONBLOCK | SOCK.CLOEXEC); // EFD_NONBLOCK/EFD_CLOEXEC share the values
    if (fd < 0) throw syscallError('eventfd', '');
    super('-', fd);
  }
  get fd(): number {
    return this.fd_;
  }
  wake(): void {
    if (this.fd_ < 0) return;
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    glibc().write(this.fd_, one, 8n);
  }
}

const SIOCGIFADDR = 0x8915n;
const SIOCGIFNETMASK = 0x891bn;

/**
 * The primary IPv4 address and mask of an interface, also while it has no carrier (Node's
 * os.networkInterfaces() leaves out interfaces that are not RUNNING); undefined when it has none.
 */
export function interfaceIpv4(ifname: string): { address: string; netmask: string } | undefined {
  if (Buffer.byteLength(ifname) > 15) return undefined;
  const fd = glibc().socket(2 /* AF_INET */, SOCK.DGRAM | SOCK.CLOEXEC, 0);
  if (fd < 0) throw socketError('socket(AF_INET)', ifname);
  try {
    const get = (request: bigint) => {
      const ifr = Buffer.alloc(40); // struct ifreq: name[16], then a struct sockaddr_in
      ifr.write(ifname, 0, 'latin1');
      return glibc().ioctl(fd, request, ifr) === 0 ? [...ifr.subarray(20, 24)].join('.') : undefined;
    };
    const address = get(SIOCGIFADDR);
    const netmask = address && get(SIOCGIFNETMASK);
    return address && netmask ? { address, netmask } : undefined;
  } finally {
    glibc().close(fd);
  }
}
