// TFTP client (RFC 1350 with the options of RFC 2347/2348/2349/7440): how the netbooted installer
// fetches its configuration files from the boot server. Downloads only, octet mode, into memory.
//
// The network is not trusted to be tidy: every datagram is decoded defensively and a malformed one
// is dropped and counted; packets from anyone but the server's transfer ID get ERROR 5 and are
// otherwise ignored, so a stray or second transfer can neither inject data nor end this one; and
// a size limit holds whatever the server announces or sends, so a wrong file cannot exhaust the
// installer's memory.
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import net from 'node:net';
import {
  DEFAULT_BLKSIZE,
  decodePacket,
  encodeAck,
  encodeError,
  encodeRequest,
  ERROR_CODE,
  errorCodeText,
  MAX_BLKSIZE,
  MIN_BLKSIZE,
  type TftpOptions,
} from './packets.ts';

export class TftpError extends Error {
  override name = 'TftpError';
  /** The TFTP error code the server sent; undefined for local failures and timeouts. */
  readonly code: number | undefined;
  readonly notFound: boolean;
  constructor(message: string, code?: number, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.notFound = code === ERROR_CODE.fileNotFound;
  }
}

export interface TftpGetOptions {
  /** Used when `server` names no port (default 69); a port in `server` wins. */
  port?: number;
  /** Block size to ask for (default 1468: a 1500-byte Ethernet frame, with IP, UDP and TFTP headers). */
  blksize?: number;
  /** Blocks per ACK to ask for (RFC 7440; default 8). */
  windowsize?: number;
  /** Wait for the server before each retransmission (default 1000). */
  timeoutMs?: number;
  /** Retransmissions in a row without progress before giving up (default 5). */
  retries?: number;
  /** Largest file accepted (default 64 MiB); a larger one is refused and the transfer aborted. */
  maxBytes?: number;
  signal?: AbortSignal;
  localAddress?: string;
}

export interface TftpResult {
  data: Buffer;
  /** The block size and window size in effect: what the server agreed to, or RFC 1350's 512 and 1. */
  blksize: number;
  windowsize: number;
  /** Packets sent again: on timeouts, and ACKs repeated for lost, late or duplicate blocks. */
  retransmits: number;
  /** Datagrams from the server's transfer ID that did not decode or had no place in a download. */
  malformed: number;
  seconds: number;
}

export const TFTP_PORT = 69;
const DEFAULTS = { blksize: 1468, windowsize: 8, timeoutMs: 1000, retries: 5, maxBytes: 64 * 1024 * 1024 };

/** `host`, `host:port`, `1.2.3.4` or `1.2.3.4:port`. */
function parseServer(server: string, defaultPort: number): { host: string; port: number } {
  const m = /^([^:\s]+)(?::([0-9]{1,5}))?$/.exec(server.trim());
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new TftpError(
      `tftp: ${JSON.stringify(server)} is not a server (host name or IPv4 address, optionally :port)`,
    );
  return { host: m[1], port };
}

/**
 * Refused before anything is sent: a NUL would end the name early on the server, and a `..`
 * component climbs out of the TFTP root on servers that do not check (dnsmasq also takes `\` as a
 * separator, so that counts as one here too).
 */
function checkFileName(file: string, url: string): void {
  if (file === '') throw new TftpError(`${url}: empty file name`);
  if (file.includes('\0')) throw new TftpError(`${url}: file name contains a NUL byte`);
  if (file.split(/[/\\]/).includes('..')) throw new TftpError(`${url}: file name has a '..' component`);
}

function checkInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new TftpError(`tftp: ${name} ${value} is outside ${min}..${max}`);
  return value;
}

