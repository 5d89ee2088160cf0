// A throwaway HTTPS server on 127.0.0.1 serving a few files, with a certificate of its own CA:
// the web server a site would put answers or kits on, for the tests of fetching them pinned by
// the certificate's SHA-256 fingerprint. It records the paths asked for, so a test can tell that
// a refused pin sent no request at all.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createCa, issueCertificate } from '../../src/pki/pki.ts';

export interface HttpsFiles {
  /** https://127.0.0.1:PORT, without a trailing slash. */
  url: string;
  /** The server certificate's fingerprint, as `openssl x509 -noout -fingerprint -sha256` prints it. */
  fingerprint: string;
  /** The paths requested so far. */
  requests: string[];
  /** Connections open now. */
  connections(): Promise<number>;
  /** TLS connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

export async function serveHttpsFiles(files: Record<string, string | Buffer>): Promise<HttpsFiles> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-https-'));
  try {
    await createCa(path.join(dir, 'ca'), { name: 'test web CA', days: 30 });
    const { cert, key } = await issueCertificate(
      path.join(dir, 'ca'),
      { kind: 'server', name: '127.0.0.1', ips: ['127.0.0.1'], days: 30 },
      path.join(dir, 'server'),
    );
    const pem = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
    const requests: string[] = [];
    const server = https.createServer(pem, (req, res) => {
      requests.push(req.url ?? '');
      const body = files[req.url ?? ''];
      if (body === undefined) res.writeHead(404).end('not here\n');
      else res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
    });
    let accepted = 0;
    server.on('secureConnection', () => accepted++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `https://127.0.0.1:${port}`,
      fingerprint: new crypto.X509Certificate(pem.cert).fingerprint256,
      requests,
      accepted: () => accepted,
      connections: () =>
        new Promise((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n)))),
      close: () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
