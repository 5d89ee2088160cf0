// BOOTP/DHCP wire format (RFC 951, RFC 2131, RFC 2132, RFC 3396), shared by Cradle's DHCP client
// (the netbooted installer) and its DHCP server. Decoding runs on whatever arrives on UDP port
// 67/68, so it validates every length and throws DhcpPacketError, never reads out of bounds.
// The typed option readers throw DhcpPacketError too: a reply whose option 6 is 7 bytes long is
// malformed, and the caller decides whether that rejects the whole packet (the client does).

export class DhcpPacketError extends Error {
  override name = 'DhcpPacketError';
}

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
/** Fixed BOOTP header (236 bytes) plus the magic cookie: the smallest DHCP packet. */
export const HEADER_SIZE = 240;
/** RFC 1542: BOOTP relays may drop shorter packets, so encoded packets are padded to this. */
export const MIN_PACKET_SIZE = 300;

/** Option 53 values (RFC 2132 9.6). */
export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export const messageTypeNames = new Map<number, string>(Object.entries(MessageType).map(([k, v]) => [v, k]));

/** The option codes Cradle reads or writes. */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  INTERFACE_MTU: 26,
  BROADCAST: 28,
  NTP_SERVERS: 42,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  DOMAIN_SEARCH: 119,
  CLASSLESS_ROUTES: 121,
  END: 255,
} as const;

// Names for logs and for the packet log's `option.<code>_<name>` files, so kebab-case and
// file-name safe (RFC 2132 and the IANA BOOTP/DHCP parameter registry).
const names: [number, string][] = [
  [0, 'pad'],
  [1, 'subnet-mask'],
  [2, 'time-offset'],
  [3, 'router'],
  [4, 'time-server'],
  [5, 'name-server'],
  [6, 'domain-name-servers'],
  [7, 'log-server'],
  [8, 'cookie-server'],
  [9, 'lpr-server'],
  [10, 'impress-server'],
  [11, 'resource-location-server'],
  [12, 'hostname'],
  [13, 'boot-file-size'],
  [14, 'merit-dump-file'],
  [15, 'domain-name'],
  [16, 'swap-server'],
  [17, 'root-path'],
  [18, 'extensions-path'],
  [19, 'ip-forwarding'],
  [20, 'non-local-source-routing'],
  [21, 'policy-filter'],
  [22, 'max-datagram-reassembly'],
  [23, 'default-ip-ttl'],
  [24, 'path-mtu-aging-timeout'],
  [25, 'path-mtu-plateau-table'],
  [26, 'interface-mtu'],
  [27, 'all-subnets-local'],
  [28, 'broadcast-address'],
  [29, 'perform-mask-discovery'],
  [30, 'mask-supplier'],
  [31, 'router-discovery'],
  [32, 'router-solicitation-address'],
  [33, 'static-routes'],
  [34, 'trailer-encapsulation'],
  [35, 'arp-cache-timeout'],
  [36, 'ethernet-encapsulation'],
  [37, 'default-tcp-ttl'],
  [38, 'tcp-keepalive-interval'],
  [39, 'tcp-keepalive-garbage'],
  [40, 'nis-domain'],
  [41, 'nis-servers'],
  [42, 'ntp-servers'],
  [43, 'vendor-specific'],
  [44, 'netbios-name-servers'],
  [45, 'netbios-dd-server'],
  [46, 'netbios-node-type'],
  [47, 'netbios-scope'],
  [48, 'font-servers'],
  [49, 'x-display-manager'],
  [50, 'requested-ip-address'],
  [51, 'lease-time'],
  [52, 'option-overload'],
  [53, 'message-type'],
  [54, 'server-identifier'],
  [55, 'parameter-request-list'],
  [56, 'message'],
  [57, 'max-message-size'],
  [58, 'renewal-time'],
  [59, 'rebinding-time'],
  [60, 'vendor-class'],
  [61, 'client-identifier'],
  [64, 'nisplus-domain'],
  [65, 'nisplus-servers'],
  [66, 'tftp-server-name'],
  [67, 'bootfile-name'],
  [68, 'mobile-ip-home-agent'],
  [69, 'smtp-server'],
  [70, 'pop3-server'],
  [71, 'nntp-server'],
  [72, 'www-server'],
  [73, 'finger-server'],
  [74, 'irc-server'],
  [77, 'user-class'],
  [80, 'rapid-commit'],
  [81, 'client-fqdn'],
  [82, 'relay-agent-information'],
  [93, 'client-architecture'],
  [94, 'client-network-interface'],
  [97, 'client-machine-id'],
  [114, 'captive-portal'],
  [116, 'auto-configure'],
  [118, 'subnet-selection'],
  [119, 'domain-search'],
  [121, 'classless-static-routes'],
  [150, 'tftp-server-address'],
  [175, 'etherboot'],
  [209, 'pxelinux-configfile'],
  [210, 'pxelinux-pathprefix'],
  [211, 'pxelinux-reboottime'],
  [249, 'ms-classless-static-routes'],
  [252, 'wpad'],
  [255, 'end'],
];
export const optionNames = new Map<number, string>(names);
export const optionName = (code: number): string => optionNames.get(code) ?? 'unknown';

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The whole 16-byte field; the hardware address is its first `hlen` bytes. */
  chaddr: Buffer;
  /** '' when empty or when the field carried options (overload, option 52). */
  sname: string;
  file: string;
  /** Code → value in first-appearance order; a code's instances are concatenated (RFC 3396). */
  options: Map<number, Buffer>;
}

