// The lab's head node, seen from the host: HTTPS to its boot server (dashboard and machine API,
// src/boot/http.ts) through the unix socket of the relay that runs in the lab's namespace
// (relay.ts), with the lab operator's client certificate. The head node's certificate is pinned by
// its SHA-256 fingerprint (no CA check: the socket names no host a CA could vouch for).
//
// startDashboardProxy is a lab convenience only: plain HTTP on 127.0.0.1, forwarding reads
// (GET, HEAD) to the head node with the operator's certificate, so a browser on the host needs no
// certificate. Anyone on the host who can reach that loopback port reads the dashboard and the
// machine API as the lab's operator; it is never bound to any other address.
import type http from 'node:http';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import type { InstallProgress, Machine, StateChange } from '../inventory/types.ts';
import {
  type ConnectionLimits,
  DEFAULT_LIMITS,
  guardConnections,
  HTTP_SERVER_OPTIONS,
} from '../util/http/connections.ts';
import { safeListener } from '../util/http/listener.ts';
import { HttpError } from '../util/http/respond.ts';
import { readPem } from '../util/request.ts';
import { httpModule, httpsModule } from '../util/http/node-http.ts';

export interface HeadApiOptions {
  /** The relay's unix socket (relay.ts), which reaches the head node's port 6977. */
  socket: string;
  /** The operator's client certificate and key (PEM files). */
  cert: string;
  key: string;
  /** SHA-256 of the head node's certificate, `AB:CD:…` as X509Certificate.fingerprint256 gives it. */
  fingerprint?: string;
  /** A host name to send as SNI (not an IP address). */
  servername?: string;
  /** For each request: to the response's head, and the longest pause in its body. */
  timeoutMs?: number;
  /** The largest body get() and json() read. */
  maxBodyBytes?: number;
}

export interface HeadResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** GET /api/v1/machines/:name */
export interface MachineDetail {
  machine: Machine;
  progress: InstallProgress | null;
  history: StateChange[];
}

/** One entry of GET /api/v1/machines. */
export type MachineListing = Machine & { progress: InstallProgress | null };

/** The head node could not be reached, or did not answer in time. */
export class HeadUnreachableError extends Error {}
/** The head node's certificate is not the pinned one: nothing was sent. */
export class HeadPinError extends Error {}

const FINGERPRINT_RE = /^[0-9A-F]{64}$/;

/** `AB:CD:…`, `abcd…` or `sha256:…` as X509Certificate.fingerprint256 writes it. */
function fingerprintOf(text: string): string {
  const hex = text
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toUpperCase();
  if (!FINGERPRINT_RE.test(hex))
    throw new Error(
      `head node fingerprint '${text}': give the SHA-256 fingerprint of its certificate, 64 hex digits as AB:CD:… (X509Certificate.fingerprint256, openssl x509 -noout -fingerprint -sha256)`,
    );
  return hex.match(/../g)!.join(':');
}

export class HeadApi {
  readonly socket: string;
  private readonly credentials: { cert: Buffer; key: Buffer };
  private readonly pin?: string;
  private readonly servername?: string;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;

  constructor(o: HeadApiOptions) {
    this.socket = o.socket;
    this.credentials = {
      cert: readPem(o.cert, "the operator's client certificate"),
      key: readPem(o.key, "the operator's key"),
    };
    this.pin = o.fingerprint === undefined ? undefined : fingerprintOf(o.fingerprint);
    if (o.servername !== undefined && net.isIP(o.servername))
      throw new Error(`servername '${o.servername}': SNI takes a host name, not an address; leave it out`);
    this.servername = o.servername;
    this.timeoutMs = o.timeoutMs ?? 15_000;
    this.maxBodyBytes = o.maxBodyBytes ?? 16 * 1024 * 1024;
  }

  private unreachable(err: NodeJS.ErrnoException): HeadUnreachableError {
    if (err instanceof HeadUnreachableError || err instanceof HeadPinError) return err;
    if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
      return new HeadUnreachableError(
        `no relay listens on ${this.socket} (${err.code}): is the lab's head node running (cradle lab --head-node)?`,
      );
    return new HeadUnreachableError(
      `the head node does not answer through ${this.socket}: ${err.message} (is it up, its boot server serving HTTPS on port 6977?)`,
    );
  }

