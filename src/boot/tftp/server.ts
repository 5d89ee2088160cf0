// Cradle's TFTP server (RFC 1350, with the options of RFC 2347 blksize 2348, timeout and tsize
// 2349, windowsize 7440): what PXE ROMs, iPXE and the installer fetch boot files and per-machine
// configuration from. Read requests only; each transfer runs on a socket of its own (transfer.ts),
// on the transfer thread (transfer-thread.ts). This file owns the listening port: it checks each
// request, opens and checks the file, and decides which requests are served.
//
// The listening port answers nothing but requests: a DATA, ACK, ERROR or unknown datagram there is
// dropped without a word, so the server cannot be made to reflect traffic at a forged source by
// anything but a request. A malformed request gets ERROR 4. Every answer to a request, refusals
// included, comes from a fresh port (the transfer ID), as RFC 1350 and tftp-hpa do.
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import {
  decodePacket,
  encodeError,
  ERROR_CODE,
  errorCodeText,
  MAX_BLKSIZE,
  type TftpOptions,
} from '../../protocols/tftp/packets.ts';
import { LimitedLog } from '../../util/limited-log.ts';
import { MAX_WINDOWSIZE, negotiate } from './negotiate.ts';
import { normaliseName, TftpRefusal } from './paths.ts';
import { openRequestSource, type RequestSource, type TftpClient, type TftpResolve } from './request-source.ts';
import { type EngineTransfer, TransferEngine } from './transfer-engine.ts';

export type { TftpClient, TftpResolve } from './request-source.ts';

export interface TftpServerOptions {
  /** Directory files are served from; without one, only the resolve hook's files exist. */
  root?: string;
  resolve?: TftpResolve;
  /** Default 0.0.0.0. Transfer sockets bind to the same address (see docs/tftp-server.md). */
  address?: string;
  /** Default 69; 0 picks a free port. */
  port?: number;
  /** Largest block size agreed to (default 1468: one 1500-byte Ethernet frame; at most 65464). */
  maxBlksize?: number;
  /** Largest window agreed to (default 16). */
  maxWindowsize?: number;
  /** Wait for an ACK before resending, unless the client negotiates `timeout` (default 1000). */
  timeoutMs?: number;
  /** Resends in a row without progress before a transfer is abandoned (default 5). */
  retries?: number;
  /** Transfers at once; a request beyond it gets ERROR 0 "server busy" (default 256). */
  maxTransfers?: number;
  /**
   * Transfers at once from one client address (default 16): a machine fetches one file at a time,
   * so more is someone holding the others' slots.
   */
  maxTransfersPerClient?: number;
  /** Largest file served in netascii mode, which is converted in memory (default 16 MiB). */
  maxNetasciiBytes?: number;
  /** netascii transfers at once, each holding its converted file in memory (default 4). */
  maxNetasciiTransfers?: number;
  /**
   * Memory for files shared by the transfers sending them (file-cache.ts; default 64 MiB, 0: none).
   * A file that does not fit beside the cached files in use is read per transfer.
   */
  cacheBytes?: number;
  log?: (line: string) => void;
}

export interface TftpStats {
  /** Read requests taken on (well-formed RRQs), whatever their outcome. */
  transfers: number;
  active: number;
  /** DATA payload bytes sent, retransmissions included, counted as each transfer ends. */
  bytesSent: number;
  /** Requests refused (malformed, WRQ, not found, ...) and transfers that failed. */
  errors: number;
}

export interface TftpServer {
  listen(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  readonly stats: TftpStats;
}

/** "ERROR 1 file not found", or "ERROR 2 access violation: file is not world-readable". */
function errorLine(code: number, message: string): string {
  const text = errorCodeText(code);
  return `ERROR ${code} ${text}${message && message !== text ? `: ${message}` : ''}`;
}

function checkInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new RangeError(`TFTP server: ${name} ${value} is outside ${min}..${max}`);
  return value;
}

/** A request being served: what it holds of the server's limits, and its transfer once made. */
interface Slot {
  /** The request's bytes, to tell a client's repeat of it from a new request. */
  request: Buffer;
  address: string;
  netascii: boolean;
  transfer?: EngineTransfer;
  /** Its place given back (release): the transfer ended, or gave way to a newcomer. */
  released: boolean;
}

/** Whether `address` (IPv4) could be a client's: not in 0.0.0.0/8, nor 224.0.0.0 and above. */
export function unicastSource(address: string): boolean {
  const first = Number(address.slice(0, address.indexOf('.')));
  return first > 0 && first < 224;
}

