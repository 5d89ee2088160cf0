// One read transfer, on its own UDP socket (its transfer ID), connected to the client so the
// kernel delivers nothing from anyone else and reports an ICMP "port unreachable" when the client
// has gone. Blocks go out a window at a time (RFC 7440; a window of 1 is RFC 1350's lock step).
//
// Block numbers are kept absolute and cut to 16 bits only on the wire, so a file of more than
// 65535 blocks rolls over to 0 like tftp-hpa, dnsmasq, curl and busybox expect. An ACK names the
// last block the client has in order:
//   - beyond the acknowledged point and at most the last block sent: progress; if it is short of
//     the window's end, blocks after it were lost and the window is sent again from there;
//   - equal to the acknowledged point, or anything else: ignored. Answering a repeated ACK with
//     more DATA is the Sorcerer's Apprentice bug (every duplicate doubles the traffic from then
//     on); only our own timer resends.
import { decodePacket, encodeError, ERROR_CODE, OPCODE } from '../../protocols/tftp/packets.ts';
import type { Source } from './source.ts';

/**
 * What a transfer needs of its socket (a subset of node:dgram's Socket): the transfer thread's
 * socket over udp-socket.ts (transfer-thread.ts).
 */
export interface TransferSocket {
  on(event: 'message', listener: (msg: Buffer) => void): unknown;
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown;
  removeAllListeners(event: 'message' | 'error'): unknown;
  /** Sends one datagram (parts are joined); `sent` is called once it is handed to the kernel. */
  send(msg: Buffer | Buffer[], sent?: () => void): void;
  /** Sends queued and not yet handed to the kernel. */
  getSendQueueCount(): number;
  close(): void;
}

export interface TransferSettings {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  /** The OACK to send first (block 0), when the client asked for options the server honours. */
  oack: Buffer | undefined;
}

export interface TransferOutcome {
  ok: boolean;
  /**
   * The client ended it with an ERROR right after the OACK: what PXE ROMs do to learn a file's
   * size (tsize) before asking again for real. Not a failure.
   */
  probe?: boolean;
  /** Why it failed, for the log. */
  reason?: string;
  /** DATA payload bytes put on the wire, retransmissions included. */
  bytesSent: number;
  /** File bytes the client acknowledged. */
  bytesAcked: number;
  retransmits: number;
  seconds: number;
}

export class Transfer {
  readonly done: Promise<TransferOutcome>;
  private readonly sock: TransferSocket;
  private readonly source: Source;
  private readonly s: TransferSettings;
  private readonly total: number;
  private readonly started = performance.now();
  private settle!: (o: TransferOutcome) => void;
  private finished = false;
  /** Highest block the client acknowledged in order; -1 while the OACK (block 0) is unanswered. */
  private acked: number;
  /** Highest block sent so far (0: only the OACK, or nothing yet). */
  private sent = 0;
  /** First block of the window to send once its bytes are ready. */
  private pending: number | undefined;
  private loading = false;
  private tries = 0;
  private retransmits = 0;
  private bytesSent = 0;
  /**
   * One timer per transfer, armed for the retransmit deadline but not moved by every block: a
   * block only stamps `lastSent`, and when the timer fires early (progress was made since it was
   * armed) it is armed again for the real deadline. Re-arming a timer per block was a measurable
   * share of a lock-step block's cost.
   */
  private timer: NodeJS.Timeout | undefined;
  /** When the window now in flight was last sent (performance.now()). */
  private lastSent = 0;
  /**
   * The one packet a lock-step transfer (windowsize 1) sends its blocks from, instead of a new
   * header and view per block. It is rewritten only for the next block and only when the socket
   * has no send queued (a send the kernel could not take at once waits in libuv and reads the
   * buffer later): a retransmission that had to wait, overtaken by a late ACK, would otherwise go
   * out as the next block's header over a mix of two blocks. A timeout resends the same block
   * from it unchanged. Windows send header and payload as two buffers.
   */
  private packet: Buffer | undefined;
  /** Block number now in `packet` (0: none). */
  private inPacket = 0;
  private readonly onSent: (bytes: number) => void;
  private readonly onTimer = () => this.guard(() => this.onTimeout());

