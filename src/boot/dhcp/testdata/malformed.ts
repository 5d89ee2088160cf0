// Malformed DHCP requests for the server's robustness test: a hand-made corpus plus seeded random
// mutations of a valid request (reproducible: same seed, same packets). Two kinds come back:
// `undecodable` (the codec rejects them: the server must count and drop them) and `unanswerable`
// (they decode, but no server may answer them: a BOOTREPLY, not Ethernet, no message type, a
// server's message type, too many hops, a group or zero MAC, a broken option 53).
import { decodeDhcpPacket } from '../../../protocols/dhcp/packet.ts';

/** mulberry32: a tiny seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const decodes = (b: Buffer) => {
  try {
    decodeDhcpPacket(b);
    return true;
  } catch {
    return false;
  }
};

/** Offset of the option `code` in the options area of an encoded packet, or -1. */
function optionAt(b: Buffer, code: number): number {
  for (let i = 240; i < b.length && b[i] !== 255; i += b[i] === 0 ? 1 : 2 + b[i + 1]) if (b[i] === code) return i;
  return -1;
}

export function mutations(valid: Buffer, count: number, seed: number): { undecodable: Buffer[]; unanswerable: Buffer[] } {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const patch = (f: (b: Buffer) => void) => {
    const b = Buffer.from(valid);
    f(b);
    return b;
  };
  const end = optionAt(valid, 255) >= 0 ? valid.indexOf(255, 240) : valid.length;
  const corpus: Buffer[] = [
    Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(239), valid.subarray(0, 236), valid.subarray(0, 239),
    Buffer.alloc(300, 0xff), Buffer.alloc(300), Buffer.alloc(1400, 0x35),
    patch((b) => b.writeUInt32BE(0x63825364, 236)), // cookie
    patch((b) => (b[0] = 0)), patch((b) => (b[0] = 3)), patch((b) => (b[0] = 255)), // op
    patch((b) => (b[2] = 17)), patch((b) => (b[2] = 255)), // hlen
    patch((b) => (b[241] = 255)), // the first option's length runs past the end
    patch((b) => (b[end - 1] = 200)), // the last option's length runs past the end
    Buffer.concat([valid.subarray(0, 240), Buffer.from([53, 1, 1, 52, 1, 1])]).fill(0x2a, 108, 236), // overload: file field holds a cut option
    Buffer.concat([valid.subarray(0, 240), Buffer.from([52, 1, 9, 53, 1, 1, 255])]), // overload value 9
    Buffer.concat([valid.subarray(0, 240), Buffer.from([52, 2, 1, 1])]), // overload two bytes long
    Buffer.concat([valid.subarray(0, 240), Buffer.from([53])]), // no length byte
  ];
  const undecodable = corpus.filter((b) => !decodes(b));
  for (let tries = 0; undecodable.length < count && tries < count * 50; tries++) {
    const kind = int(4);
    let b: Buffer;
    if (kind === 0) b = Buffer.from(Array.from({ length: int(700) }, () => int(256))); // noise
    else if (kind === 1) b = Buffer.from(valid.subarray(0, 240 + int(end - 240))); // cut inside the options
    else {
      b = Buffer.from(valid);
      // Flip bytes where they matter most: the option lengths and the cookie/op/hlen.
      for (let n = 1 + int(4); n > 0; n--) b[kind === 2 ? 240 + int(end - 240) : [0, 2, 236, 237, 238, 239][int(6)]] = int(256);
    }
    if (!decodes(b)) undecodable.push(b);
  }
  const unanswerable = [
    patch((b) => (b[0] = 2)), patch((b) => (b[1] = 6)), patch((b) => (b[2] = 4)), patch((b) => (b[2] = 16)),
    patch((b) => (b[3] = 17)), patch((b) => b.fill(0, 28, 34)), patch((b) => (b[28] |= 1)),
    ...[2, 5, 6, 9, 0, 255].map((t) => patch((b) => (b[optionAt(b, 53) + 2] = t))), // a server's or no known message type
    patch((b) => (b[optionAt(b, 53)] = 250)), // option 53 renamed: BOOTP
  ].filter(decodes);
  return { undecodable: undecodable.slice(0, count), unanswerable };
}
