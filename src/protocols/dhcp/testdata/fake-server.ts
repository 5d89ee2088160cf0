// A scripted DHCP server for client.test.ts, for the answers dnsmasq will not give: a NAK to the
// client's own REQUEST, an ACK with a 7-byte DNS option, an ACK without a router, several
// routers, and options spread over option-overload fields. It runs alone in its own network
// namespace (one interface, 10.79.0.1/24), answers to the subnet broadcast (it has no route for
// 255.255.255.255), and prints every client message it gets as a JSON line for the test to check.
import dgram from 'node:dgram';
import { MessageType, Opt, decodeDhcpPacket, encodeDhcpPacket, messageType, parseIp, type DhcpPacket } from '../packet.ts';

const scenario = process.argv[2] as 'nak-baddns-norouter' | 'rich';
const SERVER = '10.79.0.1';
const OFFERED = '10.79.0.50';
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
let requests = 0;

const ips = (...a: string[]) => Buffer.concat(a.map(parseIp));
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

function reply(req: DhcpPacket, type: number, options: [number, Buffer][], patch?: (b: Buffer) => void): void {
  const b = encodeDhcpPacket({
    op: 2, xid: req.xid, chaddr: req.chaddr.subarray(0, req.hlen), yiaddr: type === MessageType.NAK ? '0.0.0.0' : OFFERED,
    options: new Map([[Opt.MESSAGE_TYPE, Buffer.from([type])], [Opt.SERVER_ID, parseIp(SERVER)], ...options]),
  });
  patch?.(b);
  sock.send(b, 68, '10.79.0.255');
}

const lease: [number, Buffer][] = [[Opt.SUBNET_MASK, ips('255.255.255.0')], [Opt.LEASE_TIME, u32(600)]];

sock.on('message', (msg) => {
  let p: DhcpPacket;
  try {
    p = decodeDhcpPacket(msg);
  } catch {
    return;
  }
  const type = messageType(p);
  const options = Object.fromEntries([...p.options].map(([k, v]) => [k, v.toString('hex')]));
  console.log(JSON.stringify({ type, xid: p.xid, secs: p.secs, flags: p.flags, options }));
  if (type === MessageType.DISCOVER) reply(p, MessageType.OFFER, [...lease, [Opt.ROUTER, ips(SERVER)]]);
  if (type !== MessageType.REQUEST) return;
  requests++;
  if (scenario === 'nak-baddns-norouter') {
    if (requests === 1) reply(p, MessageType.NAK, [[Opt.MESSAGE, Buffer.from('address not available')]]);
    else if (requests === 2) reply(p, MessageType.ACK, [...lease, [Opt.ROUTER, ips(SERVER)], [Opt.DNS_SERVERS, Buffer.from([10, 79, 0, 53, 10, 79, 0])]]);
    else reply(p, MessageType.ACK, [...lease, [Opt.DNS_SERVERS, ips('10.79.0.53')]]);
  } else {
    // Three routers; the domain name split between the options field and the file field (RFC
    // 3396), the boot file only in the file field, which option 52 declares as holding options.
    reply(p, MessageType.ACK, [
      ...lease, [Opt.ROUTER, ips('10.79.0.1', '10.79.0.2', '10.79.0.3')], [Opt.DNS_SERVERS, ips('10.79.0.53', '10.79.0.54')],
      [Opt.OVERLOAD, Buffer.from([1])], [Opt.DOMAIN_NAME, Buffer.from('fake')], [Opt.TFTP_SERVER_NAME, Buffer.from('tftp.fake.test')],
    ], (b) => Buffer.concat([Buffer.from([15, 5]), Buffer.from('.test'), Buffer.from([67, 11]), Buffer.from('grubx64.efi'), Buffer.from([255])]).copy(b, 108));
  }
});
sock.bind(67, () => {
  sock.setBroadcast(true);
  console.log(JSON.stringify({ ready: true }));
});
process.on('SIGTERM', () => {
  sock.close();
  process.exit(0);
});
