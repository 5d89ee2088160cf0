// One HTTP(S) request with a whole-body answer, for the small JSON exchanges between Cradle's
// parts (progress reports, RPC calls). node:https rather than fetch: fetch cannot present a
// client certificate, and mutual TLS is how the parts know each other.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

export interface RequestTls {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface RequestOptions {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** PEM file paths (read on each call), or ready TLS options. */
  tls?: RequestTls;
  tlsOptions?: https.RequestOptions;
  timeoutMs?: number;
}

/** A PEM file (certificate or key), with the file and what it is named in any error. */
export function readPem(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(
      `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (make one with 'cradle pki', docs/pki.md)`,
    );
  }
}

/** The PEM files read into node:tls options, with the file named in any error. */
export function readTlsFiles(tls: RequestTls): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const read = (file: string | undefined, what: string) => (file ? readPem(file, what) : undefined);
  return {
    ca: read(tls.ca, 'the CA certificate'),
    cert: read(tls.cert, 'the client certificate'),
    key: read(tls.key, 'the client key'),
  };
}

export function request(url: URL | string, o: RequestOptions = {}): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const timeoutMs = o.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = {
      method: o.method ?? 'GET',
      headers: {
        ...(o.body !== undefined
          ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(o.body)) }
          : {}),
        ...o.headers,
      },
      timeout: timeoutMs,
      ...(secure ? { ...(o.tls ? readTlsFiles(o.tls) : {}), ...o.tlsOptions } : {}),
    };
    const req = (secure ? https : http).request(u, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${u.host}: no answer in ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(o.body);
  });
}
