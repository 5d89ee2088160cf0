// What the kernel knows of a TCP socket and Node does not tell: the bytes sent that the peer has
// not acknowledged yet (tcp(7)'s SIOCOUTQ). The connection guard (util/http/connections.ts) reads
// a client's progress from it.
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
