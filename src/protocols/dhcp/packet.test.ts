// The DHCP codec: exact bytes of our DISCOVER, round trips, RFC 3396 long options, option
// overload, the typed readers, and a corpus of malformed and mutated packets that must either
// decode or fail with DhcpPacketError (never a RangeError from reading past a Buffer).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildDiscover, buildRequest, leaseFromAck } from './client.ts';
import {
  DhcpPacketError,
  MessageType,
  Opt,
  decodeDhcpPacket,
  encodeDhcpPacket,
  messageType,
  optionIp,
  optionIpList,
  optionName,
  optionString,
  optionU16,
  optionU32,
  parseMac,
} from './packet.ts';
import { decodeUdpIpv4, encodeUdpIpv4 } from './udp-ipv4.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const mac = parseMac('52:54:00:12:34:56');

/** A valid 240-byte header (a BOOTREPLY) followed by the given option bytes. */
function withOptions(options: string, patch?: (b: Buffer) => void): Buffer {
  const b = Buffer.concat([encodeDhcpPacket({ op: 2, xid: 7, chaddr: mac }).subarray(0, 240), hex(options)]);
  patch?.(b);
  return b;
}

describe('encoding', () => {
  it('our DISCOVER, byte for byte', () => {
    const expected = hex(`
      01 01 06 00  01020304  0000 0000  00000000 00000000 00000000 00000000
      525400123456 00000000000000000000
      ${'00'.repeat(64)} ${'00'.repeat(128)}
      63825363
      35 01 01
      3d 07 01 525400123456
      39 02 05dc
      37 0f 01 03 06 0c 0f 1a 1c 2a 33 36 3a 3b 42 43 77
      3c 10 ${Buffer.from('Cradle-installer').toString('hex')}
      5d 02 0007
      0c 05 ${Buffer.from('node1').toString('hex')}
      ff`);
    assert.equal(
      buildDiscover(0x01020304, mac, 0, { hostname: 'node1', clientArch: 7 }).toString('hex'),
      expected.toString('hex'),
    );
  });

  it('pads short packets to the 300 bytes BOOTP relays expect, with zeros after END', () => {
    const b = buildDiscover(1, mac, 3, {});
    assert.equal(b.length, 300);
    assert.equal(b.readUInt16BE(8), 3);
    const end = b.indexOf(0xff, 240);
    assert.ok(b.subarray(end + 1).every((x) => x === 0));
  });

  it('the REQUEST names the offered address and the server, and keeps xid and secs', () => {
    const p = decodeDhcpPacket(buildRequest(9, mac, 4, { ip: '10.0.0.5', serverId: '10.0.0.1' }, {}));
    assert.equal(p.xid, 9);
    assert.equal(p.secs, 4);
    assert.equal(p.ciaddr, '0.0.0.0');
    assert.equal(messageType(p), MessageType.REQUEST);
    assert.equal(optionIp(p.options, Opt.REQUESTED_IP), '10.0.0.5');
    assert.equal(optionIp(p.options, Opt.SERVER_ID), '10.0.0.1');
    assert.equal(optionString(p.options, Opt.VENDOR_CLASS), 'Cradle-installer');
    assert.equal(optionU16(p.options, Opt.CLIENT_ARCH), 0);
    assert.deepEqual([...p.options.get(Opt.CLIENT_ID)!], [1, ...mac]);
  });

  it('refuses what cannot be encoded', () => {
    assert.throws(() => encodeDhcpPacket({ op: 1, xid: 1, chaddr: 'nope' }), DhcpPacketError);
    assert.throws(() => encodeDhcpPacket({ op: 1, xid: 1, chaddr: mac, sname: 'x'.repeat(64) }), /longer than 63/);
    assert.throws(
      () => encodeDhcpPacket({ op: 1, xid: 1, chaddr: mac, options: new Map([[255, Buffer.alloc(1)]]) }),
      DhcpPacketError,
    );
    assert.throws(() => encodeDhcpPacket({ op: 1, xid: 1, chaddr: mac, yiaddr: '10.0.0.256' }), /not an IPv4 address/);
  });
});

