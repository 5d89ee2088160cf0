// A scriptable DHCP client for server.test.ts, run in a client namespace with `ip netns exec`.
// Argument: JSON (or '-' to read it from stdin), one of
//   {mode:'exchange', iface, discover: hex, waitMs, gatherMs, serverId?}  DISCOVER, gather OFFERs,
//       REQUEST the one from serverId (else the first with an address), print OFFERs and the answer
//   {mode:'send', iface, packets: hex[], frames?: hex[], listenMs, batch?}  broadcast DHCP payloads
//       (and raw IPv4 frames), print every reply to port 68 seen until listenMs after the last
//   {mode:'udp', bindPort, to, port, packets: hex[], listenMs}  the same over a UDP socket (relay, 4011)
// Prints one JSON line. Packets are built by the test (packet.ts); this only moves bytes.
import dgram from 'node:dgram';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { MessageType, Opt, decodeDhcpPacket, encodeDhcpPacket, messageType, optionIp, parseIp } from '../../../protocols/dhcp/packet.ts';
import { BROADCAST_MAC, PacketSender, openDhcpSocket, type DhcpSocket } from '../../../protocols/dhcp/socket.ts';

type Args =
  | { mode: 'exchange'; iface: string; discover: string; waitMs: number; gatherMs: number; serverId?: string }
  | { mode: 'send'; iface: string; packets: string[]; frames?: string[]; listenMs: number; batch?: number }
  | { mode: 'udp'; bindPort: number; to: string; port: number; packets: string[]; listenMs: number };
// '-': the arguments come on stdin (a corpus of packets is too long for a command line).
const args = JSON.parse(process.argv[2] === '-' ? fs.readFileSync(0, 'utf8') : process.argv[2]) as Args;

export interface Summary {
  type?: number;
  xid: number;
  yiaddr: string;
  siaddr: string;
  ciaddr: string;
  giaddr: string;
  flags: number;
  file: string;
  options: Record<string, string>;
  from: string;
  to: string;
}

function summary(payload: Buffer, from: string, to: string): Summary | { undecodable: string } {
  try {
    const p = decodeDhcpPacket(payload);
    const options = Object.fromEntries([...p.options].map(([k, v]) => [k, v.toString('hex')]));
    return { type: messageType(p), xid: p.xid, yiaddr: p.yiaddr, siaddr: p.siaddr, ciaddr: p.ciaddr, giaddr: p.giaddr, flags: p.flags, file: p.file, options, from, to };
  } catch (err) {
    return { undecodable: (err as Error).message };
  }
}

/** Replies to `xid` (any xid when undefined) until `ms` passes. */
async function collect(sock: DhcpSocket, ms: number, xid?: number, stopAfterFirst = false): Promise<(Summary | { undecodable: string })[]> {
  const got: (Summary | { undecodable: string })[] = [];
  const deadline = performance.now() + ms;
  for (let left = ms; left > 0; left = deadline - performance.now()) {
    const d = await sock.receive(left);
    if (!d) break;
    if (xid !== undefined && (d.payload.length < 8 || d.payload.readUInt32BE(4) !== xid)) continue;
    got.push(summary(d.payload, d.source, d.destination));
    if (stopAfterFirst) break;
  }
  return got;
}

if (args.mode === 'exchange') {
  using sock = openDhcpSocket(args.iface);
  const discover = Buffer.from(args.discover, 'hex');
  const xid = discover.readUInt32BE(4);
  sock.send(discover);
  const offers = (await collect(sock, args.waitMs, xid, true)) as Summary[];
  if (offers.length) offers.push(...((await collect(sock, args.gatherMs, xid)) as Summary[]));
  const chosen = offers.find((o) => o.type === MessageType.OFFER && o.yiaddr !== '0.0.0.0' && (!args.serverId || o.options['54'] === parseIp(args.serverId).toString('hex')));
  let answer: Summary | undefined;
  if (chosen) {
    const d = decodeDhcpPacket(discover);
    const options = new Map(d.options);
    options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST]));
    options.set(Opt.REQUESTED_IP, parseIp(chosen.yiaddr));
    options.set(Opt.SERVER_ID, Buffer.from(chosen.options['54'], 'hex'));
    sock.send(encodeDhcpPacket({ ...d, chaddr: d.chaddr.subarray(0, d.hlen), options }));
    const acks = (await collect(sock, args.waitMs, xid)) as Summary[];
    answer = acks.find((a) => a.type === MessageType.ACK || a.type === MessageType.NAK);
  }
  console.log(JSON.stringify({ offers, answer, serverOfChosen: chosen && optionIp(new Map([[54, Buffer.from(chosen.options['54'], 'hex')]]), 54) }));
} else if (args.mode === 'send') {
  using sock = openDhcpSocket(args.iface);
  using raw = new PacketSender(args.iface);
  const batch = args.batch ?? 50;
  const replies: unknown[] = [];
  let n = 0;
  for (const hex of args.packets) {
    sock.send(Buffer.from(hex, 'hex'));
    // Paced, so the server's socket queue never overflows and every packet is really seen.
    if (++n % batch === 0) replies.push(...(await collect(sock, 20)));
  }
  for (const hex of args.frames ?? []) raw.sendFrame(Buffer.from(hex, 'hex'), BROADCAST_MAC);
  replies.push(...(await collect(sock, args.listenMs)));
  console.log(JSON.stringify({ sent: n + (args.frames?.length ?? 0), replies }));
} else {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const replies: unknown[] = [];
  sock.on('message', (msg, rinfo) => replies.push(summary(msg, rinfo.address, '')));
  await new Promise<void>((r) => sock.bind(args.bindPort, '0.0.0.0', () => r()));
  for (const hex of args.packets) {
    await new Promise<void>((r, j) => sock.send(Buffer.from(hex, 'hex'), args.port, args.to, (e) => (e ? j(e) : r())));
    await sleep(2);
  }
  await sleep(args.listenMs);
  sock.close();
  console.log(JSON.stringify({ sent: args.packets.length, replies }));
}