function checkIpv4(name: string, value: string): string {
  if (!net.isIPv4(value)) throw new RangeError(`TFTP server: ${name} '${value}' is not an IPv4 address`);
  return value;
}

/** Refusals logged a second, at most: anyone can send requests to be refused. */
const REFUSALS_LOGGED_PER_SECOND = 10;

/** A request's name, shown in logs: quoted and escaped, since a client chose it. */
const shown = (s: string) => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}...` : s);

/**
 * Trailing NULs beyond the one ending the last string: some PXE ROMs pad their requests, and
 * padding is not an option without a value.
 */
export function trimPadding(msg: Buffer): Buffer {
  let end = msg.length;
  while (end > 3 && msg[end - 1] === 0 && msg[end - 2] === 0) end--;
  return end === msg.length ? msg : msg.subarray(0, end);
}

export function createTftpServer(opts: TftpServerOptions): TftpServer {
  const settings = {
    address: checkIpv4('address', opts.address ?? '0.0.0.0'),
    port: checkInt('port', opts.port ?? 69, 0, 65535),
    maxBlksize: checkInt('maxBlksize', opts.maxBlksize ?? 1468, 512, MAX_BLKSIZE),
    maxWindowsize: checkInt('maxWindowsize', opts.maxWindowsize ?? 16, 1, MAX_WINDOWSIZE),
    timeoutMs: checkInt('timeoutMs', opts.timeoutMs ?? 1000, 1, 255_000),
    retries: checkInt('retries', opts.retries ?? 5, 0, 1000),
    maxTransfers: checkInt('maxTransfers', opts.maxTransfers ?? 256, 1, 100_000),
    maxTransfersPerClient: checkInt('maxTransfersPerClient', opts.maxTransfersPerClient ?? 16, 1, 100_000),
    maxNetasciiTransfers: checkInt('maxNetasciiTransfers', opts.maxNetasciiTransfers ?? 4, 0, 1_000),
    maxNetasciiBytes: checkInt('maxNetasciiBytes', opts.maxNetasciiBytes ?? 16 * 1024 * 1024, 0, 2 ** 31),
    cacheBytes: checkInt('cacheBytes', opts.cacheBytes ?? 64 * 1024 * 1024, 0, 2 ** 32),
  };
  // The root's own symlinks are resolved once: containment is checked against the real path.
  const root = opts.root === undefined ? undefined : fs.realpathSync(opts.root);
  const log = opts.log ?? (() => {});
  // Refusals cost a client one datagram each (a forged source will do): their lines are limited,
  // so a flood cannot fill the disk or drown the transfers' lines.
  const refusals = new LimitedLog(
    log,
    REFUSALS_LOGGED_PER_SECOND,
    1000,
    (n) => `tftp: ${n} more refused request(s) not logged`,
  );
  const logRefusal = (line: string) => refusals.line(line);
  const stats: TftpStats = { transfers: 0, active: 0, bytesSent: 0, errors: 0 };
  let engine: TransferEngine | undefined;
  const listener = dgram.createSocket('udp4');
  /** Requests being served, by client address:port. */
  const active = new Map<string, Slot>();
  /** Transfers being served, by client address. */
  const perClient = new Map<string, number>();
  let netasciiActive = 0;
  /** Every request being handled (transfers and refusals), for close() to wait on. */
  const running = new Set<Promise<void>>();
  let closed = false;

  /** Keeps `p` for close(); a bug that makes it reject is logged, never an unhandled rejection. */
  const track = (p: Promise<void>) => {
    const q = p.catch((err: Error) => log(`tftp: internal error: ${err.stack ?? err}`));
    running.add(q);
    void q.finally(() => running.delete(q));
  };

  /** A socket of its own for the answer, connected to the client. */
  async function tidSocket(client: TftpClient): Promise<dgram.Socket> {
    const sock = dgram.createSocket('udp4');
    sock.on('error', () => {}); // until the transfer takes over: a bind or ICMP error is handled by the caller
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind({ port: 0, address: settings.address }, () =>
          sock.connect(client.port, client.address, () => {
            sock.off('error', reject);
            resolve();
          }),
        );
      });
    } catch (err) {
      sock.close();
      throw err;
    }
    return sock;
  }

  /** Sends one ERROR from a fresh port and closes it. */
  async function sendError(client: TftpClient, code: number, message: string): Promise<void> {
    const sock = await tidSocket(client);
    await new Promise<void>((resolve) => sock.send(encodeError(code, message), () => resolve()));
    sock.close();
  }

  function refuse(client: TftpClient, code: number, message: string, line: string): void {
    stats.errors++;
    logRefusal(`${line}: refused: ${errorLine(code, message)}`);
    track(
      sendError(client, code, message).catch((err: Error) =>
        log(`tftp ${client.address}:${client.port}: cannot send ERROR ${code}: ${err.message}`),
      ),
    );
  }

  async function serve(
    client: TftpClient,
    key: string,
    raw: string,
    mode: string,
    options: TftpOptions,
    entry: Slot,
  ): Promise<void> {
    const line = `tftp ${client.address}:${client.port} RRQ ${shown(raw)} ${mode}`;
    let source: RequestSource | undefined;
    try {
      source = await openRequestSource(normaliseName(raw), mode, client, {
        resolve: opts.resolve,
        root,
        maxNetasciiBytes: settings.maxNetasciiBytes,
      });
      if (closed || !engine) throw new TftpRefusal(ERROR_CODE.notDefined, 'server shutting down');
      const size = source.size;
      const n = negotiate(options, size, settings);
      const transfer = engine.transfer({
        local: settings.address,
        client,
        source: source.spec,
        blksize: n.blksize,
        windowsize: n.windowsize,
        timeoutMs: n.timeoutMs,
        retries: settings.retries,
        oack: n.oack,
      });
      entry.transfer = transfer;
      const end = await transfer.done;
      if ('bytesSent' in end) stats.bytesSent += end.bytesSent;
      if (entry.released) return; // gave way to a newcomer: counted and logged then
      if ('failed' in end) {
        stats.errors++;
        log(`${line}: failed: ${end.failed}`);
        await sendError(client, ERROR_CODE.notDefined, 'server error, try again').catch(() => {});
        return;
      }
      const o = end.outcome;
      const rate = o.seconds > 0 ? ` (${(o.bytesAcked / 1e6 / o.seconds).toFixed(1)} MB/s)` : '';
      const how = `blksize ${n.blksize}, windowsize ${n.windowsize}, ${o.retransmits} retransmits`;
      if (o.ok) log(`${line}: sent ${o.bytesAcked} bytes in ${o.seconds.toFixed(2)} s${rate}, ${how}`);
      else if (o.probe) log(`${line}: size probe: ${o.reason} after the option acknowledgement`);
      else {
        stats.errors++;
        log(`${line}: failed after ${o.bytesAcked} of ${size} bytes in ${o.seconds.toFixed(2)} s, ${how}: ${o.reason}`);
      }
    } catch (err) {
      stats.errors++;
      const r =
        err instanceof TftpRefusal
          ? err
          : new TftpRefusal(ERROR_CODE.notDefined, `internal error: ${(err as Error).message}`);
      (err instanceof TftpRefusal ? logRefusal : log)(`${line}: refused: ${errorLine(r.code, r.message)}`);
      await sendError(client, r.code, r.message).catch((e: Error) =>
        log(`tftp ${client.address}:${client.port}: cannot send ERROR ${r.code}: ${e.message}`),
      );
    } finally {
      await source?.close().catch(() => {});
      release(key, entry);
    }
  }

  /** Gives a request's place back: once, whether its transfer ended or gave way. */
  function release(key: string, slot: Slot): void {
    if (slot.released) return;
    slot.released = true;
    if (active.get(key) === slot) active.delete(key);
    stats.active--;
    const n = (perClient.get(slot.address) ?? 1) - 1;
    if (n > 0) perClient.set(slot.address, n);
    else perClient.delete(slot.address);
    if (slot.netascii) netasciiActive--;
  }

  /**
   * Ends the oldest transfer `among` those of a full cap (one address's, netascii's, or any)
   * whose client has not answered within its timeout, to make room for `newcomer`: false when
   * there is none. A request's source can be forged, and its transfer then waits on a client
   * that never asked; without this, sixteen forged requests would keep a machine's own requests
   * out for as long as its transfers retry. A real client answers its first block within a round
   * trip, and is never ended for one.
   */
  function giveWayToNewcomer(newcomer: string, among: (slot: Slot) => boolean = () => true): boolean {
    const now = performance.now();
    let victim: [string, Slot] | undefined;
    for (const [key, slot] of active) {
      const t = slot.transfer;
      if (!t || t.heard || now - t.started < Math.max(settings.timeoutMs, t.timeoutMs)) continue;
      if (!among(slot)) continue;
      if (!victim || t.started < victim[1].transfer!.started) victim = [key, slot];
    }
    if (!victim) return false;
    const [key, slot] = victim;
    release(key, slot);
    stats.errors++;
    slot.transfer!.abort('server busy: a newer request took the place of this unanswered transfer');
    logRefusal(`tftp ${key}: given up, its client never answered: ${newcomer} takes its place`);
    return true;
  }

  function onRequest(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (closed || msg.length < 2) return;
    const op = msg.readUInt16BE(0);
    if (op !== 1 && op !== 2) return; // not a request: never answered on this port
    // No answer to a source no client can have (0.0.0.0/8: a reply would go to this host itself;
    // multicast, reserved, broadcast): only a forged request comes from one.
    if (!unicastSource(rinfo.address)) return;
    const client = { address: rinfo.address, port: rinfo.port };
    const key = `${client.address}:${client.port}`;
    // A client repeats its request until it hears from the transfer: that is not a second transfer.
    if (active.get(key)?.request.equals(msg)) return;
    const packet = decodePacket(trimPadding(msg));
    const line = `tftp ${key}`;
    if (packet.op === 'malformed')
      return refuse(client, ERROR_CODE.illegalOperation, `malformed request: ${packet.reason}`, line);
    if (packet.op === 'wrq')
      return refuse(
        client,
        ERROR_CODE.accessViolation,
        'this server does not accept writes',
        `${line} WRQ ${shown(packet.file)}`,
      );
    if (packet.op !== 'rrq') return;
    if (packet.mode !== 'octet' && packet.mode !== 'netascii')
      return refuse(
        client,
        ERROR_CODE.illegalOperation,
        `unsupported transfer mode ${shown(packet.mode)}`,
        `${line} RRQ ${shown(packet.file)}`,
      );
    const rrq = `${line} RRQ ${shown(packet.file)}`;
    if (
      packet.mode === 'netascii' &&
      netasciiActive >= settings.maxNetasciiTransfers &&
      !giveWayToNewcomer(key, (s) => s.netascii)
    )
      return refuse(client, ERROR_CODE.notDefined, 'server busy with netascii transfers: ask in octet mode', rrq);
    if (
      (perClient.get(client.address) ?? 0) >= settings.maxTransfersPerClient &&
      !giveWayToNewcomer(key, (s) => s.address === client.address)
    )
      return refuse(
        client,
        ERROR_CODE.notDefined,
        `server busy: ${settings.maxTransfersPerClient} transfers to this address already`,
        rrq,
      );
    if (stats.active >= settings.maxTransfers && !giveWayToNewcomer(key))
      return refuse(client, ERROR_CODE.notDefined, 'server busy, try again later', rrq);
    const entry: Slot = {
      request: Buffer.from(msg),
      address: client.address,
      netascii: packet.mode === 'netascii',
      released: false,
    };
    active.set(key, entry);
    perClient.set(client.address, (perClient.get(client.address) ?? 0) + 1);
    if (entry.netascii) netasciiActive++;
    stats.transfers++;
    stats.active++;
    track(serve(client, key, packet.file, packet.mode, packet.options, entry));
  }

  listener.on('message', (msg, rinfo) => {
    try {
      onRequest(msg, rinfo);
    } catch (err) {
      log(`tftp: internal error on a request from ${rinfo.address}:${rinfo.port}: ${(err as Error).stack}`);
    }
  });
  listener.on('error', (err) => log(`tftp: listening socket error: ${err.message}`));

  return {
    stats,
    async listen() {
      const a = await new Promise<{ address: string; port: number }>((resolve, reject) => {
        listener.once('error', reject);
        listener.bind({ port: settings.port, address: settings.address }, () => {
          listener.off('error', reject);
          resolve(listener.address());
        });
      });
      // The thread once the port is ours: a port in use leaves nothing running.
      try {
        engine ??= await TransferEngine.start(
          { cacheBytes: settings.cacheBytes, maxTransfers: settings.maxTransfers },
          log,
        );
      } catch (err) {
        listener.close();
        throw new Error(`the TFTP transfer thread did not start: ${(err as Error).message}`);
      }
      log(`tftp: listening on ${a.address}:${a.port}${root ? `, root ${root}` : ''}`);
      return { address: a.address, port: a.port };
    },
    async close() {
      if (!closed) {
        closed = true;
        try {
          listener.close();
        } catch {
          // never bound
        }
      }
      // A transfer that gave way left `active` already aborted.
      for (const slot of active.values()) slot.transfer?.abort('server shutting down');
      await Promise.allSettled([...running]);
      await engine?.close();
    },
  };
}
