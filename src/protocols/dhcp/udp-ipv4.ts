// IPv4 and UDP headers around a DHCP message, built and checked by hand: a packet socket
// (system/packet-socket.ts) carries whole IPv4 packets, below the kernel's UDP.
import { formatIp, parseIp } from './packet.ts';

/** The ones'-complement sum of 16-bit words (RFC 1071), folded to 16 bits. */
function sum16(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
const checksum = (buf: Buffer, initial = 0): number => ~sum16(buf, initial) & 0xffff;

export interface UdpDatagram {
  source: string;
  destination: string;
  sourcePort: number;
  destinationPort: number;
  payload: Buffer;
}

/** IPv4 + UDP headers around `payload`, both checksums filled in. */
export function encodeUdpIpv4(d: UdpDatagram): Buffer {
  const udpLen = 8 + d.payload.length;
  const out = Buffer.alloc(20 + udpLen);
  out[0] = 0x45; // version 4, 5-word header
  out.writeUInt16BE(20 + udpLen, 2);
  out[8] = 64; // TTL
  out[9] = 17; // UDP
  parseIp(d.source).copy(out, 12);
  parseIp(d.destination).copy(out, 16);
  out.writeUInt16BE(checksum(out.subarray(0, 20)), 10);
  out.writeUInt16BE(d.sourcePort, 20);
  out.writeUInt16BE(d.destinationPort, 22);
  out.writeUInt16BE(udpLen, 24);
  d.payload.copy(out, 28);
  const pseudo = Buffer.alloc(12);
  out.copy(pseudo, 0, 12, 20);
  pseudo[9] = 17;
  pseudo.writeUInt16BE(udpLen, 10);
  const sum = checksum(out.subarray(20), sum16(pseudo));
  out.writeUInt16BE(sum === 0 ? 0xffff : sum, 26);
  return out;
}

/**
 * Strips IPv4 + UDP headers, or says why the packet is not a whole UDP datagram. The UDP checksum
 * is not verified: on veth and virtio links a locally sent packet arrives with the checksum left
 * to offload (CHECKSUM_PARTIAL), and checking it is the classic dhclient-in-a-VM bug. The IPv4
 * header checksum is always computed in software, so that one is checked.
 */
export function decodeUdpIpv4(buf: Buffer): UdpDatagram | string {
  if (buf.length < 28) return `${buf.length} bytes is too short for IPv4 + UDP`;
  if (buf[0] >> 4 !== 4) return `IP version ${buf[0] >> 4}`;
  const ihl = (buf[0] & 0xf) * 4;
  const total = buf.readUInt16BE(2);
  if (ihl < 20 || total < ihl + 8 || total > buf.length)
    return `bad IPv4 lengths (header ${ihl}, total ${total}, got ${buf.length})`;
  if (checksum(buf.subarray(0, ihl)) !== 0) return 'bad IPv4 header checksum';
  if (buf[9] !== 17) return `IP protocol ${buf[9]}, not UDP`;
  if (buf.readUInt16BE(6) & 0x3fff) return 'IPv4 fragment';
  const udpLen = buf.readUInt16BE(ihl + 4);
  if (udpLen < 8 || ihl + udpLen > total) return `bad UDP length ${udpLen}`;
  return {
    source: formatIp(buf, 12),
    destination: formatIp(buf, 16),
    sourcePort: buf.readUInt16BE(ihl),
    destinationPort: buf.readUInt16BE(ihl + 2),
    payload: Buffer.from(buf.subarray(ihl + 8, ihl + udpLen)),
  };
}
