// The installer's port 6978 (docs/installer-status.md): the status page, the log and the metrics
// for anyone (read-only), and the RPC and the remote shell for clients with a certificate the
// installer's CA signed, each method as far as the certificate permits it (access.ts). Plain HTTP
// and HTTPS share the port; without TLS files (or a generated certificate) only the read-only part
// is served. The server outlives install attempts: a retry attaches a new one.
import fs from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { InstallerOptions } from '../installer/context.ts';
import type { InstallObserver, InstallView } from '../installer/daemon.ts';
import type { InstallerLog } from '../installer/log.ts';
import type { RebootGate } from '../installer/reboot.ts';
import { safeListener } from '../util/http/listener.ts';
import { HTML_HEADERS, HttpError, sendJson, type Req, type Res } from '../util/http/respond.ts';
import type { X509Certificate } from 'node:crypto';
import { clientIdentity, dualProtocolServer, issuedBy, pemCertificates, type DualServer } from '../pki/serve.ts';
import { readPem } from '../util/request.ts';
import { authorise, type Caller, type InstallerMethod, ROUTE_METHODS } from './access.ts';
import { type StatusTls, statusTls } from './tls.ts';
import { installerMetrics } from './metrics.ts';
import { statusPage } from './page.ts';
import { refuse, ShellSessions } from './shell.ts';
import { snapshotOf, type StatusSnapshot } from './snapshot.ts';
import { listen } from '../util/listen.ts';

export interface StatusServerOptions {
  port: number;
  /** Listen address; default all. */
  address?: string;
  /** Without it: read-only, plain HTTP (RPC and shell answer 403 saying why). */
  tls?: StatusTls;
  gate: RebootGate;
  log: InstallerLog;
  shellCommand: string[];
  shellKeepSeconds: number;
}

/** Clients following the log at once (from one address), and how far one may fall behind before it is dropped. */
const MAX_FOLLOWERS = 32;
const MAX_FOLLOWERS_PER_CLIENT = 4;
const FOLLOWER_BACKLOG = 1024 * 1024;
/** Bodies are read by no route of this port. */
const MAX_BODY_BYTES = 4096;

export class StatusServer implements InstallObserver {
  private view: InstallView | undefined;
  private attempt = 0;
  private readonly dual: DualServer;
  private readonly shells: ShellSessions;
  private readonly metrics;
  private readonly opts: StatusServerOptions;
  private readonly followers = new Set<Res>();
  /** The installer's CA: certificates it issued itself are not identity-only. */
  private readonly siteCa: X509Certificate[] = [];
  /** Whether the handshake asks for client certificates at all (some CA is configured). */
  private readonly clientCas: boolean;

  constructor(opts: StatusServerOptions) {
    this.opts = opts;
    const cas: Buffer[] = [];
    if (opts.tls?.ca) {
      cas.push(readPem(opts.tls.ca, 'the client CA'));
      this.siteCa = pemCertificates(cas[0]);
    }
    if (opts.tls?.identityCa) {
      const pem = readPem(opts.tls.identityCa, 'the identity CA');
      if (!pemCertificates(pem).length)
        throw new Error(`the identity CA ${opts.tls.identityCa} holds no PEM certificate`);
      cas.push(pem);
    }
    this.clientCas = cas.length > 0;
    this.shells = new ShellSessions({ command: opts.shellCommand, log: opts.log, keepSeconds: opts.shellKeepSeconds });
    opts.gate.shellsOpen = () => this.shells.count();
    this.metrics = installerMetrics(() => this.snapshot());
    // No route reads a body: one is refused when declared, and cut off when sent anyway.
    this.dual = dualProtocolServer(
      safeListener((req, res) => this.route(req, res), { maxBodyBytes: MAX_BODY_BYTES }),
      opts.tls && { cert: opts.tls.cert, key: opts.tls.key, ca: cas },
    );
    for (const s of [this.dual.plain, this.dual.secure]) {
      s?.on('upgrade', (req, socket, head) => {
        try {
          this.upgrade(req, socket, head);
        } catch {
          socket.destroy();
        }
      });
    }
    opts.log.onLine((line) => {
      for (const res of this.followers) {
        // A follower that does not read is dropped, not buffered for.
        if (res.writableLength > FOLLOWER_BACKLOG) res.destroy();
        else res.write(`${line}\n`);
      }
    });
  }

  /** The attempt the page and the RPC show from now on. */
  attach(view: InstallView): void {
    this.view = view;
    this.attempt++;
  }

