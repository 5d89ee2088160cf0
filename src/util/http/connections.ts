// How many connections an HTTP server holds, from whom, and for how long, so that no client can
// lock the others out. Four rules, applied to every Cradle web port:
// - a connection must send a complete request head soon after it opens (and after each response):
//   idle or trickling connections (slowloris) are closed instead of holding a slot;
// - a client must keep taking the answer it asked for (nginx's send_timeout): one that stops
//   reading is reset instead of holding a busy slot for ever;
// - one client address holds a bounded number of connections;
// - when the server is full, the connection idle longest gives way to the new one (as nginx reuses
//   idle keep-alive connections), so a machine's boot request still gets through while an attacker
//   holds every slot; with none idle, the one taking its answer slowest gives way, if it is the
//   client's own reading that holds its answer back and it takes less than `minRateWhenFull` (a
//   client reading a trickle holds a slot for hours for almost no bandwidth, and nginx has no
//   answer to that). Only a server busy with real requests turns new ones away.
import type http from 'node:http';
import type net from 'node:net';
import { receiveWindowLimitedUs, unacknowledgedBytes } from '../../system/tcp.ts';

export interface ConnectionLimits {
  /** Connections at once. */
  maxConnections: number;
  /** Connections at once from one client address. */
  maxPerAddress: number;
  /** From accept, or from the end of the last response, to a complete request head. */
  requestHeadMs: number;
  /** From a request's head to the end of its body (Node's requestTimeout). */
  requestBodyMs: number;
  /**
   * Longest an answer may wait on a client that takes none of its bytes (nginx's send_timeout),
   * looked at every `requestHeadMs`. Measured by the bytes the client acknowledged
   * (answerProgress), not by whole writes: a client reading a large answer slowly keeps it moving.
   */
  sendTimeoutMs: number;
  /**
   * Bytes a second a client must take of the answers it is owed to keep its connection when the
   * server (or its address's share) is full and nothing is idle, if the client's receive window
   * held the answer back for at least half the time. Measured over each `requestHeadMs` while
   * bytes are owed: a download slowed by a congested link (the sender's window, not the client's,
   * is what limits it) is never judged slow.
   */
  minRateWhenFull: number;
}

/** Options for every Cradle HTTP server: kept-alive connections, timeouts checked every second. */
export const HTTP_SERVER_OPTIONS = {
  keepAlive: true,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000,
} as const;

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxConnections: 1024,
  maxPerAddress: 64,
  requestHeadMs: 5_000,
  requestBodyMs: 30_000,
  sendTimeoutMs: 30_000,
  // Holding the default 1,024 connections then costs a client 128 Mbit/s of reading.
  minRateWhenFull: 16 * 1024,
};

interface Tracked {
  socket: net.Socket;
  /** Its key in the table, taken at accept: a closed socket may no longer know its peer. */
  key: string;
  address: string;
  /** Requests dispatched and not yet answered. */
  busy: number;
  /** Taken over by an accepted protocol upgrade (the shell's WebSocket): never evicted or timed out. */
  upgraded: boolean;
  /** Since when the connection has had no request in flight. */
  idleSince: number;
  /**
   * The request in flight, and when it started. Its body is still arriving while `complete` is
   * false: node:http sets it when the parser has the whole message, read by the handler or not
   * (a body-less GET's is complete at once, though its 'end' never comes unless it is read).
   */
  request?: { req: http.IncomingMessage; since: number };
  /** The socket its answers are written on: `socket` itself, or the TLS socket over it. */
  stream: net.Socket;
  /**
   * The answers' progress (answerProgress) when last looked at while the connection owed bytes
   * or was busy (undefined: nothing was waiting), and since when it has not changed. Counts only
   * grow, so an earlier answer's count never passes for this one's.
   */
  taken?: number;
  takenSince: number;
  /**
   * The last look at it while it owed bytes: its progress, when, and how long (µs, since it
   * opened) sending had waited on the client's receive window.
   */
  sample?: { taken: number; at: number; windowUs: number | undefined };
  /**
   * Bytes a second it took over the interval before the last look, when its client's reading was
   * what held it back and that was below `minRateWhenFull`; else undefined.
   */
  slowRate?: number;
  timer?: NodeJS.Timeout;
}

