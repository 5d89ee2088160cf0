// Small helpers shared by Cradle's HTTP servers: JSON replies, `{error, detail}` errors, bounded
// request bodies, the headers every HTML page carries.
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
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'content-security-policy':
    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
};

export function sendJson(res: Res, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

export function sendError(res: Res, err: unknown): void {
  // Once a body has started there is no way to report an error but to cut the connection, which
  // the client sees as a truncated response and retries.
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  // A body over the limit is left unread; the listener (listener.ts) then ends the connection
  // after this reply, giving the client time to read it (Node's own `connection: close` would
  // reset the connection under a client still sending, and lose the reply).
  if (err instanceof HttpError) sendJson(res, err.status, { error: err.error, detail: err.message });
  else sendJson(res, 500, { error: 'internal error', detail: (err as Error)?.message ?? String(err) });
}

const tooLarge = (limit: number) => new HttpError(413, 'request too large', `the request body is over ${limit} bytes`);

/**
 * The request body, at most `limit` bytes. A body declared larger is refused before a byte of it is
 * read; one that turns out larger stops being read. Either way the connection is not reused.
 */
export function readBody(req: Req, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(tooLarge(limit));
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  return new Promise((resolve, reject) => {
    // With a declared length the body goes straight into one buffer: no second copy.
    const whole = declared ? Buffer.allocUnsafe(declared) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(whole ? whole.subarray(0, size) : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit || (whole && size + chunk.length > whole.length)) return done(tooLarge(limit));
      if (whole) chunk.copy(whole, size);
      else chunks.push(chunk);
      size += chunk.length;
    };
    const onEnd = () => done();
    const onError = (err: Error) =>
      done(new HttpError(400, 'bad request', `the request body could not be read: ${err.message}`));
    const onClose = () =>
      done(new HttpError(400, 'bad request', 'the client went away before the end of the request body'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/** Deeper than any request of Cradle's APIs nests; deeper JSON is refused before it is parsed. */
export const MAX_JSON_DEPTH = 32;

/**
 * Bodies being read at once, in bytes, across the process: a body arriving past it waits for no
 * one, it gets 503. With the per-request limit this bounds the memory that requests can take.
 */
const BODY_BUDGET = 64 * 1024 * 1024;
let bodyBytesInFlight = 0;

/**
 * A JSON request body, at most `limit` bytes and MAX_JSON_DEPTH levels deep. Parsing JSON nested a
 * million levels deep would build a million objects from one request (V8 keeps the heap it grew
 * for them), so the depth is counted on the bytes first.
 */
export async function readJsonBody(req: Req, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0) || limit;
  const reserved = Math.min(declared, limit);
  if (bodyBytesInFlight + reserved > BODY_BUDGET)
    throw new HttpError(
      503,
      'busy',
      `the server is reading ${Math.round(bodyBytesInFlight / 1024 / 1024)} MiB of other requests' bodies: try again shortly`,
    );
  bodyBytesInFlight += reserved;
  let body: Buffer;
  try {
    body = await readBody(req, limit);
  } finally {
    bodyBytesInFlight -= reserved;
  }
  const depth = jsonDepth(body);
  if (depth > MAX_JSON_DEPTH)
    throw new HttpError(
      400,
      'bad request',
      `the request body nests deeper than ${MAX_JSON_DEPTH} levels: no request of this API does`,
    );
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'bad request', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** The deepest nesting of objects and arrays in JSON text (brackets inside strings not counted). */
export function jsonDepth(text: Uint8Array): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > deepest) deepest = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}
