// The TFTP data plane's thread: every transfer's socket, in one epoll loop. Lock-step TFTP is all
// latency (firmware sends each ACK only once it has the block before), so the path from an ACK to
// the next DATA is kept to two system calls and no allocation: recv into one buffer, copy the
// block into the transfer's own preallocated packet, send it. Node's dgram path costs a buffer,
// an address object, a callback scope and a send request per packet: half the server's CPU, and
// 1.6x dnsmasq's time for 50 lock-step clients (bench/tftp-server.ts).
//
// The main thread parses requests, confines names and opens files (server.ts); it hands a
// transfer over as a Job on a MessagePort and wakes this thread through an eventfd. The protocol
// here is transfer.ts's, the one the main thread falls back to when this thread cannot start:
// windows (RFC 7440), ACKs beyond the acknowledged point are progress, repeated ACKs are ignored
// (no Sorcerer's Apprentice), only the timer resends. Timers are one deadline per transfer,
// scanned when the earliest may have passed: an ACK moves its transfer's deadline later, never
// earlier, so the earliest deadline seen at the last scan is a safe time to look again.
import fs from 'node:fs';
import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { getRawPointer } from 'node:ffi';
import { encodeError, ERROR_CODE, OPCODE } from '../../protocols/tftp/packets.ts';
import type { TransferOutcome } from './transfer.ts';
import { calls, connectedSocket, Epoll, errno, MSG_DONTWAIT } from './udp-calls.ts';

export interface Job {
  id: number;
  /** The server's address, which the transfer's socket binds to (a fresh port). */
  local: string;
  address: string;
  port: number;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  oack: Uint8Array | undefined;
  size: number;
  /** The bytes themselves (a virtual or netascii file), or an open descriptor the main thread closes. */
  data: Uint8Array | undefined;
  fd: number | undefined;
}

export type Control = { kind: 'start'; job: Job } | { kind: 'abort'; id: number; message: string } | { kind: 'stop' };
export type Report =
  | { kind: 'ready' }
  | { kind: 'done'; id: number; outcome: TransferOutcome }
  | { kind: 'error'; message: string };

const { EAGAIN, EINTR, ECONNREFUSED } = { EAGAIN: 11, EINTR: 4, ECONNREFUSED: 111 };
const post = (r: Report) => parentPort!.postMessage(r);

/** One datagram in: large enough for any ERROR a client may send (the rest would be junk). */
const inbox = Buffer.from(new ArrayBuffer(2048));
const inboxAt = getRawPointer(inbox);
const inboxLen = BigInt(inbox.length);
/** An OACK or ERROR out (both within 512 bytes, as packets.ts encodes them). */
const outbox = Buffer.alloc(1024);

class Transfer {
  readonly fd: number;
  deadline: number;
  finished = false;
  private readonly job: Job;
  private readonly total: number;
  private readonly started = performance.now();
  private readonly packet: Buffer;
  private readonly fullLen: bigint;
  private readonly packetAt: bigint;
  private acked: number;
  private sent = 0;
  private tries = 0;
  private retransmits = 0;
  private bytesSent = 0;
  /** Bytes of the file from chunkAt on (for a descriptor); the whole file for memory. */
  private chunk: Uint8Array;
  private chunkAt = 0;
  private readonly chunkSize: number;

  constructor(job: Job, fd: number, now: number) {
    this.job = job;
    this.fd = fd;
    this.total = Math.floor(job.size / job.blksize) + 1;
    this.acked = job.oack ? -1 : 0;
    this.packet = Buffer.from(new ArrayBuffer(job.blksize + 4));
    this.packetAt = getRawPointer(this.packet);
    this.packet.writeUInt16BE(OPCODE.data, 0);
    this.fullLen = BigInt(job.blksize + 4);
    // A chunk holds whole blocks and at least a window, so a window spans two chunks at most.
    this.chunkSize = job.blksize * Math.max(job.windowsize, Math.ceil((256 * 1024) / job.blksize));
    this.chunk = job.data ?? new Uint8Array(0);
    this.chunkAt = job.data ? 0 : -1;
    this.deadline = now + job.timeoutMs;
  }

  begin(): void {
    if (this.job.oack) this.sendRaw(this.job.oack);
    else this.pump(1);
  }

