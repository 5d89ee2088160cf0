// TFTP packet codec: RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR), RFC 2347 (options, OACK), with the
// option values of RFC 2348 (blksize), 2349 (timeout, tsize) and 7440 (windowsize) checked against
// their ranges. Decoding never throws: a datagram is untrusted input (a stray or hostile sender, a
// truncating middlebox), so anything that does not parse comes back as `malformed` with the reason,
// for the caller to count and drop. Encoding throws on input it cannot represent, since that is a
// bug in the caller, not the network.

export const OPCODE = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

/** Error codes of RFC 1350 and 2347. */
export const ERROR_CODE = {
  notDefined: 0,
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTransferId: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionRejected: 8,
} as const;

const ERROR_TEXT = [
  'error',
  'file not found',
  'access violation',
  'disk full or allocation exceeded',
  'illegal TFTP operation',
  'unknown transfer ID',
  'file already exists',
  'no such user',
  'option negotiation refused',
];

/** A short description of an error code, for messages. */
export function errorCodeText(code: number): string {
  return ERROR_TEXT[code] ?? `error code ${code}`;
}

/** Largest DATA payload RFC 2348 allows (65535 minus the IP and UDP headers and TFTP's 4 bytes). */
export const MAX_BLKSIZE = 65464;
export const MIN_BLKSIZE = 8;
export const DEFAULT_BLKSIZE = 512;
/** RFC 2347 keeps a request (options included) within the 512 octets every server accepts. */
export const MAX_REQUEST_BYTES = 512;

/**
 * The range of each option with a numeric value. Out-of-range values in an OACK make it malformed:
 * they cannot come from a server that implements the option, and acting on them (a block size of 0,
 * say) would wedge the transfer.
 */
const NUMERIC_OPTIONS: Record<string, { min: number; max: number }> = {
  blksize: { min: MIN_BLKSIZE, max: MAX_BLKSIZE },
  timeout: { min: 1, max: 255 },
  tsize: { min: 0, max: Number.MAX_SAFE_INTEGER },
  windowsize: { min: 1, max: 65535 },
};

/** Option names are case-insensitive (RFC 2347): they are lower-cased both ways. */
export type TftpOptions = Map<string, string>;

export type TftpPacket =
  | { op: 'rrq' | 'wrq'; file: string; mode: string; options: TftpOptions }
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: TftpOptions };

export type Decoded = TftpPacket | { op: 'malformed'; reason: string };

function malformed(reason: string): Decoded {
  return { op: 'malformed', reason };
}

function check16(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff)
    throw new RangeError(`TFTP ${what} ${n} is not a 16-bit unsigned integer`);
}

function cString(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.includes(0)) throw new RangeError(`TFTP ${what} ${JSON.stringify(s)} contains a NUL byte`);
  return Buffer.concat([b, Buffer.from([0])]);
}

function opcode(op: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(op);
  return b;
}

function optionStrings(options: Iterable<[string, string]>): Buffer[] {
  const out: Buffer[] = [];
  for (const [name, value] of options) {
    if (name === '') throw new RangeError('TFTP option with an empty name');
    out.push(cString(name.toLowerCase(), 'option name'), cString(value, `option ${name}`));
  }
  return out;
}

/** A read or write request; throws if a field holds a NUL or the packet would exceed 512 bytes. */
export function encodeRequest(
  op: 'rrq' | 'wrq',
  file: string,
  mode: string,
  options: Iterable<[string, string]> = [],
): Buffer {
  if (file === '') throw new RangeError('TFTP request for an empty file name');
  const packet = Buffer.concat([
    opcode(OPCODE[op]),
    cString(file, 'file name'),
    cString(mode, 'mode'),
    ...optionStrings(options),
  ]);
  if (packet.length > MAX_REQUEST_BYTES)
    throw new RangeError(
      `TFTP request for ${JSON.stringify(file)} is ${packet.length} bytes, over the ${MAX_REQUEST_BYTES} every server accepts`,
    );
  return packet;
}

export function encodeData(block: number, data: Uint8Array): Buffer {
  check16(block, 'block number');
  if (data.length > MAX_BLKSIZE) throw new RangeError(`TFTP DATA of ${data.length} bytes exceeds ${MAX_BLKSIZE}`);
  const head = Buffer.alloc(4);
  head.writeUInt16BE(OPCODE.data, 0);
  head.writeUInt16BE(block, 2);
  return Buffer.concat([head, data]);
}

export function encodeAck(block: number): Buffer {
  check16(block, 'block number');
  const b = Buffer.alloc(4);
  b.writeUInt16BE(OPCODE.ack, 0);
  b.writeUInt16BE(block, 2);
  return b;
}