  /** A TLS connection through the relay, its certificate checked against the pin before any byte is sent. */
  private connect(timeoutMs: number): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const raw = net.connect(this.socket);
      const socket = tls.connect({
        socket: raw,
        ...this.credentials,
        ...(this.servername ? { servername: this.servername } : {}),
        minVersion: 'TLSv1.2',
        rejectUnauthorized: false, // the pin decides, not a CA
      });
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        raw.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () =>
          fail(
            new HeadUnreachableError(
              `the head node did not complete TLS through ${this.socket} in ${timeoutMs / 1000} s`,
            ),
          ),
        timeoutMs,
      );
      // Later errors reach the request that uses the socket; these keep one from being unhandled.
      raw.on('error', (err) => fail(this.unreachable(err)));
      socket.on('error', (err) => fail(this.unreachable(err)));
      socket.once('secureConnect', () => {
        const got = socket.getPeerCertificate()?.fingerprint256 || 'none';
        if (this.pin && got !== this.pin)
          return fail(
            new HeadPinError(
              `the head node's certificate has SHA-256 fingerprint ${got}, not the pinned ${this.pin}: refused, nothing was sent`,
            ),
          );
        settled = true;
        clearTimeout(timer);
        resolve(socket);
      });
    });
  }

  /**
   * A request whose body streams: resolves at the response's head (within the timeout); a body
   * that pauses longer than the timeout is cut. One connection per request.
   */
  async request(
    path: string,
    o: { method?: 'GET' | 'HEAD'; headers?: http.OutgoingHttpHeaders; timeoutMs?: number } = {},
  ): Promise<http.IncomingMessage> {
    if (!path.startsWith('/'))
      throw new Error(`head node path '${path}': give an absolute path such as /api/v1/machines`);
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    const started = performance.now();
    const socket = await this.connect(timeoutMs);
    const left = Math.max(1, timeoutMs - (performance.now() - started));
    return new Promise((resolve, reject) => {
      const req = httpsModule.request(
        {
          method: o.method ?? 'GET',
          path,
          headers: o.headers,
          // No `agent` option: with `agent: false` Node (26) makes an Agent of its own, which
          // ignores createConnection and dials localhost:443, unpinned.
          createConnection: () => socket,
          rejectUnauthorized: false,
        },
        (res) => {
          clearTimeout(timer);
          socket.setTimeout(timeoutMs, () =>
            socket.destroy(new HeadUnreachableError(`the head node stopped sending for ${timeoutMs / 1000} s`)),
          );
          res.once('close', () => socket.destroy());
          resolve(res);
        },
      );
      const timer = setTimeout(
        () => req.destroy(new HeadUnreachableError(`the head node did not answer ${path} in ${timeoutMs / 1000} s`)),
        left,
      );
      req.on('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(this.unreachable(err));
      });
      req.end();
    });
  }

  /** A GET (or HEAD) with its whole body, at most maxBodyBytes, all within the timeout. */
  async get(path: string, o: { method?: 'GET' | 'HEAD' } = {}): Promise<HeadResponse> {
    const started = performance.now();
    const res = await this.request(path, o);
    const left = Math.max(1, this.timeoutMs - (performance.now() - started));
    const timer = setTimeout(
      () =>
        res.destroy(new HeadUnreachableError(`the head node's answer to ${path} took over ${this.timeoutMs / 1000} s`)),
      left,
    );
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.maxBodyBytes) break;
        chunks.push(chunk);
      }
    } catch (err) {
      throw this.unreachable(err as Error);
    } finally {
      clearTimeout(timer);
      res.destroy();
    }
    if (size > this.maxBodyBytes)
      throw new Error(`the head node's answer to ${path} is over ${this.maxBodyBytes} bytes`);
    return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size) };
  }

  /** A GET answered 200 with JSON; any other answer is an error with the server's own words. */
  async json<T>(path: string): Promise<T> {
    const r = await this.get(path);
    const text = r.body.toString('utf8');
    if (r.status !== 200) {
      let said = text.slice(0, 500);
      try {
        const e = JSON.parse(text) as { error?: string; detail?: string };
        if (e.error) said = `${e.error}: ${e.detail ?? ''}`;
      } catch {}
      throw new Error(`GET ${path} on the head node: ${r.status} ${said}`);
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new Error(`GET ${path} on the head node: the answer is not JSON (${(err as Error).message})`);
    }
  }

  async machines(): Promise<MachineListing[]> {
    return (await this.json<{ machines: MachineListing[] }>('/api/v1/machines')).machines;
  }

  /** One machine, its last progress and its state history. */
  async machine(hostname: string): Promise<MachineDetail> {
    // The API's own pattern for a name (src/boot/http.ts).
    if (!/^[a-z0-9.-]+$/.test(hostname))
      throw new Error(`machine name '${hostname}': lower-case letters, digits, '.' and '-' only`);
    return this.json<MachineDetail>(`/api/v1/machines/${hostname}`);
  }

  /**
   * True when the head node's machine API answers 200 (its boot server is up); false while it
   * cannot be reached. A certificate that is not the pinned one never becomes it: that throws.
   */
  async serving(): Promise<boolean> {
    try {
      return (await this.get('/api/v1/machines')).status === 200;
    } catch (err) {
      if (err instanceof HeadPinError) throw err;
      return false;
    }
  }
}

