// One HTTP(S) request with a whole-body answer, for the small JSON exchanges between Cradle's
// parts (progress reports, RPC calls). node:https rather than fetch: fetch cannot present a
// client certificate, and mutual TLS is how the parts know each other.
import fs from 'node:fs';
import type http from 'node:http';
import type https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { httpModuleFor } from './http/node-http.ts';

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
    const req = httpModuleFor(u).request(u, options, (res) => {
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

/**
 * Streams a GET's body into `file` (created new, 0600), following up to five redirects; a
 * response that stalls for `stallMs` fails. The bytes are not trusted: the caller verifies them.
 */
export async function download(
  url: URL | string,
  file: string,
  o: { tls?: RequestTls; stallMs?: number; redirects?: number } = {},
): Promise<{ bytes: number; url: string }> {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`${u.href}: only http:// and https:// URLs can be downloaded`);
  const stallMs = o.stallMs ?? 60_000;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const secure = u.protocol === 'https:';
    const req = httpModuleFor(u).get(u, {
      timeout: stallMs,
      ...(secure && o.tls ? readTlsFiles(o.tls) : {}),
    });
    req.on('response', resolve);
    req.on('timeout', () => req.destroy(new Error(`${u.host}: no data for ${stallMs / 1000} s`)));
    req.on('error', reject);
  });
  const status = res.statusCode ?? 0;
  if (status >= 300 && status < 400 && res.headers.location) {
    res.resume();
    if ((o.redirects ?? 5) <= 0) throw new Error(`${u.href}: too many redirects`);
    return download(new URL(res.headers.location, u), file, { ...o, redirects: (o.redirects ?? 5) - 1 });
  }
  if (status !== 200) {
    res.resume();
    throw new Error(`${u.href}: the server answered ${status} ${res.statusMessage ?? ''}`.trim());
  }
  res.setTimeout(stallMs, () => res.destroy(new Error(`${u.host}: no data for ${stallMs / 1000} s`)));
  const out = fs.createWriteStream(file, { flags: 'wx', mode: 0o600 });
  let bytes = 0;
  res.on('data', (c: Buffer) => {
    bytes += c.length;
  });
  await pipeline(res, out);
  return { bytes, url: u.href };
}
