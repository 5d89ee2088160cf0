// Connected IPv4 UDP sockets read and written through node:ffi (watched with poll.ts): for a
// thread of its own that serves many small datagram exchanges (the TFTP server's transfers,
// boot/tftp/transfer-thread.ts). Node's dgram costs about 12 µs of CPU per datagram received,
// outside the kernel: a buffer, an address string and an object per ACK, and a second recvmsg that
// finds nothing. Here a received datagram is one recv into a buffer reused, like dnsmasq's.
import { isIPv4 } from 'node:net';
import { constants as osConstants } from 'node:os';
import { addressOf, errno, glibc, SOCK, syscallError } from './glibc.ts';

const AF_INET = 2;
const SOCKADDR_IN_SIZE = 16;
const { EAGAIN, EINTR } = osConstants.errno;

/** A struct sockaddr_in for a dotted-quad IPv4 address and a port. */
export function sockaddrIn(address: string, port: number): Buffer {
  if (!isIPv4(address)) throw new Error(`not an IPv4 address: '${address}'`);
  const octets = address.split('.').map(Number);
  const sa = Buffer.alloc(SOCKADDR_IN_SIZE);
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  for (let i = 0; i < 4; i++) sa[4 + i] = octets[i];
  return sa;
}

/**
 * A buffer as the FFI binding takes it: its address and its length (uint64: a BigInt), worked out
 * again only when a different buffer is passed. A lock-step transfer sends every full block from
 * one packet, and the transfer thread receives into one buffer, so neither is converted per
 * datagram (a window's blocks, each a new view, still are). Holding the buffer keeps the address
 * valid.
 */
class NativeBuffer {
  private buffer: Buffer | undefined;
  address = 0n;
  length = 0n;
  of(buffer: Buffer): this {
    if (buffer !== this.buffer) {
      this.buffer = buffer;
      this.address = addressOf(buffer);
      this.length = BigInt(buffer.length);
    }
    return this;
  }
}

/** A nonblocking UDP socket bound to `local` (any port) and connected to `peer`. */
export class ConnectedUdpSocket {
  private fd_: number;
  private readonly subject: string;
  private readonly sending = new NativeBuffer();
  private readonly receiving = new NativeBuffer();

  constructor(local: string, peer: { address: string; port: number }) {
    this.subject = `towards ${peer.address}:${peer.port}`;
    const c = glibc();
    const fd = c.socket(AF_INET, SOCK.DGRAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0);
    if (fd < 0) throw syscallError('socket', this.subject);
    try {
      if (c.bind(fd, sockaddrIn(local, 0), SOCKADDR_IN_SIZE) !== 0) throw syscallError('bind', `to ${local}`);
      if (c.connect(fd, sockaddrIn(peer.address, peer.port), SOCKADDR_IN_SIZE) !== 0)
        throw syscallError('connect', this.subject);
    } catch (err) {
      c.close(fd);
      throw err;
    }
    this.fd_ = fd;
  }

  get fd(): number {
    return this.fd_;
  }

  /**
   * Sends `data` as one datagram: 0, or the errno it failed with. EAGAIN (the socket's buffer is
   * full) is a datagram lost, as on the wire; ECONNREFUSED is an ICMP port unreachable for an
   * earlier one.
   */
  send(data: Buffer): number {
    const b = this.sending.of(data);
    return glibc().send(this.fd_, b.address, b.length, 0) < 0n ? errno() : 0;
  }

  /** Receives one datagram into `into`: its length, -1 when none is queued, or throws on an error. */
  receive(into: Buffer): number {
    const b = this.receiving.of(into);
    const n = Number(glibc().recv(this.fd_, b.address, b.length, 0));
    if (n >= 0) return n;
    const e = errno();
    if (e === EAGAIN || e === EINTR) return -1;
    throw syscallError('recv', this.subject, e);
  }

  close(): void {
    if (this.fd_ < 0) return;
    glibc().close(this.fd_);
    this.fd_ = -1;
  }
}
