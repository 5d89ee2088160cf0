// The head of the one kind of request a fast lane (fast-lane.ts) answers itself: `GET` or `HEAD`
// over HTTP/1.1, with no body, no condition, no range and nothing that changes the connection. A
// pure function over the bytes received, so its golden cases are plain tests. It is strict on
// purpose: whatever it does not recognise as that kind of request, however valid, it reports as
// `other`, and node:http's parser, which knows the whole protocol and its errors, takes the
// connection from that request on. The lane never answers a request that node:http would parse
// differently.

/** What the lane needs of a request it answers. */
export interface SimpleRequest {
  method: 'GET' | 'HEAD';
  /** The request target as sent: an origin-form path of visible ASCII, unescaped nothing. */
  target: string;
  /** The one Accept-Encoding header's value, if any. */
  acceptEncoding: string | undefined;
}

export type HeadScan =
  /** No complete head yet, and still under the size limit: wait for more bytes. */
  | { kind: 'incomplete' }
  /** Not a simple request (or not one this parser can vouch for): node:http's to answer. */
  | { kind: 'other' }
  /** A simple request whose head (and, having no body, the whole request) is `length` bytes. */
  | { kind: 'simple'; request: SimpleRequest; length: number };

/**
 * A head larger than this is left to node:http (whose own limit is 16 KiB, with its 431); a
 * client's simple GET is a few hundred bytes.
 */
export const SIMPLE_HEAD_MAX = 8 * 1024;

const INCOMPLETE: HeadScan = { kind: 'incomplete' };
const OTHER: HeadScan = { kind: 'other' };
const REQUEST_LINE = /^(GET|HEAD) (\/[!-~]*) HTTP\/1\.1$/;
/**
 * Field lines (RFC 9110 section 5), each ended by CRLF: a token, a colon, a value of visible ASCII,
 * spaces and tabs. A bare CR or LF, a folded line or a control character fails it.
 */
const FIELD_LINES = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e]*\r\n)*$/;
/** Leading and trailing spaces and tabs of a field value. */
const OWS = /^[ \t]+|[ \t]+$/g;
/**
 * Fields that make a request something else than a plain read of the whole representation: a
 * body, a condition, a range, an expectation or an upgrade. node:http answers those.
 */
const NOT_SIMPLE = new Set([
  'content-length',
  'transfer-encoding',
  'expect',
  'upgrade',
  'range',
  'if-range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'trailer',
  'te',
]);
/** The lengths of the names looked at: any other field is passed over without a copy of its name. */
const LOOKED_AT = new Set([...NOT_SIMPLE, 'host', 'accept-encoding', 'connection'].map((n) => n.length));

/** Scans the request head at the start of `bytes` (from `start`). */
export function scanSimpleHead(bytes: Buffer, start = 0): HeadScan {
  // Most heads are a few hundred bytes: the first KiB is read first, so that each of many
  // requests pipelined in one read costs its own length, not the limit's.
  const limit = Math.min(bytes.length, start + SIMPLE_HEAD_MAX);
  let text = bytes.toString('latin1', start, Math.min(limit, start + 1024));
  let end = text.indexOf('\r\n\r\n');
  if (end === -1 && limit > start + 1024) {
    text = bytes.toString('latin1', start, limit);
    end = text.indexOf('\r\n\r\n');
  }
  if (end === -1) return limit - start >= SIMPLE_HEAD_MAX ? OTHER : INCOMPLETE;
  const lineEnd = text.indexOf('\r\n');
  const line = REQUEST_LINE.exec(text.slice(0, lineEnd));
  if (!line) return OTHER;
  // The field lines, each with its CRLF.
  const fields = text.slice(lineEnd + 2, end + 2);
  if (!FIELD_LINES.test(fields)) return OTHER;
  let hosts = 0;
  let acceptEncoding: string | undefined;
  for (let at = 0; at < fields.length; ) {
    const colon = fields.indexOf(':', at);
    const next = fields.indexOf('\r\n', colon) + 2;
    if (LOOKED_AT.has(colon - at)) {
      const name = fields.slice(at, colon).toLowerCase();
      const value = () => fields.slice(colon + 1, next - 2).replace(OWS, '');
      if (name === 'host') hosts++;
      else if (name === 'accept-encoding') {
        if (acceptEncoding !== undefined) return OTHER;
        acceptEncoding = value();
      } else if (name === 'connection') {
        if (value().toLowerCase() !== 'keep-alive') return OTHER;
      } else if (NOT_SIMPLE.has(name)) return OTHER;
    }
    at = next;
  }
  // HTTP/1.1 asks for exactly one Host (RFC 9112 section 3.2); node:http answers the rest with 400.
  if (hosts !== 1) return OTHER;
  return {
    kind: 'simple',
    request: { method: line[1] as 'GET' | 'HEAD', target: line[2], acceptEncoding },
    length: end + 4,
  };
}
