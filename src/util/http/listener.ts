// Every Cradle web port's request listener is made here, so that no request, however malformed,
// and no failure of the server's own code while answering it (a handler, an error reply, the
// request log, metrics), can reach the process: one bad request must never stop a boot server that
// a whole rack depends on. It also refuses a body declared over the server's limit before reading
// it, closes a connection whose body was left unread (rather than reading it to the end, as Node
// does), and marks HTTPS replies with HSTS.
import type http from 'node:http';
import type net from 'node:net';
import { HttpError, sendError, type Req, type Res } from './respond.ts';

export interface RequestRecord<R> {
  client: string;
  method: string;
  url: string;
  status: number;
  seconds: number;
  /** What the route returned (for instance its name, for metrics); undefined when it failed. */
  result?: R;
  /** The failure, when the route threw. */
  error?: unknown;
}

export interface ListenerOptions<R> {
  /** The largest body any route reads: a request declaring more gets 413 at once. */
  maxBodyBytes: number;
  /** Maps a route's failure to what is sent (an HttpError, or anything else for a 500). */
  mapError?: (err: unknown, req: Req) => unknown;
  /** Called once a request is answered, for logs and metrics; its own failures are dropped. */
  onDone?: (record: RequestRecord<R>) => void;
}

/** How long a client may go on sending a body nobody reads, after the reply, before it is cut. */
const LINGER_MS = 2_000;

const HSTS = 'max-age=31536000';

export function safeListener<R>(
  // A route may answer synchronously (the image server's cached objects): no promise, no microtask.
  route: (req: Req, res: Res) => R | Promise<R>,
  o: ListenerOptions<R>,
): http.RequestListener {
  return (req, res) => {
    // Read now: once the connection is gone, req.socket is null.
    const socket = req.socket as net.Socket | null;
    const started = performance.now();
    const record: RequestRecord<R> = {
      client: socket?.remoteAddress ?? '?',
      method: req.method ?? '?',
      url: req.url ?? '?',
      status: 0,
      seconds: 0,
    };
    const fail = (err: unknown) => {
      record.error = err;
      try {
        sendError(res, o.mapError ? o.mapError(err, req) : err);
      } catch {
        res.destroy();
      }
    };
    const finish = () => {
      try {
        record.status = res.statusCode;
        record.seconds = (performance.now() - started) / 1000;
        o.onDone?.(record);
      } catch {
        // A log or a metric that fails costs its own line, never the server.
      }
    };
    try {
      if (socket) {
        // Node closes a `Connection: close` exchange with destroySoon(), which resets the
        // connection when request bytes are still unread (a refused body), and the client loses
        // the reply it was about to read. A lingering close instead: the reply, then FIN.
        if (socket.destroySoon !== lingeringDestroySoon) socket.destroySoon = lingeringDestroySoon;
        if (mayHaveBody(req))
          res.once('finish', () => {
            if (!req.complete) closeLingering(socket);
          });
      }
      if ((socket as { encrypted?: boolean } | null)?.encrypted) res.setHeader('strict-transport-security', HSTS);
      if (Number(req.headers['content-length'] ?? 0) > o.maxBodyBytes)
        throw new HttpError(413, 'request too large', `the request body is over ${o.maxBodyBytes} bytes`);
      const out = route(req, res);
      if (out instanceof Promise)
        out
          .then((result) => void (record.result = result), fail)
          .finally(finish)
          .catch(() => {});
      else {
        record.result = out;
        finish();
      }
    } catch (err) {
      fail(err);
      finish();
    }
  };
}

/** A request without Content-Length or Transfer-Encoding has no body (RFC 9112 section 6.3). */
function mayHaveBody(req: Req): boolean {
  const h = req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/** Installed as a socket's destroySoon: `this` is the socket. */
function lingeringDestroySoon(this: net.Socket): void {
  closeLingering(this);
}

/** Ends a connection whose request body was not read: its reply goes out, then it closes. */
function closeLingering(socket: net.Socket): void {
  if (socket.destroyed || socket.writableEnded) return;
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
