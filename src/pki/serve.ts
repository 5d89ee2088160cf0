// Serving HTTP and HTTPS on one port, and who a client is. Dominator's URLs are plain
// (http://myhost:6978/) while its RPC needs TLS client authentication, so the installer and the
// boot server answer both on one port: the first byte of a connection says which (a TLS record
// starts with 0x16, no HTTP method does). Client certificates are asked for but not required by
// the handshake; each route decides (`clientIdentity`), so a read-only page stays open to a
// browser without a certificate while every RPC refuses one, with a message saying why.
import { X509Certificate } from 'node:crypto';
import type http from 'node:http';
import type https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import {
  type ConnectionGuard,
  type ConnectionLimits,
  DEFAULT_LIMITS,
  guardConnections,
  HTTP_SERVER_OPTIONS,
} from '../util/http/connections.ts';
import { HttpError } from '../util/http/respond.ts';
import { SERVER_TLS_PROFILE } from '../util/http/tls.ts';
import { readPem } from '../util/request.ts';
import { permittedMethods } from './methods.ts';
import { httpModule, httpsModule } from '../util/http/node-http.ts';

export interface ServerTlsFiles {
  cert: string;
  key: string;
  /** The site's CA: it signs the client certificates granting access, and alone the installer's. */
  ca: string;
  /**
   * Further CAs (PEM files, each may hold several) whose client certificates are accepted as
   * operators' (a site's existing PKI), never as the installer's: see clientIdentity.
   */
  operatorCa?: string[];
}

/**
 * TLS already read (or made in memory, pki/self-signed.ts): the server's certificate and key, and
 * the CAs whose client certificates the handshake accepts (none: no client certificate is asked for).
 */
export interface ServerTlsMaterial {
  cert: Buffer | string;
  key: Buffer | string;
  ca: Buffer[];
}

const TLS_HANDSHAKE = 0x16;

export interface DualServer {
  /** Listens on the port; both servers' handlers receive the requests. */
  server: net.Server;
  plain: http.Server;
  secure?: https.Server;
  /** Connections held, and those closed by the limits. */
  connections: ConnectionGuard;
  /** Ends every connection and stops listening. */
  close(): Promise<void>;
}

export function readServerTls(files: ServerTlsFiles): { cert: Buffer; key: Buffer; ca: Buffer[] } {
  return {
    cert: readPem(files.cert, 'the server certificate'),
    key: readPem(files.key, 'the server key'),
    ca: [
      readPem(files.ca, 'the client CA'),
      ...(files.operatorCa ?? []).map((f) => {
        const pem = readPem(f, 'the operator CA');
        if (!pemCertificates(pem).length) throw new Error(`the operator CA ${f} holds no PEM certificate`);
        return pem;
      }),
    ],
  };
}

/** The certificates of a PEM text (a CA file may hold several); anything else in it is skipped. */
export function pemCertificates(pem: Buffer | string): X509Certificate[] {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * One port for plain HTTP and, with TLS files, HTTPS asking for (not requiring) client
 * certificates. Upgrades (the shell's WebSocket) are emitted on `plain` or `secure` as usual.
 * Connections are held within `limits` (util/http/connections.ts): idle and trickling ones are
 * closed, and when the port is full the one idle longest gives way to a new one.
 */
export function dualProtocolServer(
  handler: http.RequestListener,
  tlsFiles?: ServerTlsFiles | ServerTlsMaterial,
  limits: ConnectionLimits = DEFAULT_LIMITS,
): DualServer {
  const plain = httpModule.createServer(HTTP_SERVER_OPTIONS, handler);
  const material = !tlsFiles || isMaterial(tlsFiles) ? tlsFiles : readServerTls(tlsFiles);
  const secure = material
    ? httpsModule.createServer(
        {
          ...HTTP_SERVER_OPTIONS,
          ...SERVER_TLS_PROFILE,
          ...material,
          // Without a CA there is nobody to ask a certificate of (and Node would trust its roots).
          requestCert: material.ca.length > 0,
          rejectUnauthorized: false,
        },
        handler,
      )
    : undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('readable', () => {
      const first = socket.read(1) as Buffer | null;
      if (!first) return void socket.destroy();
      socket.unshift(first);
      if (first[0] !== TLS_HANDSHAKE) return void plain.emit('connection', socket);
      // A TLS client of a server without TLS files: nothing to answer it with.
      if (secure) return void secure.emit('connection', socket);
      socket.destroy();
    });
    socket.resume();
  });
  // The limits time a connection from its accept, whichever server it is dispatched to.
  const connections = guardConnections(server, secure ? [plain, secure] : [plain], limits);
  // The HTTP servers never listen themselves: told they do, they track their connections and
  // apply their header and request timeouts (a slow client cannot hold a connection forever).
  server.on('listening', () => {
    plain.emit('listening');
    secure?.emit('listening');
  });
  // An accept that fails (descriptors exhausted) is that connection's problem, not the server's.
  server.on('error', () => {});
  for (const s of [plain, secure]) s?.on('tlsClientError', () => {});
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of [plain, secure]) s?.close(() => {});
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return { server, plain, secure, connections, close };
}

