// A lane in front of node:http for the one request a server answers most, whole, from memory: the
// image server's cached objects, asked for once per object by caches, proxies and peers. node:http
// costs about 30 µs of CPU a request on its own (bench/imageserver-get.ts's floor); nginx answers
// in under 25. The lane reads each connection's requests itself, answers the simple ones
// (simple-head.ts) with one socket write, and hands the connection to node:http at the first
// request it does not answer, with every byte it has not consumed: from then on the connection is
// node:http's, as if the lane had never been there. So the lane parses nothing that node:http would
// parse differently, and each error, limit and odd request keeps node:http's answer.
//
// What node:http gives every connection, the lane gives its own: the connection guard's rules
// (connections.ts: busy from a request's head to the end of writing its answer, then a head's time
// for the next), the request record (logs and metrics), HSTS over TLS, Date, and a connection that
// stops reading while its answers are not drained (a client that pipelines without reading holds
// one socket buffer, not a growing queue).
import type http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import { type ConnectionGuard, HTTP_SERVER_OPTIONS } from './connections.ts';
import type { RequestRecord } from './listener.ts';
import { scanSimpleHead, type SimpleRequest } from './simple-head.ts';

export interface LaneAnswer<R> {
  /** Response fields, as node:http's writeHead takes them (lower-case names; no Date or Connection). */
  headers: Record<string, string | number>;
  /** The representation; sent for GET, its length stated for HEAD. */
  body: Buffer;
  /** What the route would have returned (for the request record). */
  result: R;
}

/**
 * The lane's answer to a simple request: a 200 now, later (the connection reads nothing more
 * meanwhile), or undefined, when node:http is to answer it (and everything after it).
 */
export type LaneRoute<R> = (request: SimpleRequest) => LaneAnswer<R> | undefined | Promise<LaneAnswer<R> | undefined>;

export interface FastLaneOptions<R> {
  route: LaneRoute<R>;
  /** The server's connection guard: told when a request here starts and when its answer is out. */
  guard: ConnectionGuard;
  /** Called once a request is answered, as safeListener's onDone; its own failures are dropped. */
  onDone?: (record: RequestRecord<R>) => void;
}

/** What node:http states on a kept-alive answer, from the same options. */
const KEEP_ALIVE = `Connection: keep-alive\r\nKeep-Alive: timeout=${HTTP_SERVER_OPTIONS.keepAliveTimeout / 1000}\r\n`;
const HSTS = 'strict-transport-security: max-age=31536000\r\n';
/** Bodies up to this size are copied behind their head and sent in one write. */
const COPY_LIMIT = 64 * 1024;
/** A head arriving in more pieces than this is node:http's to read. */
const MAX_HEAD_PIECES = 16;
/** Bytes that are only line ends. */
const BLANK_LINES = /^[\r\n]*$/;
/** What node:http answers a request it cannot parse. */
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

/**
 * Puts the lane in front of `server`'s HTTP parser: every connection (for HTTPS, every connection
 * once its TLS handshake is done) reaches the lane before node:http's parser.
 */
export function addFastLane<R>(server: http.Server, o: FastLaneOptions<R>): void {
  // node:http's own handler of a new connection is the first listener, the one its constructor
  // registered: 'connection' for HTTP, 'secureConnection' (after the handshake) for HTTPS.
  const event = server instanceof tls.Server ? 'secureConnection' : 'connection';
  const parse = server.listeners(event)[0] as ((socket: net.Socket) => void) | undefined;
  if (!parse) throw new Error(`addFastLane: the server has no '${event}' listener of node:http's`);
  server.removeListener(event, parse);
  const lanes = new Set<Lane<R>>();
  server.on(event, (socket: net.Socket) => {
    const lane = new Lane(socket, o, {
      serverListening: () => server.listening,
      handOff: () => {
        lanes.delete(lane);
        parse.call(server, socket);
      },
    });
    lanes.add(lane);
    socket.once('close', () => lanes.delete(lane));
  });
  // node:http knows only the connections it parses: the lane's are closed here too. close() calls
  // closeIdleConnections(); a connection busy at that moment is ended after its answer.
  const closeIdle = server.closeIdleConnections.bind(server);
  const closeAll = server.closeAllConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdle();
    for (const lane of lanes) if (lane.idle()) lane.socket.destroy();
  };
  server.closeAllConnections = () => {
    closeAll();
    for (const lane of lanes) lane.socket.destroy();
  };
}