export interface DashboardProxy {
  url: string;
  close(): Promise<void>;
}

/** A browser's handful of connections, and a little more; all from 127.0.0.1. */
export const PROXY_LIMITS: ConnectionLimits = { ...DEFAULT_LIMITS, maxConnections: 64, maxPerAddress: 64 };

/** The Host header of a request made to this machine by a loopback name, with or without a port. */
const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/i;

/** Headers of one hop only, and HSTS, which means nothing on plain http://127.0.0.1. */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'strict-transport-security',
]);
/** What of a browser's request reaches the head node: nothing that identifies the browser. */
const REQUEST_HEADERS = ['accept', 'if-none-match', 'if-modified-since'];

/** The dashboard (and machine API) of the head node on http://127.0.0.1:PORT/ (see the module comment). */
export async function startDashboardProxy(
  api: HeadApi,
  o: { port: number; host?: '127.0.0.1'; log?: (line: string) => void; limits?: ConnectionLimits },
): Promise<DashboardProxy> {
  const host = o.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') throw new Error(`dashboard proxy host '${host}': it listens on 127.0.0.1 only`);
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)
    throw new Error(`dashboard proxy port ${o.port}: give a port from 1 to 65535 (0: any free one)`);
  const log = o.log ?? (() => {});

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    // A page from anywhere whose name resolves to 127.0.0.1 (DNS rebinding) would otherwise read
    // the machine API through the operator's certificate: its requests name its own host. Any
    // port: an SSH tunnel to the proxy names the tunnel's.
    if (!LOOPBACK_HOST.test(req.headers.host ?? ''))
      throw new HttpError(
        403,
        'wrong host',
        `the lab dashboard proxy answers only as 127.0.0.1, localhost or [::1], not Host '${req.headers.host ?? ''}'`,
      );
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new HttpError(405, 'method not allowed', 'the lab dashboard proxy forwards reads only: GET and HEAD');
    }
    const url = new URL(req.url ?? '/', 'http://proxy');
    const headers: http.OutgoingHttpHeaders = {};
    for (const h of REQUEST_HEADERS) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    let upstream: http.IncomingMessage;
    try {
      upstream = await api.request(url.pathname + url.search, { method: req.method, headers });
    } catch (err) {
      const text = `502 the lab's head node is unreachable: ${(err as Error).message}\n`;
      res.writeHead(502, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
      });
      return void res.end(req.method === 'HEAD' ? undefined : text);
    }
    const out: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(upstream.headers)) if (v !== undefined && !NOT_FORWARDED.has(k)) out[k] = v;
    res.writeHead(upstream.statusCode ?? 502, out);
    await pipeline(upstream, res);
  };

  const server = httpModule.createServer(
    HTTP_SERVER_OPTIONS,
    safeListener(route, {
      // Nothing here reads a body; a small one may come with a method that is refused (405).
      maxBodyBytes: 64 * 1024,
      onDone: (r) => log(`dashboard proxy: ${r.method} ${r.url} ${r.status} ${r.seconds.toFixed(3)} s`),
    }),
  );
  guardConnections(server, [server], o.limits ?? PROXY_LIMITS);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`dashboard proxy: port ${o.port} on ${host} is in use; pick another`)
          : new Error(`dashboard proxy on ${host}:${o.port}: ${err.message}`),
      ),
    );
    server.listen(o.port, host, () => resolve());
  });
  // An accept that fails costs that connection, not the proxy.
  server.on('error', () => {});
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