export interface ClientIdentity {
  /** The client's certificate's common name. */
  name: string;
  /**
   * The RPC methods its certificate names (Dominator's extension, pki/methods.ts); undefined when
   * it names none: every method, as for certificates issued before the list.
   */
  methods?: string[];
}

function isMaterial(t: ServerTlsFiles | ServerTlsMaterial): t is ServerTlsMaterial {
  return Array.isArray(t.ca);
}

/**
 * Who may call: an operator (RPC, shell, machine API, dashboard) holds a client certificate;
 * an installer (progress reports) holds the installer certificate, which is in every installer
 * image anyone can download: it must never pass for an operator's.
 */
export type Caller = 'operator' | 'installer';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/**
 * The verified client behind a request, or an HttpError that names what is missing: HTTPS, a
 * certificate, one the CA signed and in date, (for operators) one that is not a server's or an
 * installer's, and (for the installer, when `siteCa` is given) one the site's CA itself issued:
 * the handshake also trusts operator CAs (ServerTlsFiles.operatorCa), whose certificates must
 * never pass for the installer's.
 */
export function clientIdentity(
  socket: net.Socket,
  caller: Caller,
  siteCa?: readonly X509Certificate[],
): ClientIdentity {
  const s = socket as tls.TLSSocket;
  const how =
    caller === 'operator'
      ? "an operator's client certificate (cradle pki issue client NAME)"
      : "the installer's certificate (cradle pki issue installer installer, in the image with build-installer --tls-*)";
  if (!s.encrypted)
    throw new HttpError(
      403,
      'client certificate required',
      `this needs HTTPS with ${how} signed by this server's CA, e.g. curl --cacert ca.pem --cert cert.pem --key key.pem https://...; plain HTTP is read-only here`,
    );
  const peer = s.getPeerCertificate();
  if (!peer || !Object.keys(peer).length)
    throw new HttpError(403, 'client certificate required', `no client certificate was presented: this needs ${how}`);
  const name = String(peer.subject?.CN ?? '?');
  if (!s.authorized)
    throw new HttpError(
      403,
      'client certificate refused',
      `the client certificate of '${name}' is not accepted: ${describeTlsError(String(s.authorizationError))}`,
    );
  if (caller === 'operator' && peer.ext_key_usage?.includes(SERVER_AUTH)) {
    throw new HttpError(
      403,
      'client certificate refused',
      `the certificate of '${name}' is a server's or an installer's (the installer's is in every installer image), not an operator's: use ${how}`,
    );
  }
  if (caller === 'installer' && siteCa && !issuedBy(s.getPeerX509Certificate(), siteCa))
    throw new HttpError(
      403,
      'client certificate refused',
      `the certificate of '${name}' was not issued by this server's site CA (--tls-ca): an operator CA's certificates (--operator-ca) are accepted from operators only, never as the installer's; use ${how}`,
    );
  return { name, methods: methodsOf(s.getPeerX509Certificate()) };
}

function methodsOf(cert: X509Certificate | undefined): string[] | undefined {
  try {
    return cert ? permittedMethods(cert.raw) : [];
  } catch {
    // A certificate the handshake accepted but this cannot read grants nothing, not everything.
    return [];
  }
}

/** Issued by one of `cas` itself: names and key identifiers match, and its signature is that CA's. */
export function issuedBy(cert: X509Certificate | undefined, cas: readonly X509Certificate[]): boolean {
  return !!cert && cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
}

function describeTlsError(code: string): string {
  if (code === 'CERT_HAS_EXPIRED') return 'it has expired (issue a new one)';
  if (code === 'CERT_NOT_YET_VALID') return 'it is not valid yet (check the clocks)';
  if (
    code === 'UNABLE_TO_GET_ISSUER_CERT' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'CERT_SIGNATURE_FAILURE'
  )
    return `it was not signed by this server's CA (${code})`;
  if (code === 'UNSUPPORTED_CERTIFICATE_PURPOSE' || code === 'INVALID_PURPOSE') return 'it is not a client certificate';
  return code;
}