/** What encodeDhcpPacket needs: everything but op, xid and chaddr defaults to zero/empty. */
export type DhcpPacketInit = Partial<Omit<DhcpPacket, 'chaddr'>> & {
  op: number;
  xid: number;
  /** A MAC as 'aa:bb:cc:dd:ee:ff', or raw hardware-address bytes (at most 16). */
  chaddr: string | Buffer;
};

/** Each byte's two hex digits: formatMac runs for every packet the server receives. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A dotted-quad IPv4 address as an unsigned integer: four decimal parts of 0 to 255, no leading
 * zeros. Parsed by hand, without a regular expression or a Buffer: the policy compares addresses
 * several times for every request.
 */
export function ipv4ToInt(ip: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46; // the end closes the last part like a dot
    if (c === 46) {
      if (digits === 0 || part > 255 || ++parts > 4) break;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && !(digits === 1 && part === 0) && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else {
      parts = 5; // not a digit, or a leading zero, or a fourth digit
      break;
    }
  }
  if (parts !== 4) throw new DhcpPacketError(`'${ip}' is not an IPv4 address`);
  return n;
}

export function parseIp(ip: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(ipv4ToInt(ip));
  return b;
}

export const formatIp = (b: Buffer, off = 0): string => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

export function parseMac(mac: string): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new DhcpPacketError(`'${mac}' is not a MAC address`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export const formatMac = (b: Buffer): string => {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (i ? ':' : '') + HEX[b[i]];
  return s;
};

function putString(out: Buffer, off: number, size: number, value: string, field: string): void {
  const bytes = Buffer.from(value, 'utf8');
  // The fields are NUL-terminated in practice (PXE ROMs read them as C strings): keep one NUL.
  if (bytes.length >= size) throw new DhcpPacketError(`${field} '${value}' is longer than ${size - 1} bytes`);
  bytes.copy(out, off);
}

/**
 * Encodes a packet. Options go out in the Map's order, each value longer than 255 bytes split into
 * several instances of its code (RFC 3396), then END, then padding up to MIN_PACKET_SIZE. The
 * encoder never uses option overload: Cradle's messages are small.
 */
export function encodeDhcpPacket(p: DhcpPacketInit): Buffer {
  const hw = typeof p.chaddr === 'string' ? parseMac(p.chaddr) : p.chaddr;
  if (hw.length > 16) throw new DhcpPacketError(`chaddr is ${hw.length} bytes, the field holds 16`);
  const opts: Buffer[] = [];
  for (const [code, value] of p.options ?? []) {
    if (!Number.isInteger(code) || code <= 0 || code >= 255)
      throw new DhcpPacketError(`option code ${code} cannot carry data`);
    let off = 0;
    do {
      const chunk = value.subarray(off, off + 255);
      opts.push(Buffer.from([code, chunk.length]), chunk);
      off += 255;
    } while (off < value.length);
  }
  opts.push(Buffer.from([Opt.END]));
  const body = Buffer.concat(opts);
  const out = Buffer.alloc(Math.max(MIN_PACKET_SIZE, HEADER_SIZE + body.length));
  out[0] = p.op;
  out[1] = p.htype ?? 1; // Ethernet
  out[2] = p.hlen ?? hw.length;
  out[3] = p.hops ?? 0;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs ?? 0, 8);
  out.writeUInt16BE(p.flags ?? 0, 10);
  parseIp(p.ciaddr ?? '0.0.0.0').copy(out, 12);
  parseIp(p.yiaddr ?? '0.0.0.0').copy(out, 16);
  parseIp(p.siaddr ?? '0.0.0.0').copy(out, 20);
  parseIp(p.giaddr ?? '0.0.0.0').copy(out, 24);
  hw.copy(out, 28);
  putString(out, 44, 64, p.sname ?? '', 'sname');
  putString(out, 108, 128, p.file ?? '', 'file');
  out.writeUInt32BE(MAGIC_COOKIE, 236);
  body.copy(out, HEADER_SIZE);
  return out;
}