describe('decoding', () => {
  it('round-trips every field', () => {
    const init = {
      op: 2,
      htype: 1,
      hlen: 6,
      hops: 1,
      xid: 0xdeadbeef,
      secs: 12,
      flags: 0x8000,
      ciaddr: '0.0.0.0',
      yiaddr: '10.1.2.3',
      siaddr: '10.1.2.1',
      giaddr: '10.9.9.9',
      chaddr: mac,
      sname: 'boot-server',
      file: 'pxelinux.0',
      options: new Map([
        [Opt.MESSAGE_TYPE, Buffer.from([MessageType.ACK])],
        [Opt.ROUTER, hex('0a010201 0a010202')],
        [Opt.TFTP_SERVER_NAME, Buffer.from('tftp.example')],
        [80, Buffer.alloc(0)],
      ]),
    };
    const p = decodeDhcpPacket(encodeDhcpPacket(init));
    assert.deepEqual({ ...p, chaddr: p.chaddr.subarray(0, 6) }, { ...init, chaddr: Buffer.from(mac) });
    assert.deepEqual(optionIpList(p.options, Opt.ROUTER), ['10.1.2.1', '10.1.2.2']);
  });

  it('splits options over 255 bytes and concatenates them back (RFC 3396)', () => {
    const long = Buffer.from(Array.from({ length: 600 }, (_, i) => i & 0xff));
    const b = encodeDhcpPacket({
      op: 2,
      xid: 1,
      chaddr: mac,
      options: new Map([
        [43, long],
        [Opt.MESSAGE_TYPE, Buffer.from([5])],
      ]),
    });
    assert.deepEqual(
      [b[240], b[241], b[240 + 257], b[240 + 258], b[240 + 514], b[240 + 515]],
      [43, 255, 43, 255, 43, 90],
    );
    assert.deepEqual(decodeDhcpPacket(b).options.get(43), long);
  });

  it('reads options from file and sname when option 52 says so, in the order options, file, sname', () => {
    const b = withOptions('34 01 03  0c 02 6e 6f  ff');
    hex('0c 02 64 65  ff').copy(b, 108); // file field
    hex('0c 01 31  0f 04 74 65 73 74  ff').copy(b, 44); // sname field
    const p = decodeDhcpPacket(b);
    assert.equal(optionString(p.options, Opt.HOSTNAME), 'node1');
    assert.equal(optionString(p.options, Opt.DOMAIN_NAME), 'test');
    assert.equal(p.sname, '');
    assert.equal(p.file, '');
  });

  it('skips pads, stops at END, tolerates a missing END and trailing garbage after END', () => {
    assert.deepEqual([...decodeDhcpPacket(withOptions('00 00 35 01 05 ff 35 01 02 9a')).options.keys()], [53]);
    assert.equal(messageType(decodeDhcpPacket(withOptions('35 01 06'))), MessageType.NAK);
    assert.equal(messageType(decodeDhcpPacket(withOptions(''))), undefined);
  });

  it('typed readers check lengths', () => {
    const p = decodeDhcpPacket(
      withOptions('01 03 ffffff  06 07 0a000035 0a0000  33 04 00000e10  0c 06 6e6f6465 0000  ff'),
    );
    assert.throws(() => optionIp(p.options, 1), {
      name: 'DhcpPacketError',
      message: 'option 1 (subnet-mask) has 3 bytes, want 4',
    });
    assert.throws(
      () => optionIpList(p.options, 6),
      /option 6 \(domain-name-servers\) has 7 bytes, not a multiple of 4/,
    );
    assert.equal(optionU32(p.options, 51), 3600);
    assert.equal(optionString(p.options, 12), 'node'); // trailing NULs dropped
    assert.deepEqual(optionIpList(p.options, 3), []);
    assert.equal(optionName(66), 'tftp-server-name');
    assert.equal(optionName(224), 'unknown');
  });
});