/** One connection while the lane has it. */
class Lane<R> {
  readonly socket: net.Socket;
  private readonly o: FastLaneOptions<R>;
  private readonly server: { serverListening: () => boolean; handOff: () => void };
  /** Bytes received and not yet consumed. */
  private pending: Buffer | undefined;
  /** How many pieces (reads) the incomplete head at the start of `pending` has come in. */
  private pieces = 0;
  /** A route's answer is awaited (the socket is paused meanwhile). */
  private waiting = false;
  private handedOff = false;
  /** The client has sent its last byte (it may still read): end once the answers are out. */
  private ended = false;
  private readonly onData = (chunk: Buffer) => {
    if (this.pending) {
      this.pending = Buffer.concat([this.pending, chunk]);
      this.pieces++;
    } else {
      this.pending = chunk;
      this.pieces = 1;
    }
    if (!this.waiting) this.serve();
  };
  private readonly onEnd = () => {
    this.ended = true;
    if (!this.waiting && !this.socket.writableNeedDrain) this.serve();
  };
  private readonly onError = () => this.socket.destroy();
  private readonly onDrain = () => {
    if (this.handedOff || this.waiting) return;
    this.socket.resume();
    this.serve();
  };
  /** An answer has left for the kernel (or been abandoned): the guard may time the connection again. */
  private readonly onWritten = () => this.o.guard.requestDone(this.socket);

  constructor(
    socket: net.Socket,
    o: FastLaneOptions<R>,
    server: { serverListening: () => boolean; handOff: () => void },
  ) {
    this.socket = socket;
    this.o = o;
    this.server = server;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('drain', this.onDrain);
  }

  idle(): boolean {
    return !this.waiting && !this.pending && this.socket.writableLength === 0;
  }

  /** Answers the complete simple requests received, in order, until one needs more. */
  private serve(): void {
    const socket = this.socket;
    try {
      while (this.pending && !socket.destroyed && !socket.writableEnded) {
        const scan = scanSimpleHead(this.pending);
        if (scan.kind === 'incomplete') {
          // A head trickling in is node:http's, whose parser reads each byte once: the lane
          // would scan the whole head again at every piece.
          if (this.pieces > MAX_HEAD_PIECES) return this.handOff();
          break;
        }
        if (scan.kind === 'other') return this.handOff();
        const started = performance.now();
        // Busy from here until the answer has been written: the guard neither times the
        // connection out nor evicts it meanwhile, whatever the route or the client's reading takes.
        this.o.guard.requestStarted(socket);
        const answer = this.routed(scan.request);
        if (answer instanceof Promise) {
          this.waiting = true;
          socket.pause();
          answer.then(
            (a) => this.later(scan.request, scan.length, a, started),
            () => this.later(scan.request, scan.length, undefined, started),
          );
          return;
        }
        if (!answer) {
          this.o.guard.requestDone(socket);
          return this.handOff();
        }
        this.send(scan.request, scan.length, answer, started);
        // Answers not yet taken by the client: read no further until they are (onDrain).
        if (socket.writableNeedDrain) return void socket.pause();
      }
      // After the client's end, once all it sent is answered. A head it cut short can never be
      // completed: node:http would answer it 400.
      if (this.ended && !socket.destroyed && !socket.writableEnded) {
        // Blank lines alone are no request: node:http passes over them before a request line.
        if (this.pending && !BLANK_LINES.test(this.pending.toString('latin1'))) socket.end(BAD_REQUEST, 'latin1');
        else socket.end();
      }
    } catch {
      // The lane's own failure: this connection's, never the server's.
      socket.destroy();
    }
  }