/** Splits one option area into (code, value) instances. `where` names the area in errors. */
function scanOptions(buf: Buffer, start: number, end: number, where: string, into: [number, Buffer][]): void {
  let i = start;
  while (i < end) {
    const code = buf[i];
    if (code === Opt.END) return;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (i + 1 >= end) throw new DhcpPacketError(`option ${code} at ${where} offset ${i - start} has no length byte`);
    const len = buf[i + 1];
    if (i + 2 + len > end) {
      throw new DhcpPacketError(
        `option ${code} (${optionName(code)}) at ${where} offset ${i - start} claims ${len} bytes but only ${end - i - 2} remain`,
      );
    }
    into.push([code, buf.subarray(i + 2, i + 2 + len)]);
    i += 2 + len;
  }
  // No END before the area's end: tolerated (some servers omit it); a cut inside an option is
  // caught above by the length check.
}

const cString = (b: Buffer): string => {
  if (b[0] === 0) return ''; // sname and file are empty in nearly every request
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
};

export function decodeDhcpPacket(buf: Buffer): DhcpPacket {
  if (buf.length < HEADER_SIZE) {
    throw new DhcpPacketError(
      `short packet: ${buf.length} bytes, a DHCP packet has at least ${HEADER_SIZE} (BOOTP header and magic cookie)`,
    );
  }
  const cookie = buf.readUInt32BE(236);
  if (cookie !== MAGIC_COOKIE) {
    throw new DhcpPacketError(
      `bad magic cookie 0x${cookie.toString(16).padStart(8, '0')} (want 0x63825363): not a DHCP packet`,
    );
  }
  const op = buf[0];
  if (op !== BOOTREQUEST && op !== BOOTREPLY)
    throw new DhcpPacketError(`bad op ${op} (want 1 BOOTREQUEST or 2 BOOTREPLY)`);
  const hlen = buf[2];
  if (hlen > 16) throw new DhcpPacketError(`hlen ${hlen} is more than the 16-byte chaddr field`);

  const found: [number, Buffer][] = [];
  scanOptions(buf, HEADER_SIZE, buf.length, 'options field', found);
  // Option 52 says the file and/or sname fields hold more options; RFC 3396 orders the areas
  // options, file, sname when concatenating.
  const overloadParts = found.filter(([c]) => c === Opt.OVERLOAD).map(([, v]) => v);
  let overload = 0;
  if (overloadParts.length > 0) {
    const v = Buffer.concat(overloadParts);
    if (v.length !== 1 || v[0] < 1 || v[0] > 3) {
      throw new DhcpPacketError(
        `option 52 (option-overload) must be one byte of 1, 2 or 3, got 0x${v.toString('hex')}`,
      );
    }
    overload = v[0];
    if (overload & 1) scanOptions(buf, 108, 236, 'file field', found);
    if (overload & 2) scanOptions(buf, 44, 108, 'sname field', found);
  }

  const options = new Map<number, Buffer[]>();
  for (const [code, value] of found) {
    const list = options.get(code);
    if (list) list.push(value);
    else options.set(code, [value]);
  }
  return {
    op,
    htype: buf[1],
    hlen,
    hops: buf[3],
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: formatIp(buf, 12),
    yiaddr: formatIp(buf, 16),
    siaddr: formatIp(buf, 20),
    giaddr: formatIp(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname: overload & 2 ? '' : cString(buf.subarray(44, 108)),
    file: overload & 1 ? '' : cString(buf.subarray(108, 236)),
    options: new Map([...options].map(([code, parts]) => [code, Buffer.concat(parts)])),
  };
}

/** The hardware address the packet names (the first hlen bytes of chaddr). */
export const hardwareAddress = (p: DhcpPacket): Buffer => p.chaddr.subarray(0, p.hlen);

// Typed option readers: undefined when the option is absent, DhcpPacketError when its length
// is wrong for its type.
type Options = Map<number, Buffer>;
const label = (code: number) => `option ${code} (${optionName(code)})`;

function fixed(opts: Options, code: number, size: number): Buffer | undefined {
  const v = opts.get(code);
  if (v && v.length !== size) throw new DhcpPacketError(`${label(code)} has ${v.length} bytes, want ${size}`);
  return v;
}

/** One IPv4 address: subnet mask (1), broadcast (28), server id (54), requested address (50). */
export function optionIp(opts: Options, code: number): string | undefined {
  const v = fixed(opts, code, 4);
  return v && formatIp(v);
}

/** A list of IPv4 addresses: routers (3), DNS (6), NTP (42)... */
export function optionIpList(opts: Options, code: number): string[] {
  const v = opts.get(code);
  if (!v) return [];
  if (v.length % 4 !== 0) throw new DhcpPacketError(`${label(code)} has ${v.length} bytes, not a multiple of 4`);
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(formatIp(v, i));
  return out;
}

/**
 * A text option: hostname (12), domain (15), vendor class (60), TFTP server name (66), boot file
 * (67). Trailing NULs are dropped: some servers send C strings. '' counts as absent.
 */
export function optionString(opts: Options, code: number): string | undefined {
  const v = opts.get(code);
  if (!v) return undefined;
  let end = v.length;
  while (end > 0 && v[end - 1] === 0) end--;
  return end === 0 ? undefined : v.subarray(0, end).toString('utf8');
}

export function optionU8(opts: Options, code: number): number | undefined {
  return fixed(opts, code, 1)?.[0];
}

export function optionU16(opts: Options, code: number): number | undefined {
  return fixed(opts, code, 2)?.readUInt16BE(0);
}

/** A 32-bit count: lease (51), renewal (58) and rebinding (59) times in seconds. */
export function optionU32(opts: Options, code: number): number | undefined {
  return fixed(opts, code, 4)?.readUInt32BE(0);
}

/** Option 53; undefined for a plain BOOTP packet. */
export function messageType(p: DhcpPacket): number | undefined {
  return optionU8(p.options, Opt.MESSAGE_TYPE);
}

export const messageTypeName = (t: number | undefined): string =>
  t === undefined ? 'BOOTP' : (messageTypeNames.get(t) ?? `type-${t}`);