export async function tftpGet(server: string, file: string, opts: TftpGetOptions = {}): Promise<TftpResult> {
  const { host, port } = parseServer(server, opts.port ?? TFTP_PORT);
  const url = `tftp://${host}${port === TFTP_PORT ? '' : `:${port}`}/${file}`;
  checkFileName(file, url);
  const settings = {
    blksize: checkInt('blksize', opts.blksize ?? DEFAULTS.blksize, MIN_BLKSIZE, MAX_BLKSIZE),
    windowsize: checkInt('windowsize', opts.windowsize ?? DEFAULTS.windowsize, 1, 65535),
    timeoutMs: checkInt('timeoutMs', opts.timeoutMs ?? DEFAULTS.timeoutMs, 1, 3_600_000),
    retries: checkInt('retries', opts.retries ?? DEFAULTS.retries, 0, 1000),
    maxBytes: checkInt('maxBytes', opts.maxBytes ?? DEFAULTS.maxBytes, 0, Number.MAX_SAFE_INTEGER),
  };
  // Built now so a name too long for a request fails here, before any socket exists.
  const request = (withOptions: boolean) => {
    const options: [string, string][] = withOptions
      ? [
          ['blksize', String(settings.blksize)],
          ['windowsize', String(settings.windowsize)],
          ['tsize', '0'],
        ]
      : [];
    try {
      return encodeRequest('rrq', file, 'octet', options);
    } catch (err) {
      throw new TftpError(`${url}: ${(err as Error).message}`);
    }
  };
  request(true);
  if (opts.signal?.aborted) throw new TftpError(`${url}: aborted`, undefined, { cause: opts.signal.reason });
  let address = host;
  if (!net.isIPv4(host)) {
    try {
      address = (await dns.lookup(host, { family: 4 })).address;
    } catch (err) {
      throw new TftpError(`${url}: cannot resolve ${host}: ${(err as Error).message}`, undefined, { cause: err });
    }
  }
  return new Download({
    url,
    address,
    port,
    request,
    ...settings,
    signal: opts.signal,
    localAddress: opts.localAddress,
  }).run();
}

interface DownloadParams {
  url: string;
  address: string;
  port: number;
  request: (withOptions: boolean) => Buffer;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  maxBytes: number;
  signal: AbortSignal | undefined;
  localAddress: string | undefined;
}

/** One transfer's state; `run()` settles once. */
class Download {
  private readonly p: DownloadParams;
  private readonly sock = dgram.createSocket('udp4');
  private readonly started = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private settle: { resolve: (r: TftpResult) => void; reject: (e: Error) => void } | undefined;
  private done = false;
  /** The server's port for this transfer, fixed by its first valid answer (RFC 1350 §4). */
  private tid: number | undefined;
  private withOptions = true;
  private optionsAcked = false;
  private blksize = DEFAULT_BLKSIZE;
  private windowsize = 1;
  private tsize: number | undefined;
  /** Block counts run past 65535; the 16-bit wire number is this modulo 65536. */
  private next = 1;
  private acked = 0;
  /** The read request, repeated until the server answers. */
  private request: Buffer;
  private tries = 0;
  /** One repeated ACK per stall: answering every stray block of a window would multiply the server's resends. */
  private reackArmed = true;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private retransmits = 0;
  private malformed = 0;
  private lastMalformed = '';

  constructor(p: DownloadParams) {
    this.p = p;
    this.request = p.request(true);
  }