  constructor(sock: TransferSocket, source: Source, settings: TransferSettings, onSent: (bytes: number) => void) {
    this.sock = sock;
    this.source = source;
    this.s = settings;
    this.onSent = onSent;
    // The last block is the short one: a file that is an exact multiple of the block size ends
    // with an empty block, so the client can tell it has everything.
    this.total = Math.floor(source.size / settings.blksize) + 1;
    this.acked = settings.oack ? -1 : 0;
    if (settings.windowsize === 1) {
      this.packet = Buffer.allocUnsafe(4 + settings.blksize);
      this.packet.writeUInt16BE(OPCODE.data, 0);
    }
    this.done = new Promise((resolve) => (this.settle = resolve));
  }

  start(): void {
    this.sock.on('message', (msg: Buffer) => {
      try {
        this.onMessage(msg);
      } catch (err) {
        this.fail(`internal error: ${(err as Error).message}`, 'internal error');
      }
    });
    this.sock.on('error', (err: NodeJS.ErrnoException) => {
      // ICMP port unreachable for a packet we sent: the client's socket is closed, it has gone.
      this.fail(
        err.code === 'ECONNREFUSED' ? 'the client has gone (port unreachable)' : `socket error: ${err.message}`,
      );
    });
    this.lastSent = performance.now();
    this.timer = setTimeout(this.onTimer, this.s.timeoutMs);
    if (this.s.oack) this.sock.send(this.s.oack);
    else this.queue(1);
  }

  /**
   * Whether the client has acknowledged anything yet. One that never does may not exist: a
   * request's source address can be forged, and only the real client sees the answer.
   */
  get heard(): boolean {
    return this.acked > (this.s.oack ? -1 : 0);
  }

  /** Ends the transfer now, telling the client why (server shutting down). */
  abort(message: string): void {
    this.fail(message, message);
  }

  /** A bug in a handler must end this transfer, not the server. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(`internal error: ${(err as Error).message}`, 'internal error');
    }
  }

  private onMessage(msg: Buffer): void {
    if (this.finished) return;
    // An ACK is nearly every packet a transfer gets: read it without building a decoded object.
    if (msg.length === 4 && msg[0] === 0 && msg[1] === OPCODE.ack) return this.onAck(msg.readUInt16BE(2));
    const p = decodePacket(msg);
    if (p.op === 'error')
      this.fail(`the client sent ERROR ${p.code}${p.message ? ` (${p.message})` : ''}`, undefined, this.acked < 0);
    // Anything else from the client's port (a repeated request, junk) has no place here: ignored.
  }

  private onAck(wire: number): void {
    // The absolute block whose low 16 bits match, counted from the acknowledged point; windows are
    // far below 32768 blocks, so this cannot be confused with a block a full wrap away.
    const delta = (wire - (this.acked & 0xffff)) & 0xffff;
    if (delta === 0 || this.acked + delta > this.sent) return;
    this.acked += delta;
    this.tries = 0;
    if (this.acked === this.total) return this.succeed();
    this.queue(this.acked + 1);
  }

  private onTimeout(): void {
    if (this.finished) return;
    // Armed for an earlier deadline: something was sent since, so the real one is later.
    const left = this.lastSent + this.s.timeoutMs - performance.now();
    if (left >= 1) {
      this.timer = setTimeout(this.onTimer, left);
      return;
    }
    if (this.tries >= this.s.retries) {
      // A client that exits on sending its final ACK (busybox does) leaves no way to tell a lost
      // final ACK from a lost client: say so rather than report a plain failure.
      const last =
        this.acked === this.total - 1 ? ' (the last block: the client may have it all and its final ACK was lost)' : '';
      const what = this.acked < 0 ? 'no ACK of the option acknowledgement' : `no ACK after block ${this.acked}${last}`;
      this.fail(
        `timed out: ${what} in ${((this.tries + 1) * this.s.timeoutMs) / 1000} s (${this.tries} retransmissions)`,
        'timed out',
      );
      return;
    }
    this.tries++;
    this.lastSent = performance.now();
    this.timer = setTimeout(this.onTimer, this.s.timeoutMs);
    if (this.acked < 0) {
      this.retransmits++;
      this.sock.send(this.s.oack!);
    } else this.queue(this.acked + 1);
  }

  /** Sends the window starting at `from` as soon as its bytes are read. */
  private queue(from: number): void {
    this.pending = from;
    this.pump();
  }