  snapshot(): StatusSnapshot {
    if (!this.view) throw new HttpError(503, 'starting', 'the installer has not started its first attempt yet');
    const addresses: Record<string, string[]> = {};
    for (const [name, list] of Object.entries(os.networkInterfaces()))
      addresses[name] = (list ?? []).map((a) => a.cidr ?? a.address);
    return snapshotOf({
      view: this.view,
      attempt: this.attempt,
      hostname: os.hostname(),
      heldBy: this.opts.gate.heldBy,
      retryPossible: this.opts.gate.failedWaiting,
      addresses,
      shells: this.shells.list(),
      now: performance.now(),
      logLines: 50,
    });
  }

  async listen(): Promise<AddressInfo> {
    return listen(this.dual.server, this.opts.port, this.opts.address);
  }

  async close(): Promise<void> {
    this.shells.closeAll();
    for (const res of this.followers) res.end();
    await this.dual.close();
  }

  private async route(req: Req, res: Res): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://installer');
    const p = url.pathname;
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && p === '/') {
      const html = statusPage(this.snapshot(), new Date());
      res.writeHead(200, { ...HTML_HEADERS, 'content-length': Buffer.byteLength(html) });
      return void res.end(req.method === 'HEAD' ? undefined : html);
    }
    // Dominator's log pages: /logs/dump is the lines in memory, /logs/showSinceStartup this run's files.
    if (get && (p === '/logs' || p === '/logs/dump')) return this.text(res, `${this.opts.log.lines.join('\n')}\n`);
    if (get && p === '/logs/showSinceStartup') return this.sinceStartup(res);
    if (get && p === '/logs/follow') return this.follow(res);
    if (get && p === '/metrics') return this.text(res, await this.metrics.metrics(), this.metrics.contentType);
    if (p.startsWith('/api/')) return this.rpc(req, res, p, url);
    throw new HttpError(
      404,
      'not found',
      `no page ${p}: the status page is /, the log /logs (live: /logs/follow; this run's whole log: /logs/showSinceStartup), metrics /metrics, the RPC under /api/v1/`,
    );
  }

  /** The RPC: every route needs a client certificate whose CA and methods permit it. */
  private async rpc(req: Req, res: Res, p: string, url: URL): Promise<void> {
    const caller = this.caller(req.socket);
    const who = caller.name;
    const { gate } = this.opts;
    const route = `${req.method} ${p}`;
    const method: InstallerMethod | undefined =
      ROUTE_METHODS[route] ?? (p === '/api/v1/shell' ? 'Installer.Shell' : undefined);
    if (method) authorise(caller, method);
    if (route === 'GET /api/v1/status') return sendJson(res, 200, this.snapshot());
    if (route === 'GET /api/v1/logs') {
      // Line numbers count from the start of the log, not of what is kept (the last 10,000).
      const since = Math.max(0, Number(url.searchParams.get('since') ?? 0) || 0);
      const { lines, total } = this.opts.log;
      const first = total - lines.length;
      return sendJson(res, 200, { lines: lines.slice(Math.max(0, since - first)), first, next: total });
    }
    if (route === 'POST /api/v1/reboot/block') {
      if (!gate.hold(who))
        throw new HttpError(409, 'too late', 'the installer is past its last wait: it is rebooting (or exiting) now');
      return sendJson(res, 200, { held: true, heldBy: gate.heldBy });
    }
    if (route === 'POST /api/v1/reboot/unblock') {
      gate.release(who);
      return sendJson(res, 200, { held: false });
    }
    if (route === 'POST /api/v1/reboot/now') {
      if (!gate.rebootNow(who))
        throw new HttpError(
          409,
          'not waiting',
          `the installer is ${this.snapshot().state}: it reboots by itself when it is done`,
        );
      return sendJson(res, 202, { rebooting: true });
    }
    if (route === 'POST /api/v1/retry') {
      if (!gate.retry(who))
        throw new HttpError(
          409,
          'nothing to retry',
          `the installer is ${this.snapshot().state}: a retry is possible only while it waits after a failure`,
        );
      return sendJson(res, 202, { retrying: true });
    }
    if (p === '/api/v1/shell')
      throw new HttpError(426, 'upgrade required', 'the shell is a WebSocket: use cradle installer-shell HOST');
    throw new HttpError(
      404,
      'not found',
      `no RPC ${route}: GET /api/v1/status, GET /api/v1/logs?since=N, POST /api/v1/reboot/block, POST /api/v1/reboot/unblock, POST /api/v1/reboot/now, POST /api/v1/retry, /api/v1/shell (WebSocket)`,
    );
  }

  /** Who is calling, and by which CA, or a 403 saying what is missing (here: maybe TLS altogether). */
  private caller(socket: import('node:net').Socket): Caller {
    if (!this.opts.tls)
      throw new HttpError(
        403,
        'no TLS on this installer',
        'this installer has no TLS files (/etc/ssl/CA.pem, /etc/ssl/installer/cert.pem and key.pem; cradle build-installer --tls-*): its RPC and remote shell are off, the status page is all it serves',
      );
    if (!this.clientCas)
      throw new HttpError(
        403,
        'no client CA on this installer',
        'this installer serves HTTPS but has no CA for client certificates (/etc/ssl/CA.pem; cradle build-installer --tls-ca): its RPC and remote shell are off, the status page is all it serves',
      );
    const id = clientIdentity(socket, 'operator');
    const cert = (socket as import('node:tls').TLSSocket).getPeerX509Certificate();
    const site = this.siteCa.length > 0 && issuedBy(cert, this.siteCa);
    return { name: id.name, methods: id.methods, identityOnly: !site };
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://installer');
    const net = socket as import('node:net').Socket;
    if (url.pathname !== '/api/v1/shell')
      return refuse(net, 404, `no WebSocket at ${url.pathname}: the shell is /api/v1/shell`);
    let user: string;
    try {
      const caller = this.caller(net);
      authorise(caller, 'Installer.Shell');
      user = caller.name;
    } catch (err) {
      return refuse(net, 403, (err as Error).message);
    }
    // From here the connection is the shell's: the request-head timeout no longer applies.
    this.dual.connections.upgraded(net);
    this.shells.upgrade(req, net, head, user, url).catch(() => net.destroy());
  }

  /** Every line of this run, from its log files (the memory keeps only the last ones), streamed. */
  private async sinceStartup(res: Res): Promise<void> {
    const files = this.opts.log.files;
    if (!files.length) return this.text(res, `${this.opts.log.lines.join('\n')}\n`);
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    for (const file of files) await pipeline(fs.createReadStream(file), res, { end: false }).catch(() => {});
    res.end();
  }

  private text(res: Res, body: string, type = 'text/plain; charset=utf-8'): void {
    res.writeHead(200, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.end(body);
  }

  /** The log so far, then every new line as it is written, until the client goes. */
  private follow(res: Res): void {
    if (this.followers.size >= MAX_FOLLOWERS)
      throw new HttpError(
        503,
        'too many followers',
        `${MAX_FOLLOWERS} clients follow the log already: try /logs, or later`,
      );
    // One client (the status port needs no certificate) must not take every place.
    const address = res.req.socket.remoteAddress;
    let fromClient = 0;
    for (const f of this.followers) if (f.req.socket.remoteAddress === address) fromClient++;
    if (fromClient >= MAX_FOLLOWERS_PER_CLIENT)
      throw new HttpError(
        503,
        'too many followers',
        `${fromClient} connections from ${address} follow the log already: close one, or try /logs`,
      );
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.write(`${this.opts.log.lines.join('\n')}\n`);
    this.followers.add(res);
    res.on('close', () => this.followers.delete(res));
  }
}

/**
 * The installer's port 6978 for a daemon (installer/daemon.ts attaches each attempt); a port that
 * cannot be opened is logged, never fatal, as in Dominator's installer.
 */
export async function startStatusServer(
  opts: InstallerOptions,
  log: InstallerLog,
  gate: RebootGate,
): Promise<StatusServer | undefined> {
  const s = opts.status;
  if (!s) return undefined;
  try {
    const { tls, summary } = await statusTls(opts.tls, s, log);
    const server = new StatusServer({
      port: s.port,
      address: s.address,
      tls,
      gate,
      log,
      shellCommand: s.shellCommand,
      shellKeepSeconds: s.shellKeepSeconds,
    });
    const addr = await server.listen();
    const host =
      addr.address === '::' || addr.address === '0.0.0.0'
        ? 'THIS-MACHINE'
        : addr.family === 'IPv6'
          ? `[${addr.address}]`
          : addr.address;
    log.info(`status page on http://${host}:${addr.port}/ (${summary})`);
    return server;
  } catch (err) {
    log.info(`no status page: ${(err as Error).message}`);
    return undefined;
  }
}
