// The system calls of the TFTP data plane (data-plane-worker.ts): UDP sockets connected to one
// client each, epoll over all of them, and the eventfd the main thread wakes it with.
//
// These belong in system/glibc.ts's one table (connect, send, recv, read and epoll are not in it
// yet). Results are int32, not int64: an int64 result is a BigInt allocated per call, this thread
// makes two calls per block, and int32 is exact here (a datagram is under 64 KiB). The per-block
// pair also has raw-pointer forms (recvInto, sendFrom): a `buffer` argument costs a conversion per
// call. Their buffers are ArrayBuffer-backed (memory outside V8's heap, which never moves) and
// kept alive by their owner. epoll_wait and read keep `buffer` arguments: with raw pointers there
// as well, the thread corrupted the heap under load on Node 26.10 (not understood; not repeated
// with pointers for send and recv alone, under the same load).
import { dlopen, getInt32 } from 'node:ffi';
import { syscallError } from '../../system/glibc.ts';

function open() {
  const libc = dlopen('libc.so.6', {
    socket: { arguments: ['int32', 'int32', 'int32'], return: 'int32' },
    bind: { arguments: ['int32', 'buffer', 'uint32'], return: 'int32' },
    connect: { arguments: ['int32', 'buffer', 'uint32'], return: 'int32' },
    send: { arguments: ['int32', 'buffer', 'uint64', 'int32'], return: 'int32' },
    recv: { arguments: ['int32', 'buffer', 'uint64', 'int32'], return: 'int32' },
    read: { arguments: ['int32', 'buffer', 'uint64'], return: 'int32' },
    close: { arguments: ['int32'], return: 'int32' },
    epoll_create1: { arguments: ['int32'], return: 'int32' },
    epoll_ctl: { arguments: ['int32', 'int32', 'int32', 'buffer'], return: 'int32' },
    epoll_wait: { arguments: ['int32', 'buffer', 'int32', 'int32'], return: 'int32' },
    __errno_location: { arguments: [], return: 'pointer' },
  });
  return {
    ...libc.functions,
    recvInto: libc.lib.getFunction('recv', { arguments: ['int32', 'pointer', 'uint64', 'int32'], return: 'int32' }),
    sendFrom: libc.lib.getFunction('send', { arguments: ['int32', 'pointer', 'uint64', 'int32'], return: 'int32' }),
  };
}

let cached: ReturnType<typeof open> | undefined;
export const calls = () => (cached ??= open());

let errnoAt: bigint | undefined;
/** This thread's errno (its address is fixed for the thread's life). */
export const errno = (): number => getInt32((errnoAt ??= calls().__errno_location()));

export const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40;
export const EPOLLIN = 0x1;
export const EPOLLERR = 0x8;
const EPOLL_CTL_ADD = 1;
const EPOLL_CLOEXEC = 0o2000000;

/** struct sockaddr_in for an IPv4 address in dotted form. */
export function sockaddrIn(address: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`TFTP data plane: ${address} is not an IPv4 address`);
  for (let i = 0; i < 4; i++) b[4 + i] = parts[i];
  return b;
}

/** A non-blocking UDP socket bound to `local` (port 0: a fresh transfer ID) and connected to the client. */
export function connectedSocket(local: string, client: string, port: number): number {
  const c = calls();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw syscallError('socket', `for ${client}:${port}`, errno());
  try {
    if (c.bind(fd, sockaddrIn(local, 0), 16) < 0) throw syscallError('bind', `to ${local}`, errno());
    if (c.connect(fd, sockaddrIn(client, port), 16) < 0) throw syscallError('connect', `to ${client}:${port}`, errno());
  } catch (err) {
    c.close(fd);
    throw err;
  }
  return fd;
}

/** struct epoll_event is packed on x86-64 (12 bytes) and naturally aligned elsewhere (16). */
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const EPOLL_DATA_AT = process.arch === 'x64' ? 4 : 8;

/** epoll over fds, reporting each ready one by its number. */
export class Epoll {
  readonly fd: number;
  readonly events: Buffer;
  private readonly max: number;
  private readonly one = Buffer.alloc(EPOLL_EVENT_SIZE);
  constructor(max = 256) {
    this.fd = calls().epoll_create1(EPOLL_CLOEXEC);
    if (this.fd < 0) throw syscallError('epoll_create1', '', errno());
    this.max = max;
    this.events = Buffer.alloc(max * EPOLL_EVENT_SIZE);
  }
  add(fd: number): void {
    this.one.fill(0);
    this.one.writeUInt32LE(EPOLLIN, 0);
    this.one.writeInt32LE(fd, EPOLL_DATA_AT);
    if (calls().epoll_ctl(this.fd, EPOLL_CTL_ADD, fd, this.one) < 0)
      throw syscallError('epoll_ctl', `on ${fd}`, errno());
  }
  /** Ready fds are at fdAt(0..n-1); n is -1 with errno on failure. A closed fd leaves the set by itself. */
  wait(timeoutMs: number): number {
    return calls().epoll_wait(this.fd, this.events, this.max, timeoutMs);
  }
  fdAt(i: number): number {
    return this.events.readInt32LE(i * EPOLL_EVENT_SIZE + EPOLL_DATA_AT);
  }
  close(): void {
    calls().close(this.fd);
  }
}