export interface ConnectionGuard {
  /**
   * The connection now carries another protocol (the shell's WebSocket), accepted by the server's
   * own 'upgrade' handler after it authenticated the client: its lifetime is that protocol's.
   * An upgrade nobody accepts stays under the limits.
   */
  upgraded(socket: net.Socket): void;
  /**
   * A request on the connection is being answered outside node:http (the image server's fast
   * lane, fast-lane.ts): the connection is busy, neither timed out nor evicted, until `requestDone`.
   */
  requestStarted(socket: net.Socket): void;
  /**
   * That request's answer is out (written to the kernel, or abandoned): the connection is idle
   * again, and has a head's time for its next request.
   */
  requestDone(socket: net.Socket): void;
}

const keyOf = (s: net.Socket) => `${s.remoteAddress}|${s.remotePort}`;

/** What Node keeps of a socket's writes below the stream. */
interface SocketInternals {
  _bytesDispatched?: number;
  _handle?: { writeQueueSize?: number; fd?: number } | null;
}

/**
 * How far the answers on `socket` (the TCP connection) have got: the bytes its client has
 * acknowledged, or undefined when no byte waits on the client. `stream` is the socket they are
 * written on, which for TLS holds plaintext the TLS layer has not yet encrypted.
 *
 * Not whole writes: one completes only when all of it is in the kernel. Not the kernel's take
 * either: the kernel takes more only once a third of its send buffer has drained, megabytes apart
 * on a fast link, so a client reading 30 kB/s would show no progress for a minute.
 * Acknowledgements move as the client reads.
 */
export function answerProgress(socket: net.Socket, stream: net.Socket = socket): number | undefined {
  const { _bytesDispatched: dispatched, _handle: handle } = socket as unknown as SocketInternals;
  const queued = handle?.writeQueueSize;
  if (typeof dispatched !== 'number' || typeof queued !== 'number') return undefined;
  // Unknown (no FFI): the kernel's take alone is counted.
  const unacked = unacknowledgedBytes(handle?.fd) ?? 0;
  if (queued === 0 && unacked === 0 && stream.writableLength === 0) return undefined;
  return dispatched - queued - unacked;
}

/**
 * Applies the limits to `listener` (the server that accepts TCP connections) and the HTTP
 * servers that parse them (the same server, or the HTTP and HTTPS servers behind a shared port).
 */