/** The message is cut to keep the packet within 512 bytes, as servers and clients expect. */
export function encodeError(code: number, message: string): Buffer {
  check16(code, 'error code');
  let text = Buffer.from(message.replaceAll('\0', ' '), 'utf8');
  if (text.length > MAX_REQUEST_BYTES - 5) text = text.subarray(0, MAX_REQUEST_BYTES - 5);
  const head = Buffer.alloc(4);
  head.writeUInt16BE(OPCODE.error, 0);
  head.writeUInt16BE(code, 2);
  return Buffer.concat([head, text, Buffer.from([0])]);
}

export function encodeOack(options: Iterable<[string, string]>): Buffer {
  const strings = optionStrings(options);
  if (strings.length === 0) throw new RangeError('TFTP OACK without options');
  return Buffer.concat([opcode(OPCODE.oack), ...strings]);
}

/**
 * The NUL-terminated strings from `offset` on, or a reason why they are not. Every string must be
 * terminated: a missing final NUL is the sign of a truncated packet.
 */
function splitStrings(buf: Buffer, offset: number): string[] | string {
  const out: string[] = [];
  let at = offset;
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    if (end < 0) return 'a string is not NUL-terminated (truncated?)';
    out.push(buf.toString('utf8', at, end));
    at = end + 1;
  }
  return out;
}

/** Name/value pairs: names lower-cased, duplicates and bad numeric values refused. */
function parseOptions(strings: string[], checkValues: boolean): TftpOptions | string {
  if (strings.length % 2) return `option ${JSON.stringify(strings.at(-1))} has no value`;
  const options: TftpOptions = new Map();
  for (let i = 0; i < strings.length; i += 2) {
    const name = strings[i].toLowerCase();
    const value = strings[i + 1];
    if (name === '') return 'an option has an empty name';
    if (options.has(name)) return `option ${name} appears twice`;
    const range = NUMERIC_OPTIONS[name];
    if (checkValues && range) {
      // Digits only: Number() would also take "0x10", " 8" or "1e3".
      if (!/^[0-9]{1,16}$/.test(value))
        return `option ${name} has a non-numeric value ${JSON.stringify(value.slice(0, 40))}`;
      const n = Number(value);
      if (n < range.min || n > range.max) return `option ${name} value ${n} is outside ${range.min}..${range.max}`;
    }
    options.set(name, value);
  }
  return options;
}

/**
 * Control characters and non-ASCII are replaced: a peer's text ends up in logs and terminals, and
 * is capped so a long message cannot flood them.
 */
function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}

export function decodePacket(buf: Buffer): Decoded {
  if (buf.length < 2) return malformed(`${buf.length}-byte datagram has no opcode`);
  const op = buf.readUInt16BE(0);
  switch (op) {
    case OPCODE.rrq:
    case OPCODE.wrq: {
      const strings = splitStrings(buf, 2);
      if (typeof strings === 'string') return malformed(`request: ${strings}`);
      if (strings.length < 2) return malformed('request without file name and mode');
      const [file, mode, ...rest] = strings;
      if (file === '') return malformed('request with an empty file name');
      if (mode === '') return malformed('request with an empty mode');
      // Values stay unchecked: RFC 2347 has a server ignore the options it cannot honour.
      const options = parseOptions(rest, false);
      if (typeof options === 'string') return malformed(`request: ${options}`);
      return { op: op === OPCODE.rrq ? 'rrq' : 'wrq', file, mode: mode.toLowerCase(), options };
    }
    case OPCODE.data:
      if (buf.length < 4) return malformed(`DATA of ${buf.length} bytes has no block number`);
      if (buf.length > 4 + MAX_BLKSIZE) return malformed(`DATA of ${buf.length} bytes exceeds the largest block size`);
      return { op: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case OPCODE.ack:
      if (buf.length !== 4) return malformed(`ACK of ${buf.length} bytes, not 4`);
      return { op: 'ack', block: buf.readUInt16BE(2) };
    case OPCODE.error: {
      if (buf.length < 4) return malformed(`ERROR of ${buf.length} bytes has no error code`);
      // A missing NUL after the message is tolerated: dropping a server's refusal over it would
      // turn a clear "file not found" into a vague timeout.
      const end = buf.indexOf(0, 4);
      return {
        op: 'error',
        code: buf.readUInt16BE(2),
        message: printable(buf.toString('utf8', 4, end < 0 ? buf.length : end)),
      };
    }
    case OPCODE.oack: {
      const strings = splitStrings(buf, 2);
      if (typeof strings === 'string') return malformed(`OACK: ${strings}`);
      // A server that accepts no option answers with DATA (RFC 2347), never with an empty OACK.
      if (strings.length === 0) return malformed('OACK without options');
      const options = parseOptions(strings, true);
      if (typeof options === 'string') return malformed(`OACK: ${options}`);
      return { op: 'oack', options };
    }
    default:
      return malformed(`unknown opcode ${op}`);
  }
}