  /** The route's answer; a route that throws leaves the request to node:http. */
  private routed(request: SimpleRequest): ReturnType<LaneRoute<R>> {
    try {
      return this.o.route(request);
    } catch {
      return undefined;
    }
  }

  /** A route's later answer: sent, and the requests after it served. */
  private later(request: SimpleRequest, length: number, answer: LaneAnswer<R> | undefined, started: number) {
    this.waiting = false;
    const socket = this.socket;
    try {
      if (socket.destroyed) return;
      if (!answer) {
        this.o.guard.requestDone(socket);
        return this.handOff();
      }
      this.send(request, length, answer, started);
      if (socket.writableNeedDrain) return;
      socket.resume();
      this.serve();
    } catch {
      socket.destroy();
    }
  }

  private send(request: SimpleRequest, length: number, answer: LaneAnswer<R>, started: number): void {
    const socket = this.socket;
    this.pending = length === this.pending!.length ? undefined : this.pending!.subarray(length);
    this.pieces = this.pending ? 1 : 0;
    let head = 'HTTP/1.1 200 OK\r\n';
    for (const name in answer.headers) head += `${name}: ${answer.headers[name]}\r\n`;
    if ((socket as tls.TLSSocket).encrypted) head += HSTS;
    // A server closing answers what it has begun, then ends its kept-alive connections.
    const closing = !this.server.serverListening();
    head += `Date: ${httpDate()}\r\n${closing ? 'Connection: close\r\n' : KEEP_ALIVE}`;
    head += `Content-Length: ${answer.body.length}\r\n\r\n`;
    const bodyBytes = request.method === 'HEAD' ? 0 : answer.body.length;
    if (bodyBytes > COPY_LIMIT) {
      // A large body goes out as it is, beside its head (one writev).
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(answer.body, this.onWritten);
      socket.uncork();
    } else {
      // A small one is copied behind its head: one write of one buffer costs least.
      const headBytes = head.length; // latin1: a byte a character
      const out = Buffer.allocUnsafe(headBytes + bodyBytes);
      out.write(head, 0, 'latin1');
      if (bodyBytes) answer.body.copy(out, headBytes);
      socket.write(out, this.onWritten);
    }
    this.record(request, answer.result, started);
    if (closing) {
      this.pending = undefined;
      socket.end();
    }
  }

  private record(request: SimpleRequest, result: R, started: number): void {
    if (!this.o.onDone) return;
    try {
      this.o.onDone({
        client: this.socket.remoteAddress ?? '?',
        method: request.method,
        url: request.target,
        status: 200,
        seconds: (performance.now() - started) / 1000,
        result,
      });
    } catch {
      // A log or a metric that fails costs its own line, never the server.
    }
  }

  /** node:http takes the connection, with every byte the lane has not consumed. */
  private handOff(): void {
    const socket = this.socket;
    if (this.handedOff || socket.destroyed) return;
    this.handedOff = true;
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('drain', this.onDrain);
    const pending = this.pending;
    this.pending = undefined;
    if (this.ended) {
      // The client's end has been read, and a stream takes nothing back after its end: node:http
      // cannot be given these bytes. It ends a connection whose client has ended, as here. The
      // lane's error listener stays: answers may still be on their way, and a reset while they
      // are would otherwise be an error event nobody listens to, which stops the process.
      socket.end();
      return;
    }
    socket.removeListener('error', this.onError);
    socket.pause();
    if (pending) socket.unshift(pending);
    this.server.handOff();
    socket.resume();
  }
}

let dateSecond = -1;
let dateText = '';
/** The Date field's value (RFC 9110 IMF-fixdate), made once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