  run(): Promise<TftpResult> {
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      if (this.p.signal?.aborted) return this.onAbort();
      this.p.signal?.addEventListener('abort', this.onAbort, { once: true });
      this.sock.on('error', (err) =>
        this.fail(new TftpError(`${this.p.url}: ${err.message}`, undefined, { cause: err })),
      );
      this.sock.on('message', (msg, rinfo) => this.guard(() => this.onMessage(msg, rinfo)));
      this.sock.bind({ port: 0, address: this.p.localAddress }, () => {
        if (this.done) return;
        this.sock.send(this.request, this.p.port, this.p.address);
        this.timer = setTimeout(() => this.guard(() => this.onTimeout()), this.p.timeoutMs);
      });
    });
  }

  /** A bug in a handler must fail this download, not hang it or take the process down. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(new TftpError(`${this.p.url}: ${(err as Error).message}`, undefined, { cause: err }));
    }
  }

  private ack(block: number): void {
    this.acked = block;
    this.sock.send(encodeAck(block & 0xffff), this.tid!, this.p.address);
  }

  private onAbort = () => {
    this.abortTransfer(
      new TftpError(`${this.p.url}: aborted`, undefined, { cause: this.p.signal?.reason }),
      ERROR_CODE.notDefined,
      'transfer cancelled by the client',
    );
  };

  private onTimeout(): void {
    if (this.tries >= this.p.retries) {
      const waited = ((this.tries + 1) * this.p.timeoutMs) / 1000;
      const what =
        this.tid === undefined
          ? 'no answer to the read request'
          : `transfer stalled after ${this.bytes} bytes (block ${this.next - 1})`;
      const junk = this.malformed
        ? `; ${this.malformed} malformed packet(s) ignored, the last: ${this.lastMalformed}`
        : '';
      this.abortTransfer(
        new TftpError(
          `${this.p.url}: ${what}: server ${this.p.address}:${this.tid ?? this.p.port} silent for ${waited} s (${this.tries} retransmissions)${junk}`,
        ),
      );
      return;
    }
    this.tries++;
    this.retransmits++;
    this.reackArmed = true;
    // The ACK repeated is for the last block in order, not the last one sent: with a window, it
    // spares the server resending the blocks that did arrive.
    if (this.tid === undefined) this.sock.send(this.request, this.p.port, this.p.address);
    else this.ack(this.next - 1);
    this.timer?.refresh();
  }

  private progress(): void {
    this.tries = 0;
    this.reackArmed = true;
    this.timer?.refresh();
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.done) return;
    if (rinfo.address !== this.p.address || (this.tid !== undefined && rinfo.port !== this.tid)) {
      this.sock.send(encodeError(ERROR_CODE.unknownTransferId, 'Unknown transfer ID'), rinfo.port, rinfo.address);
      return;
    }
    const packet = decodePacket(msg);
    switch (packet.op) {
      case 'error':
        return this.onError(packet.code, packet.message);
      case 'oack':
        return this.onOack(packet.options, rinfo.port);
      case 'data':
        if (this.tid === undefined) {
          if (packet.block !== 1) return this.ignore(`DATA block ${packet.block} as the first answer`);
          // The server ignored the options (or this was the plain request): RFC 1350 it is.
          this.tid = rinfo.port;
        }
        return this.onData(packet.block, packet.data);
      case 'malformed':
        return this.ignore(packet.reason);
      default:
        return this.ignore(`${packet.op.toUpperCase()} from the server`);
    }
  }

  private ignore(reason: string): void {
    this.malformed++;
    this.lastMalformed = reason;
  }

  private onError(code: number, message: string): void {
    // Some servers refuse options outright instead of ignoring them: ask again without any.
    if (code === ERROR_CODE.optionRejected && this.tid === undefined && this.withOptions) {
      this.withOptions = false;
      this.request = this.p.request(false);
      this.sock.send(this.request, this.p.port, this.p.address);
      this.progress();
      return;
    }
    const said = message ? ` (server: ${message})` : '';
    const text =
      code === ERROR_CODE.fileNotFound
        ? 'file not found'
        : `server refused: ${errorCodeText(code)} [TFTP error ${code}]`;
    this.fail(new TftpError(`${this.p.url}: ${text}${said}`, code));
  }

  private onOack(options: TftpOptions, port: number): void {
    if (!this.withOptions) return this.ignore('OACK to a request without options');
    if (this.tid !== undefined) {
      // Our ACK of it was lost and the server repeats it; anything later is a stale copy.
      if (this.next === 1 && this.optionsAcked) {
        this.retransmits++;
        this.ack(0);
      } else this.ignore('OACK in mid-transfer');
      return;
    }
    this.tid = port;
    const asked: Record<string, number> = { blksize: this.p.blksize, windowsize: this.p.windowsize, tsize: 0 };
    let blksize = DEFAULT_BLKSIZE;
    let windowsize = 1;
    for (const [name, value] of options) {
      const n = Number(value); // the decoder has checked it is a number in the option's range
      // RFC 2347/2348/7440: a server may lower a value or leave an option out, never raise or add one.
      let refusal: string | undefined;
      if (!(name in asked)) refusal = `option ${name}, which was not requested`;
      else if (name !== 'tsize' && n > asked[name]) refusal = `${name} ${n}, larger than the ${asked[name]} requested`;
      else if (name === 'tsize' && n > this.p.maxBytes) {
        this.abortTransfer(
          new TftpError(
            `${this.p.url}: file is ${n} bytes (tsize), over the limit of ${this.p.maxBytes} bytes: refused`,
          ),
          ERROR_CODE.optionRejected,
          `file of ${n} bytes exceeds the client's limit of ${this.p.maxBytes}`,
        );
        return;
      }
      if (refusal) {
        this.abortTransfer(
          new TftpError(`${this.p.url}: server's option acknowledgement has ${refusal}: refused`),
          ERROR_CODE.optionRejected,
          `unacceptable ${refusal}`,
        );
        return;
      }
      if (name === 'blksize') blksize = n;
      else if (name === 'windowsize') windowsize = n;
      else this.tsize = n;
    }
    this.blksize = blksize;
    this.windowsize = windowsize;
    this.optionsAcked = true;
    this.progress();
    this.ack(0);
  }

  private onData(block: number, data: Buffer): void {
    if (data.length > this.blksize)
      return this.ignore(`DATA block ${block} of ${data.length} bytes with block size ${this.blksize}`);
    if (block !== (this.next & 0xffff)) {
      // A duplicate (our ACK was lost) or a block past a lost one: RFC 7440 has the receiver ACK
      // the last block it got in order, from where the server resends.
      if (this.reackArmed) {
        this.reackArmed = false;
        this.retransmits++;
        this.ack(this.next - 1);
      }
      return;
    }
    this.bytes += data.length;
    if (this.bytes > this.p.maxBytes) {
      this.abortTransfer(
        new TftpError(`${this.p.url}: file exceeds the limit of ${this.p.maxBytes} bytes: transfer aborted`),
        ERROR_CODE.diskFull,
        `file exceeds the client's limit of ${this.p.maxBytes} bytes`,
      );
      return;
    }
    if (data.length) this.chunks.push(data);
    this.next++;
    this.progress();
    if (data.length < this.blksize) return this.finish(block);
    if (this.next - 1 - this.acked >= this.windowsize) this.ack(this.next - 1);
  }

  private finish(lastBlock: number): void {
    this.ack(this.next - 1);
    this.dally(lastBlock);
    if (this.tsize !== undefined && this.tsize !== this.bytes) {
      this.settle!.reject(
        new TftpError(`${this.p.url}: server announced ${this.tsize} bytes (tsize) but sent ${this.bytes}`),
      );
      return;
    }
    const result: TftpResult = {
      data: Buffer.concat(this.chunks, this.bytes),
      blksize: this.blksize,
      windowsize: this.windowsize,
      retransmits: this.retransmits,
      malformed: this.malformed,
      seconds: (performance.now() - this.started) / 1000,
    };
    this.settle!.resolve(result);
  }

  /**
   * RFC 1350 §6: if the final ACK is lost the server resends the last block, so the socket stays
   * a little longer to answer it (without holding the process open) rather than leave the server
   * to time out and log a failed transfer.
   */
  private dally(lastBlock: number): void {
    this.stop();
    const finalAck = encodeAck(lastBlock);
    this.sock.removeAllListeners('message');
    this.sock.on('message', (msg, rinfo) => {
      const packet = decodePacket(msg);
      if (
        rinfo.address === this.p.address &&
        rinfo.port === this.tid &&
        packet.op === 'data' &&
        packet.block === lastBlock
      )
        this.sock.send(finalAck, rinfo.port, rinfo.address);
    });
    this.sock.unref();
    setTimeout(() => this.sock.close(), 2 * this.p.timeoutMs).unref();
  }

  /**
   * Fails, telling the server first (when it has a transfer going) so it stops sending; the socket
   * is closed only once that ERROR is out, as closing drops a send still queued.
   */
  private abortTransfer(err: TftpError, code: number = ERROR_CODE.notDefined, message = err.message): void {
    if (this.tid === undefined || this.done) return this.fail(err);
    this.stop();
    this.sock.send(encodeError(code, message), this.tid, this.p.address, () => this.fail(err, true));
  }

  private stop(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.p.signal?.removeEventListener('abort', this.onAbort);
  }

  private fail(err: Error, stopped = false): void {
    if (this.done && !stopped) return;
    this.stop();
    try {
      this.sock.close();
    } catch {
      // already closed
    }
    this.settle?.reject(err);
  }
}
