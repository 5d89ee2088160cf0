// The one binding of glibc (node:ffi): every system call Cradle makes that Node has no API for
// goes through this table, loaded once per thread, and fails the same way, as a Node-style error
// with the errno's name, the call and what it was made on.
import { constants as osConstants } from 'node:os';

/**
 * node:ffi, loaded at the first call rather than at import: this module is imported by every web
 * port (tcp.ts, for the connection guard), and loading node:ffi prints Node's experimental-feature
 * warning in a process that may never call it.
 */
const ffi = () => process.getBuiltinModule('node:ffi') as typeof import('node:ffi');

function open() {
  return ffi().dlopen('libc.so.6', {
    // File metadata Node's fs lacks (libc.ts).
    utimensat: { arguments: ['int32', 'string', 'buffer', 'int32'], return: 'int32' },
    futimens: { arguments: ['int32', 'buffer'], return: 'int32' },
    fsetxattr: { arguments: ['int32', 'string', 'buffer', 'uint64', 'int32'], return: 'int32' },
    mknod: { arguments: ['string', 'uint32', 'uint64'], return: 'int32' },
    lsetxattr: { arguments: ['string', 'string', 'buffer', 'uint64', 'int32'], return: 'int32' },
    llistxattr: { arguments: ['string', 'buffer', 'uint64'], return: 'int64' },
    lgetxattr: { arguments: ['string', 'string', 'buffer', 'uint64'], return: 'int64' },
    lremovexattr: { arguments: ['string', 'string'], return: 'int32' },
    syncfs: { arguments: ['int32'], return: 'int32' },
    // Packet sockets, polling and interface addresses (packet-socket.ts).
    socket: { arguments: ['int32', 'int32', 'int32'], return: 'int32' },
    setsockopt: { arguments: ['int32', 'int32', 'int32', 'buffer', 'uint32'], return: 'int32' },
    getsockopt: { arguments: ['int32', 'int32', 'int32', 'buffer', 'buffer'], return: 'int32' },
    bind: { arguments: ['int32', 'buffer', 'uint32'], return: 'int32' },
    sendto: { arguments: ['int32', 'buffer', 'uint64', 'int32', 'buffer', 'uint32'], return: 'int64' },
    recvfrom: { arguments: ['int32', 'buffer', 'uint64', 'int32', 'buffer', 'buffer'], return: 'int64' },
    close: { arguments: ['int32'], return: 'int32' },
    // Connected UDP sockets (udp-socket.ts).
    connect: { arguments: ['int32', 'buffer', 'uint32'], return: 'int32' },
    // Per datagram: buffers by address (addressOf), not converted on every call.
    send: { arguments: ['int32', 'pointer', 'uint64', 'int32'], return: 'int64' },
    recv: { arguments: ['int32', 'pointer', 'uint64', 'int32'], return: 'int64' },
    if_nametoindex: { arguments: ['string'], return: 'uint32' },
    poll: { arguments: ['pointer', 'uint64', 'int32'], return: 'int32' },
    eventfd: { arguments: ['uint32', 'int32'], return: 'int32' },
    write: { arguments: ['int32', 'buffer', 'uint64'], return: 'int64' },
    ioctl: { arguments: ['int32', 'uint64', 'buffer'], return: 'int32' },
    __errno_location: { arguments: [], return: 'pointer' },
  }).functions;
}

/** socket(2) type flags (Linux). */
export const SOCK = { DGRAM: 2, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;

let cached: ReturnType<typeof open> | undefined;
export const glibc = () => (cached ??= open());

/**
 * The address of a buffer's first byte, for a call made on every datagram (send, recv, poll): a
 * `buffer` argument is converted on each call, which cost about 0.5 µs of a 2 µs call here
 * (measured with recv on an empty socket). The address is valid while the buffer is alive: the
 * caller keeps a reference to it for as long as it passes the address.
 */
export const addressOf = (buffer: Buffer): bigint => ffi().getRawPointer(buffer);

/** The calling thread's errno, right after a failed call. */
export const errno = (): number => ffi().getInt32(glibc().__errno_location());

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, num]) => [num as number, name]),
);

/** A failed call as Node reports its own: `EPERM: bind failed on eth0`, with code and errno set. */
export function syscallError(syscall: string, subject: string, e = errno(), hint = ''): NodeJS.ErrnoException {
  const code = errnoNames.get(e) ?? `E${e}`;
  const err = new Error(`${code}: ${syscall} failed ${subject}${hint}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -e;
  err.syscall = syscall;
  return err;
}
