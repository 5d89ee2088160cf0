// The TFTP server's transfers, on a thread of their own. A transfer is a stream of small
// datagrams, one ACK in and one block out at a time for a lock-step client (a machine's
// firmware), so its cost is per datagram: through Node's dgram that was about 12 µs of CPU each
// outside the kernel (bench/tftp-server.ts, perf), more than dnsmasq's whole cost per block. Here
// the transfers' sockets (system/udp-socket.ts) are watched with one poll(2) and read with one
// recv each, as dnsmasq does, and each transfer is the same Transfer (transfer.ts) as before.
//
// The thread turns: for POLL_MS it polls, handing each readable socket's datagram to its transfer,
// then it yields to its own event loop (setImmediate) for the transfers' timers, file reads and
// the main thread's messages. With no transfer it does not poll at all.
//
// The main thread (transfer-engine.ts) opens and checks every file; this thread reads the
// descriptor it is lent and never closes it.
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { PollSet } from '../../system/poll.ts';
import { ConnectedUdpSocket } from '../../system/udp-socket.ts';
import { syscallError } from '../../system/glibc.ts';
import { LimitedLog } from '../../util/limited-log.ts';
import { FileCache, type FileIdentity } from './file-cache.ts';
import { FileSource, MemorySource, type ReadableFile, type Source } from './source.ts';
import { Transfer, type TransferOutcome, type TransferSocket } from './transfer.ts';

export interface TransferThreadData {
  /** Bytes of files kept in memory for every transfer to share (FileCache). */
  cacheBytes: number;
  /**
   * The descriptors of the sockets this thread has open, an Int32 slot each (-1: free), shared
   * with the main thread: should this thread die, the main thread closes what it left open
   * (transfer-engine.ts). A slot is filled after its socket is made and emptied before it is
   * closed, so a descriptor in the table is always this thread's own, open socket.
   */
  sockets: SharedArrayBuffer;
}

/** What a transfer sends: bytes made by the main thread, or a file it opened and checked. */
export type SourceSpec =
  | { kind: 'bytes'; data: Uint8Array }
  | {
      kind: 'file';
      /** Lent: the main thread closes it once the transfer is done. */
      fd: number;
      /** What fstat said of it: its identity in the cache. */
      stat: FileIdentity;
    };

export type ToTransferThread =
  | {
      kind: 'start';
      id: number;
      /** The server's address, which the transfer's socket is bound to (any port). */
      local: string;
      client: { address: string; port: number };
      source: SourceSpec;
      blksize: number;
      windowsize: number;
      timeoutMs: number;
      retries: number;
      oack?: Uint8Array;
    }
  | { kind: 'abort'; id: number; message: string };

export type FromTransferThread =
  | { kind: 'ready' }
  /** Its client acknowledged something (Transfer.heard): it is no forgery. */
  | { kind: 'heard'; id: number }
  | { kind: 'done'; id: number; outcome: TransferOutcome; bytesSent: number }
  /** It could not start (no socket): the main thread logs why and tells the client. */
  | { kind: 'failed'; id: number; message: string }
  /** Something went wrong outside any one transfer, for the log. */
  | { kind: 'error'; message: string };

/** How long a turn polls: about how late a timer, a file read or a message can be. */
const POLL_MS = 2;
/** Room for any datagram a client sends (a request never reaches a transfer's port). */
const RECEIVE_BYTES = 2048;

const { EAGAIN } = osConstants.errno;
const data = workerData as TransferThreadData;
const post = (m: FromTransferThread) => parentPort!.postMessage(m);
const cache = new FileCache(data.cacheBytes);
const held = new Int32Array(data.sockets);
/** Where the search for a free slot of `held` starts: after the last one taken. */
let nextSlot = 0;

/** Records `fd` in `held`: its slot, or -1 when the table is full (then only a death leaks it). */
function hold(fd: number): number {
  for (let n = 0; n < held.length; n++) {
    const i = (nextSlot + n) % held.length;
    if (Atomics.load(held, i) === -1) {
      Atomics.store(held, i, fd);
      nextSlot = i + 1;
      return i;
    }
  }
  return -1;
}

const received = Buffer.alloc(RECEIVE_BYTES);

/** A transfer's socket as Transfer uses it, over a ConnectedUdpSocket. */
class ThreadSocket implements TransferSocket {
  private onMessage: ((msg: Buffer) => void) | undefined;
  private onError: ((err: NodeJS.ErrnoException) => void) | undefined;
  readonly udp: ConnectedUdpSocket;
  private readonly slot: number;
  private readonly subject: string;
  private joined: Buffer | undefined;

  constructor(udp: ConnectedUdpSocket, slot: number, subject: string) {
    this.udp = udp;
    this.slot = slot;
    this.subject = subject;
  }

  on(event: 'message' | 'error', listener: ((msg: Buffer) => void) | ((err: NodeJS.ErrnoException) => void)) {
    if (event === 'message') this.onMessage = listener as (msg: Buffer) => void;
    else this.onError = listener as (err: NodeJS.ErrnoException) => void;
    return this;
  }

  removeAllListeners(event: 'message' | 'error') {
    if (event === 'message') this.onMessage = undefined;
    else this.onError = undefined;
    return this;
  }

  send(msg: Buffer | Buffer[], sent?: () => void): void {
    const e = this.udp.send(Array.isArray(msg) ? this.join(msg) : msg);
    // A full socket buffer loses the datagram, as the wire may: the transfer's timer resends it.
    if (e !== 0 && e !== EAGAIN) {
      const err = syscallError('send', this.subject, e);
      queueMicrotask(() => this.onError?.(err));
    }
    if (sent) queueMicrotask(sent);
  }