export function guardConnections(
  listener: net.Server,
  httpServers: http.Server[],
  limits: ConnectionLimits = DEFAULT_LIMITS,
): ConnectionGuard {
  const byKey = new Map<string, Tracked>();
  /**
   * The tracked connection of a socket the fast lane answers on (its TLS socket, for HTTPS), found
   * once by key: the lane asks twice a request, and the key is a string built each time.
   */
  const bySocket = new WeakMap<net.Socket, Tracked>();
  const trackedOf = (socket: net.Socket): Tracked | undefined => {
    let t = bySocket.get(socket);
    if (t === undefined) {
      t = byKey.get(keyOf(socket));
      if (t) bySocket.set(socket, t);
    }
    return t;
  };
  const perAddress = new Map<string, number>();

  /**
   * Whether the answers owed on a connection are still moving, given their progress now
   * (answerProgress): false once bytes have waited on the client for `sendTimeoutMs` with none
   * taken.
   */
  const moving = (t: Tracked, taken: number | undefined, now: number): boolean => {
    if (taken === undefined || taken !== t.taken) {
      t.taken = taken;
      t.takenSince = now;
      return true;
    }
    return now - t.takenSince < limits.sendTimeoutMs;
  };
  /**
   * Whether the connection is a slow reader (slowRate): over the interval since the last look, it
   * owed bytes throughout, sending waited on its client's receive window at least half the time
   * (TCP_INFO), and the client took less than `minRateWhenFull`.
   */
  const judge = (t: Tracked, taken: number | undefined, now: number) => {
    t.slowRate = undefined;
    if (taken === undefined) {
      t.sample = undefined;
      return;
    }
    const windowUs = receiveWindowLimitedUs((t.socket as unknown as SocketInternals)._handle?.fd);
    const last = t.sample;
    t.sample = { taken, at: now, windowUs };
    if (!last || windowUs === undefined || last.windowUs === undefined) return;
    const ms = now - last.at;
    if (ms < limits.requestHeadMs / 2) return;
    const rate = ((taken - last.taken) * 1000) / ms;
    const clientLimited = (windowUs - last.windowUs) / 1000 >= ms / 2;
    if (clientLimited && rate < limits.minRateWhenFull) t.slowRate = rate;
  };
  // One timer per connection, restarted (refresh) after each response rather than made anew. It
  // closes a connection that owes nothing and has no request in flight (the head timeout). While a
  // request is in flight, or its last answer is still on its way (written, but not yet taken by
  // the client), it looks at whether the answer moves, and comes back a head timeout later.
  const onTimer = (t: Tracked) => {
    if (t.upgraded) return;
    const taken = answerProgress(t.socket, t.stream);
    const now = performance.now();
    judge(t, taken, now);
    if (t.busy === 0 && taken === undefined) t.socket.destroy();
    else if (moving(t, taken, now)) t.timer?.refresh();
    // Reset, not closed: a close would leave the kernel holding the unsent bytes for a client that
    // takes none, for minutes (nginx's reset_timedout_connection, for the same reason).
    else t.socket.resetAndDestroy();
  };
  const arm = (t: Tracked) => {
    if (t.timer) {
      t.timer.refresh();
      return;
    }
    t.timer = setTimeout(onTimer, limits.requestHeadMs, t);
    t.timer.unref();
  };
  /** A request's answer is out (node:http's or the fast lane's): idle again once none is left. */
  const requestEnded = (t: Tracked) => {
    t.busy--;
    if (t.busy > 0 || t.upgraded) return;
    t.idleSince = performance.now();
    arm(t);
  };
  /** Since when a connection has been idle (a body trickling in counts), or undefined. */
  const idleSince = (t: Tracked, now: number): number | undefined => {
    if (t.upgraded) return undefined;
    if (t.busy === 0) return t.idleSince;
    // A body trickling in for longer than a head may take is as good as idle.
    const r = t.request;
    if (r && !r.req.complete && now - r.since > limits.requestHeadMs) return r.since;
    return undefined;
  };
  /**
   * Closes the connection (of `address`, or any) idle longest, or with none idle the slowest
   * reader (judge); false when there is neither.
   */
  const evictOne = (address?: string): boolean => {
    const now = performance.now();
    let idle: Tracked | undefined;
    let since = Infinity;
    let slow: Tracked | undefined;
    let rate = Infinity;
    for (const t of byKey.values()) {
      if (address !== undefined && t.address !== address) continue;
      const s = idleSince(t, now);
      if (s !== undefined) {
        if (s < since) {
          since = s;
          idle = t;
        }
      } else if (!t.upgraded && t.slowRate !== undefined && t.slowRate < rate) {
        rate = t.slowRate;
        slow = t;
      }
    }
    const victim = idle ?? slow;
    if (!victim) return false;
    forget(victim);
    // Reset one still owed bytes, as the send timeout does, so the kernel keeps none for it.
    if (answerProgress(victim.socket, victim.stream) === undefined) victim.socket.destroy();
    else victim.socket.resetAndDestroy();
    return true;
  };
  const forget = (t: Tracked) => {
    if (byKey.get(t.key) !== t) return;
    clearTimeout(t.timer);
    byKey.delete(t.key);
    const n = (perAddress.get(t.address) ?? 1) - 1;
    if (n > 0) perAddress.set(t.address, n);
    else perAddress.delete(t.address);
  };

  listener.on('connection', (socket: net.Socket) => {
    const address = socket.remoteAddress;
    if (!address) return void socket.destroy();
    if ((perAddress.get(address) ?? 0) >= limits.maxPerAddress && !evictOne(address)) return void socket.destroy();
    if (byKey.size >= limits.maxConnections && !evictOne()) return void socket.destroy();
    const now = performance.now();
    const t: Tracked = {
      socket,
      stream: socket,
      key: keyOf(socket),
      address,
      busy: 0,
      upgraded: false,
      idleSince: now,
      takenSince: now,
    };
    byKey.set(t.key, t);
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    arm(t);
    socket.once('close', () => forget(t));
  });

  for (const server of httpServers) {
    // Node's own timers back ours up for later requests on a kept-alive connection, and bound a
    // body; they are checked every `connectionsCheckingInterval` (HTTP_SERVER_OPTIONS).
    server.requestTimeout = limits.requestBodyMs;
    server.headersTimeout = Math.min(limits.requestHeadMs, limits.requestBodyMs);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const t = byKey.get(keyOf(req.socket));
      if (!t) return;
      t.busy++;
      t.stream = req.socket;
      t.request = { req, since: performance.now() };
      res.once('close', () => {
        t.request = undefined;
        requestEnded(t);
      });
    });
  }

  return {
    upgraded: (socket) => {
      const t = byKey.get(keyOf(socket));
      if (!t) return;
      clearTimeout(t.timer);
      t.upgraded = true;
    },
    requestStarted: (socket) => {
      const t = trackedOf(socket);
      if (!t) return;
      t.busy++;
      t.stream = socket;
    },
    requestDone: (socket) => {
      const t = trackedOf(socket);
      if (t && t.busy > 0 && !t.socket.destroyed) requestEnded(t);
    },
  };
}
