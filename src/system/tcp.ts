// What the kernel knows of a TCP socket and Node does not tell: the bytes sent that the peer has
// not acknowledged yet (tcp(7)'s SIOCOUTQ), and how long sending has waited on the peer's receive
// window (TCP_INFO). The connection guard (util/http/connections.ts) reads a client's progress,
// and whether the client is what holds it back, from them.
import { glibc } from './glibc.ts';

const SIOCOUTQ = 0x5411n;
const outqBuf = Buffer.alloc(4);

/** Bytes the kernel holds for the TCP socket of `fd` that its peer has not acknowledged; undefined if it cannot say. */
export function unacknowledgedBytes(fd: number | undefined): number | undefined {
  if (typeof fd !== 'number' || fd < 0) return undefined;
  try {
    return glibc().ioctl(fd, SIOCOUTQ, outqBuf) === 0 ? outqBuf.readInt32LE(0) : undefined;
  } catch {
    return undefined; // no FFI here
  }
}

const IPPROTO_TCP = 6;
const TCP_INFO = 11;
/** struct tcp_info (linux/tcp.h): tcpi_rwnd_limited, a u64 of microseconds, since Linux 4.10. */
const RWND_LIMITED_AT = 176;
const infoBuf = Buffer.alloc(256);
const infoLen = Buffer.alloc(4);

/**
 * Microseconds the TCP socket of `fd` has spent unable to send because its peer's receive window
 * was full (the peer not reading), since it opened; undefined if the kernel cannot say.
 */
export function receiveWindowLimitedUs(fd: number | undefined): number | undefined {
  if (typeof fd !== 'number' || fd < 0) return undefined;
  try {
    infoLen.writeUInt32LE(infoBuf.length);
    if (glibc().getsockopt(fd, IPPROTO_TCP, TCP_INFO, infoBuf, infoLen) !== 0) return undefined;
    if (infoLen.readUInt32LE(0) < RWND_LIMITED_AT + 8) return undefined;
    return Number(infoBuf.readBigUInt64LE(RWND_LIMITED_AT));
  } catch {
    return undefined; // no FFI here
  }
}