  /** The datagrams queued on the socket (one read per readiness: epoll reports it again if more wait). */
  readable(now: number): void {
    const n = calls().recvInto(this.fd, inboxAt, inboxLen, MSG_DONTWAIT);
    if (n < 0) {
      const e = errno();
      if (e === EAGAIN || e === EINTR) return;
      // ICMP port unreachable for a packet we sent: the client's socket is closed, it has gone.
      this.fail(e === ECONNREFUSED ? 'the client has gone (port unreachable)' : `socket error: errno ${e}`);
      return;
    }
    if (n === 4 && inbox[0] === 0 && inbox[1] === OPCODE.ack) return this.ack((inbox[2] << 8) | inbox[3], now);
    if (n >= 4 && inbox[0] === 0 && inbox[1] === OPCODE.error) {
      const code = (inbox[2] << 8) | inbox[3];
      const end = inbox.indexOf(0, 4);
      const text = inbox
        .toString('utf8', 4, end < 0 || end > n ? n : end)
        .replace(/[^\x20-\x7e]/g, '?')
        .slice(0, 200);
      this.fail(`the client sent ERROR ${code}${text ? ` (${text})` : ''}`, undefined, this.acked < 0);
    }
    // Anything else from the client's port (a repeated request, junk) has no place here: ignored.
  }

  private ack(wire: number, now: number): void {
    // The absolute block whose low 16 bits match, counted from the acknowledged point.
    const delta = (wire - (this.acked & 0xffff)) & 0xffff;
    if (delta === 0 || this.acked + delta > this.sent) return;
    this.acked += delta;
    this.tries = 0;
    this.deadline = now + this.job.timeoutMs;
    if (this.acked === this.total) return this.finish(true);
    this.pump(this.acked + 1);
  }

  timeout(now: number): void {
    if (this.tries >= this.job.retries) {
      const last =
        this.acked === this.total - 1 ? ' (the last block: the client may have it all and its final ACK was lost)' : '';
      const what = this.acked < 0 ? 'no ACK of the option acknowledgement' : `no ACK after block ${this.acked}${last}`;
      this.fail(
        `timed out: ${what} in ${((this.tries + 1) * this.job.timeoutMs) / 1000} s (${this.tries} retransmissions)`,
        'timed out',
      );
      return;
    }
    this.tries++;
    this.deadline = now + this.job.timeoutMs;
    if (this.acked < 0) {
      this.retransmits++;
      this.sendRaw(this.job.oack!);
    } else this.pump(this.acked + 1);
  }

  /** The window from block `from`: each block copied into the one packet buffer and sent. */
  private pump(from: number): void {
    const bs = this.job.blksize;
    const size = this.job.size;
    const to = Math.min(from + this.job.windowsize - 1, this.total);
    for (let n = from; n <= to; n++) {
      const start = (n - 1) * bs;
      const len = Math.min(bs, size - start);
      const bytes = this.bytes(start, start + len);
      this.packet.set(bytes, 4);
      this.packet[2] = (n >> 8) & 0xff;
      this.packet[3] = n & 0xff;
      const r = calls().sendFrom(this.fd, this.packetAt, len === bs ? this.fullLen : BigInt(len + 4), 0);
      if (r < 0) {
        const e = errno();
        if (e === ECONNREFUSED) return this.fail('the client has gone (port unreachable)');
        // EAGAIN (the socket's buffer is full): what was not sent is resent by the timer.
        if (e !== EAGAIN && e !== EINTR) return this.fail(`cannot send: errno ${e}`);
        break;
      }
      this.bytesSent += len;
      if (n <= this.sent) this.retransmits++;
      if (n > this.sent) this.sent = n;
    }
  }

  /** Bytes [from, to) of the file, never spanning a chunk (a block never does). */
  private bytes(from: number, to: number): Uint8Array {
    if (this.job.data) return this.job.data.subarray(from, to);
    if (this.chunkAt < 0 || from < this.chunkAt || to > this.chunkAt + this.chunk.length) this.load(from);
    return this.chunk.subarray(from - this.chunkAt, to - this.chunkAt);
  }

  private load(from: number): void {
    const at = Math.floor(from / this.chunkSize) * this.chunkSize;
    const len = Math.min(this.chunkSize, this.job.size - at);
    if (this.chunk.length < len) this.chunk = Buffer.allocUnsafeSlow(len);
    for (let got = 0; got < len; ) {
      const n = fs.readSync(this.job.fd!, this.chunk, got, len - got, at + got);
      if (n === 0) throw new Error(`file shrank while being sent (to ${at + got} of ${this.job.size} bytes)`);
      got += n;
    }
    this.chunk = this.chunk.subarray(0, len);
    this.chunkAt = at;
  }