  private pump(): void {
    // While a read is in flight, a newer ACK only moves `pending`: the read's completion sends
    // the window from wherever the transfer has got to by then.
    if (this.loading || this.finished || this.pending === undefined) return;
    const from = this.pending;
    const to = Math.min(from + this.s.windowsize - 1, this.total);
    const bs = this.s.blksize;
    const wait = this.source.prepare((from - 1) * bs, Math.min(to * bs, this.source.size));
    if (wait) {
      this.loading = true;
      this.lastSent = performance.now(); // waiting on the file is not the client's silence
      wait.then(
        () => {
          this.loading = false;
          this.guard(() => this.pump());
        },
        (err: Error) => this.fail(`cannot read the file: ${err.message}`, 'read error'),
      );
      return;
    }
    this.pending = undefined;
    let packet = this.packet;
    if (packet !== undefined) {
      // Lock step: one block, from the transfer's own packet (see `packet`).
      const end = Math.min(from * bs, this.source.size);
      const length = end - (from - 1) * bs;
      if (this.inPacket !== from) {
        if (this.sock.getSendQueueCount() > 0) {
          packet = this.packet = Buffer.allocUnsafe(4 + bs);
          packet.writeUInt16BE(OPCODE.data, 0);
        }
        this.source.copyTo(packet, 4, (from - 1) * bs, end);
        packet[2] = (from >> 8) & 0xff;
        packet[3] = from & 0xff;
        this.inPacket = from;
      }
      // A full block goes as the packet itself; only the last, short one needs a view of it.
      this.sock.send(length === bs ? packet : packet.subarray(0, 4 + length));
      this.sentBlocks(from, from, length);
      return;
    }
    let bytes = 0;
    for (let n = from; n <= to; n++) {
      const data = this.source.slice((n - 1) * bs, Math.min(n * bs, this.source.size));
      const head = Buffer.allocUnsafe(4);
      head.writeUInt16BE(OPCODE.data, 0);
      head.writeUInt16BE(n & 0xffff, 2);
      // Header and payload as two buffers (one sendmsg with two iovecs): no copy of the payload.
      this.sock.send([head, data]);
      bytes += data.length;
    }
    this.sentBlocks(from, to, bytes);
  }

  /** Counts blocks from..to (`bytes` of payload) as sent now. */
  private sentBlocks(from: number, to: number, bytes: number): void {
    this.bytesSent += bytes;
    this.onSent(bytes);
    if (from <= this.sent) this.retransmits += Math.min(to, this.sent) - from + 1;
    if (to > this.sent) this.sent = to;
    this.lastSent = performance.now();
  }

  private outcome(ok: boolean, reason?: string, probe?: boolean): TransferOutcome {
    const bytesAcked = Math.min(Math.max(this.acked, 0) * this.s.blksize, this.source.size);
    return {
      ok,
      probe,
      reason,
      bytesSent: this.bytesSent,
      bytesAcked,
      retransmits: this.retransmits,
      seconds: (performance.now() - this.started) / 1000,
    };
  }

  private stop(): void {
    this.finished = true;
    this.pending = undefined;
    clearTimeout(this.timer);
    this.sock.removeAllListeners('message');
  }

  private succeed(): void {
    this.stop();
    this.close(() => this.settle(this.outcome(true)));
  }

  /** Fails; with `tell`, the client gets an ERROR first (closing the socket drops a queued send). */
  private fail(reason: string, tell?: string, probe?: boolean): void {
    if (this.finished) return;
    this.stop();
    const end = () => this.close(() => this.settle(this.outcome(false, reason, probe)));
    if (tell === undefined) return end();
    try {
      this.sock.send(encodeError(ERROR_CODE.notDefined, tell), () => end());
    } catch {
      end();
    }
  }

  private close(then: () => void): void {
    // Further ICMP errors may still arrive for packets in flight; they mean nothing now.
    this.sock.removeAllListeners('error');
    this.sock.on('error', () => {});
    try {
      this.sock.close();
    } catch {
      // already closed
    }
    void this.source
      .close()
      .catch(() => {})
      .finally(then);
  }
}