  getSendQueueCount(): number {
    return 0; // every send is handed to the kernel at once, or lost
  }

  close(): void {
    // Closed already: a transfer that failed to start, then timed out.
    if (this.udp.fd >= 0) closeHeld(this.udp, this.slot);
  }

  /** The socket is readable: one datagram (or its error) to the transfer. */
  readable(): void {
    let n: number;
    try {
      n = this.udp.receive(received);
    } catch (err) {
      this.onError?.(err as NodeJS.ErrnoException);
      return;
    }
    if (n >= 0) this.onMessage?.(received.subarray(0, n));
  }

  /** Window blocks go as header and payload: joined into one buffer kept for the purpose. */
  private join(parts: Buffer[]): Buffer {
    let length = 0;
    for (const p of parts) length += p.length;
    if (!this.joined || this.joined.length < length) this.joined = Buffer.allocUnsafe(Math.max(length, 1472));
    let at = 0;
    for (const p of parts) at += p.copy(this.joined, at);
    return this.joined.subarray(0, length);
  }
}

/** What to do when a transfer's socket is readable, by its descriptor. */
const readers = new Map<number, () => void>();
const transfers = new Map<number, Transfer>();
const poll = new PollSet();
let watchedChanged = false;
let turning = false;

/**
 * Stops watching an open socket and closes it, its slot emptied first (see
 * TransferThreadData.sockets), and only if the slot still holds it.
 */
function closeHeld(udp: ConnectedUdpSocket, slot: number): void {
  readers.delete(udp.fd);
  watchedChanged = true;
  if (slot >= 0) Atomics.compareExchange(held, slot, udp.fd, -1);
  udp.close();
}

/** A Buffer over the bytes a message brought (structured clone gives back a plain Uint8Array). */
const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** A file descriptor lent by the main thread, read where asked; never closed here. */
function lentFile(fd: number): ReadableFile {
  return {
    read: (buffer, offset, length, position) =>
      new Promise((resolve, reject) =>
        fs.read(fd, buffer, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve({ bytesRead }))),
      ),
    close: async () => {},
  };
}

function openSource(spec: SourceSpec, blksize: number, windowsize: number): Source {
  if (spec.kind === 'bytes') return new MemorySource(asBuffer(spec.data));
  const file = lentFile(spec.fd);
  const cached = cache.open(file, spec.stat);
  if (cached) return cached;
  const source = new FileSource(file, spec.stat.size);
  source.setChunk(blksize, windowsize);
  return source;
}

function start(m: Extract<ToTransferThread, { kind: 'start' }>): void {
  let udp: ConnectedUdpSocket | undefined;
  let slot = -1;
  try {
    udp = new ConnectedUdpSocket(m.local, m.client);
    const fd = udp.fd;
    slot = hold(fd);
    const socket = new ThreadSocket(udp, slot, `towards ${m.client.address}:${m.client.port}`);
    let bytesSent = 0;
    const transfer = new Transfer(
      socket,
      openSource(m.source, m.blksize, m.windowsize),
      {
        blksize: m.blksize,
        windowsize: m.windowsize,
        timeoutMs: m.timeoutMs,
        retries: m.retries,
        oack: m.oack && asBuffer(m.oack),
      },
      (bytes) => (bytesSent += bytes),
    );
    let heard = false;
    readers.set(fd, () => {
      socket.readable();
      if (!heard && transfer.heard) {
        heard = true;
        post({ kind: 'heard', id: m.id });
      }
    });
    watchedChanged = true;
    transfers.set(m.id, transfer);
    void transfer.done.then((outcome) => {
      transfers.delete(m.id);
      post({ kind: 'done', id: m.id, outcome, bytesSent });
    });
    transfer.start();
  } catch (err) {
    // A transfer that cannot start costs only itself: its socket is closed, the main thread told.
    if (udp && udp.fd >= 0) closeHeld(udp, slot);
    transfers.delete(m.id);
    post({ kind: 'failed', id: m.id, message: (err as Error).message });
    return;
  }
  if (!turning) {
    turning = true;
    setImmediate(turn);
  }
}

/** poll(2)'s errors, told at most once a second. */
const pollErrors = new LimitedLog(
  (message) => post({ kind: 'error', message }),
  1,
  1000,
  (n) => `${n} more poll errors`,
);

/**
 * One turn: for POLL_MS, each datagram handed to its transfer as it comes; then back to the event
 * loop. The turn stays in poll(2) rather than yielding after each datagram because a lock-step
 * client's next ACK comes back within microseconds: a turn of the event loop per datagram cost
 * about a fifth of the thread's CPU per block (bench/tftp-server.ts, one curl client).
 */
function turn(): void {
  const until = performance.now() + POLL_MS;
  try {
    for (let left = POLL_MS; left > 0 && readers.size > 0; left = until - performance.now()) {
      if (watchedChanged) {
        poll.watch([...readers.keys()]);
        watchedChanged = false;
      }
      poll.wait(Math.ceil(left), (fd) => readers.get(fd)?.());
    }
  } catch (err) {
    // Not expected (EINTR is handled below it); the set is made afresh and the turns go on.
    watchedChanged = true;
    pollErrors.line((err as Error).message);
  }
  if (readers.size === 0) turning = false;
  else setImmediate(turn);
}

parentPort!.on('message', (m: ToTransferThread) => {
  if (m.kind === 'start') start(m);
  else transfers.get(m.id)?.abort(m.message);
});
post({ kind: 'ready' });