  private sendRaw(b: Uint8Array): void {
    const len = Math.min(b.length, outbox.length);
    outbox.set(b.subarray(0, len));
    calls().send(this.fd, outbox, BigInt(len), 0);
  }

  /** Ends the transfer; with `tell`, the client gets an ERROR first. */
  fail(reason: string, tell?: string, probe?: boolean): void {
    if (this.finished) return;
    if (tell !== undefined) this.sendRaw(encodeError(ERROR_CODE.notDefined, tell));
    this.finish(false, reason, probe);
  }

  private finish(ok: boolean, reason?: string, probe?: boolean): void {
    this.finished = true;
    calls().close(this.fd); // leaves the epoll set with it
    transfers.delete(this.fd);
    byId.delete(this.job.id);
    const outcome: TransferOutcome = {
      ok,
      probe,
      reason,
      bytesSent: this.bytesSent,
      bytesAcked: Math.min(Math.max(this.acked, 0) * this.job.blksize, this.job.size),
      retransmits: this.retransmits,
      seconds: (performance.now() - this.started) / 1000,
    };
    post({ kind: 'done', id: this.job.id, outcome });
  }
}

const transfers = new Map<number, Transfer>();
const byId = new Map<number, Transfer>();
const { port, wakeFd } = workerData as { port: MessagePort; wakeFd: number };
const epoll = new Epoll();
const wakeBuf = Buffer.alloc(8);
let nextScan = Number.POSITIVE_INFINITY;
let stopping = false;

const READABLE = 0;
const TIMEOUT = 1;
const BEGIN = 2;
/** Runs a transfer's handler; a bug in it ends that transfer, never the thread (no closure: this is per packet). */
function guarded(t: Transfer, what: number, now: number): void {
  try {
    if (what === READABLE) t.readable(now);
    else if (what === TIMEOUT) t.timeout(now);
    else t.begin();
  } catch (err) {
    t.fail(`internal error: ${(err as Error).message}`, 'internal error');
  }
}

function control(now: number): void {
  calls().read(wakeFd, wakeBuf, 8n);
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const c = m.message as Control;
    if (c.kind === 'stop') stopping = true;
    else if (c.kind === 'abort') {
      const t = byId.get(c.id);
      t?.fail(c.message, c.message);
    } else {
      let fd: number;
      try {
        fd = connectedSocket(c.job.local, c.job.address, c.job.port);
      } catch (err) {
        const outcome = {
          ok: false,
          reason: (err as Error).message,
          bytesSent: 0,
          bytesAcked: 0,
          retransmits: 0,
          seconds: 0,
        };
        post({ kind: 'done', id: c.job.id, outcome });
        continue;
      }
      const t = new Transfer(c.job, fd, now);
      transfers.set(fd, t);
      byId.set(c.job.id, t);
      epoll.add(fd);
      if (t.deadline < nextScan) nextScan = t.deadline;
      guarded(t, BEGIN, now);
    }
  }
}

/**
 * One turn: up to TURN waits in epoll, then back to the thread's own event loop, which must run
 * now and then: the collector schedules its incremental work there, and a thread that never
 * yields piles it up until exit (where Node 26 was seen to crash draining it).
 */
const TURN = 256;
function turn(): void {
  try {
    for (let k = 0; k < TURN && !stopping; k++) {
      let now = performance.now();
      if (now >= nextScan) {
        nextScan = Number.POSITIVE_INFINITY;
        for (const t of transfers.values()) {
          if (t.deadline <= now) guarded(t, TIMEOUT, now);
          if (!t.finished && t.deadline < nextScan) nextScan = t.deadline;
        }
      }
      const wait = nextScan === Number.POSITIVE_INFINITY ? -1 : Math.max(0, Math.ceil(nextScan - now));
      const n = epoll.wait(wait);
      if (n < 0) {
        if (errno() === EINTR) continue;
        throw new Error(`epoll_wait failed: errno ${errno()}`);
      }
      now = performance.now();
      for (let i = 0; i < n; i++) {
        const fd = epoll.fdAt(i);
        if (fd === wakeFd) control(now);
        else {
          const t = transfers.get(fd);
          if (t) guarded(t, READABLE, now);
        }
      }
    }
  } catch (err) {
    post({ kind: 'error', message: (err as Error).stack ?? String(err) });
    stopping = true;
  }
  if (!stopping) {
    setImmediate(turn);
    return;
  }
  for (const t of [...transfers.values()]) t.fail('server shutting down', 'server shutting down');
  epoll.close();
}

epoll.add(wakeFd);
post({ kind: 'ready' });
turn();
