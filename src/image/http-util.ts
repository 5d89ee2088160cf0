// Small helpers shared by Cradle's HTTP servers: JSON replies, `{error, detail}` errors, bounded
// JSON request bodies.
import type http from 'node:http';

export type Req = http.IncomingMessage;
export type Res = http.ServerResponse;

/** An error with the HTTP status and the short `error` text the API returns. */
export class HttpError extends Error {
  readonly status: number;
  readonly error: string;
  constructor(status: number, error: string, detail: string) {
    super(detail);
    this.status = status;
    this.error = error;
  }
}

/** Headers of every HTML page Cradle serves: nothing from elsewhere, no framing, no sniffing. */
export const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'",
};

export function sendJson(res: Res, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

export function sendError(res: Res, err: unknown): void {
  // Once a body has started there is no way to report an error but to cut the connection, which
  // the client sees as a truncated response and retries.
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError) sendJson(res, err.status, { error: err.error, detail: err.message });
  else sendJson(res, 500, { error: 'internal error', detail: (err as Error)?.message ?? String(err) });
}

export async function readJsonBody(req: Req, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, 'request too large', `the request body is over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'bad request', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}