describe('malformed packets', () => {
  const corpus: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /short packet: 0 bytes/],
    ['one byte short of the cookie', withOptions('').subarray(0, 239), /short packet: 239 bytes/],
    ['BOOTP without cookie', withOptions('', (b) => b.writeUInt32BE(0, 236)), /bad magic cookie 0x00000000/],
    ['bad op', withOptions('ff', (b) => (b[0] = 3)), /bad op 3/],
    ['hlen beyond chaddr', withOptions('ff', (b) => (b[2] = 17)), /hlen 17/],
    ['option without a length byte', withOptions('35'), /option 53 at options field offset 0 has no length byte/],
    [
      'option running past the end',
      withOptions('35 01 05 06 08 0a000001'),
      /option 6 \(domain-name-servers\) at options field offset 3 claims 8 bytes but only 4 remain/,
    ],
    ['bad overload value', withOptions('34 01 04 ff'), /option 52 .* got 0x04/],
    ['overload of two bytes', withOptions('34 02 01 01 ff'), /option 52/],
    [
      'file field option running past its end',
      withOptions('34 01 01 ff', (b) => hex('0c 7f 41').copy(b, 108)),
      /at file field offset 0 claims 127 bytes but only 126 remain/,
    ],
  ];
  for (const [what, buf, message] of corpus) {
    it(`rejects: ${what}`, () =>
      assert.throws(
        () => decodeDhcpPacket(buf),
        (e: Error) => e instanceof DhcpPacketError && message.test(e.message),
      ));
  }

  it('never crashes on truncations and random mutations of a real ACK', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
    const ack = encodeDhcpPacket({
      op: 2,
      xid: 5,
      chaddr: mac,
      yiaddr: '10.0.0.9',
      sname: 'srv',
      file: 'boot.efi',
      options: new Map([
        [53, Buffer.from([5])],
        [1, hex('ffffff00')],
        [3, hex('0a000001')],
        [6, hex('0a000002 0a000003')],
        [12, Buffer.from('n1')],
        [15, Buffer.from('x.test')],
        [51, hex('00000e10')],
        [54, hex('0a000001')],
        [66, Buffer.from('t')],
      ]),
    });
    const cases: Buffer[] = [];
    for (let len = 0; len <= ack.length; len++) cases.push(ack.subarray(0, len));
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(ack);
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
        const at = rand() < 0.8 ? 236 + Math.floor(rand() * (b.length - 236)) : Math.floor(rand() * b.length);
        b[at] = Math.floor(rand() * 256);
      }
      cases.push(rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b);
    }
    let decoded = 0;
    for (const b of cases) {
      try {
        const p = decodeDhcpPacket(b);
        decoded++;
        leaseFromAck({ name: 'eth0', mac: '52:54:00:12:34:56' }, p, b);
      } catch (err) {
        if (!(err instanceof DhcpPacketError)) throw new Error(`${(err as Error).stack}\ninput ${b.toString('hex')}`);
      }
    }
    assert.ok(
      decoded > 1000,
      `only ${decoded} of ${cases.length} decoded: the mutations are too destructive to test much`,
    );
  });
});

describe('IPv4/UDP framing of the packet socket', () => {
  const d = {
    source: '0.0.0.0',
    destination: '255.255.255.255',
    sourcePort: 68,
    destinationPort: 67,
    payload: Buffer.from('hello, dhcp'),
  };
  /** Ones'-complement sum of 16-bit words (RFC 1071); 0xffff over data with a valid checksum. */
  const onesSum = (b: Buffer) => {
    let sum = 0;
    for (let i = 0; i < b.length; i += 2) sum += (b[i] << 8) | (b[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    return sum;
  };

  it('round-trips, with valid header and UDP checksums', () => {
    const frame = encodeUdpIpv4(d);
    assert.deepEqual(decodeUdpIpv4(frame), d);
    assert.deepEqual([frame[0], frame.readUInt16BE(2), frame[8], frame[9]], [0x45, 20 + 8 + 11, 64, 17]);
    assert.equal(onesSum(frame.subarray(0, 20)), 0xffff);
    const pseudo = Buffer.concat([frame.subarray(12, 20), hex('0011'), frame.subarray(24, 26), frame.subarray(20)]);
    assert.equal(onesSum(pseudo), 0xffff);
  });

  it('ignores Ethernet padding beyond the IP total length', () => {
    assert.deepEqual(decodeUdpIpv4(Buffer.concat([encodeUdpIpv4(d), Buffer.alloc(20)])), d);
  });

  it('says why a frame is not a datagram', () => {
    const frame = encodeUdpIpv4(d);
    assert.match(decodeUdpIpv4(frame.subarray(0, 30)) as string, /bad IPv4 lengths/);
    const corrupt = Buffer.from(frame);
    corrupt[8] = 1;
    assert.equal(decodeUdpIpv4(corrupt), 'bad IPv4 header checksum');
    const fragment = Buffer.from(frame);
    fragment.writeUInt16BE(0x2000, 6); // more fragments follow
    fragment.writeUInt16BE(0, 10);
    fragment.writeUInt16BE(~onesSum(fragment.subarray(0, 20)) & 0xffff, 10);
    assert.equal(decodeUdpIpv4(fragment), 'IPv4 fragment');
    assert.match(decodeUdpIpv4(Buffer.alloc(10)) as string, /too short/);
  });
});
