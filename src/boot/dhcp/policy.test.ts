// Golden cases for the DHCP server's policy: what is answered, to whom, with which options, for
// reservations, pools, machine states, PXE firmware, iPXE, proxyDHCP, relays and odd requests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Lease, Machine, MachineState, Subnet } from '../../inventory/types.ts';
import {
  MessageType,
  Opt,
  decodeDhcpPacket,
  encodeDhcpPacket,
  parseIp,
  type DhcpPacketInit,
} from '../../protocols/dhcp/packet.ts';
import { answer } from './policy.ts';
import type { Decision, PolicyContext } from './policy-types.ts';

const NOW = new Date('2026-11-22T12:00:00Z');
const LAB: Subnet = {
  id: 'lab',
  gateway: '10.81.0.254',
  mask: '255.255.255.0',
  domainName: 'lab.test',
  dnsServers: ['10.81.0.53', '10.81.0.54'],
  manage: false,
  pool: { start: '10.81.0.100', end: '10.81.0.149' },
};
const STATIC_ONLY: Subnet = { ...LAB, id: 'static', pool: undefined };
const MAC = '02:cd:81:00:00:42';
const machine = (state: MachineState, extra: Partial<Machine> = {}): Machine => ({
  hostname: 'node42',
  macs: [MAC, '02:cd:81:00:00:43'],
  ip: '10.81.0.42',
  subnetId: 'lab',
  tags: {},
  state,
  stateChangedAt: NOW.toISOString(),
  createdAt: NOW.toISOString(),
  ...extra,
});
const lease = (ip: string, expiresInS: number, mac = MAC): Lease => ({
  mac,
  ip,
  subnetId: 'lab',
  expiresAt: new Date(NOW.getTime() + expiresInS * 1000).toISOString(),
});

type Opts = Record<number, Buffer | string | number[]>;
/** A request as it arrives: encoded, then decoded. */
function req(type: number, options: Opts = {}, fields: Partial<DhcpPacketInit> = {}) {
  const map = new Map<number, Buffer>([[Opt.MESSAGE_TYPE, Buffer.from([type])]]);
  for (const [k, v] of Object.entries(options))
    map.set(Number(k), Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v) : Buffer.from(v));
  return decodeDhcpPacket(encodeDhcpPacket({ op: 1, xid: 0xc0ffee, chaddr: MAC, options: map, ...fields }));
}
const ctx = (over: Partial<PolicyContext> = {}): PolicyContext => ({
  serverIp: '10.81.0.1',
  interfaceSubnet: LAB,
  now: NOW,
  config: {},
  ...over,
});
const u16 = (n: number) => [n >> 8, n & 255];
const BIOS_PXE = { 60: 'PXEClient:Arch:00000:UNDI:002001', 93: u16(0), 97: [0, ...Array(16).keys()] };
const UEFI_PXE = { 60: 'PXEClient:Arch:00007:UNDI:003016', 93: u16(7) };
const IPXE = { 60: 'PXEClient:Arch:00000:UNDI:002001', 93: u16(0), 77: 'iPXE' };

/** The reply as it goes out on the wire, decoded again. */
function wire(d: Decision) {
  assert.ok(d.reply, `no reply: ${d.log}`);
  const p = decodeDhcpPacket(encodeDhcpPacket(d.reply));
  const opt = (c: number) => p.options.get(c);
  return { p, opt, text: (c: number) => opt(c)?.toString(), type: opt(53)?.[0] };
}

describe('reservations', () => {
  it('DISCOVER → OFFER, byte for byte: address, hostname and every subnet option, no boot for a healthy machine', () => {
    const d = answer(
      req(MessageType.DISCOVER, { 55: [1, 3, 6, 12, 15, 28, 51, 54, 66, 67] }, { flags: 0x8000 }),
      ctx({ machine: machine('healthy') }),
    );
    assert.deepEqual(d.to, { kind: 'broadcast' });
    assert.equal(d.leaseWanted, undefined);
    assert.equal(d.log, 'OFFER 10.81.0.42 (reservation node42); no boot (machine state)');
    const golden = [
      '02010600 00c0ffee 0000 8000 00000000 0a51002a 00000000 00000000 02cd81000042 00000000000000000000',
      '00'.repeat(64),
      '00'.repeat(128),
      '63825363',
      '350102',
      '36040a510001', // 53 OFFER, 54 server id first
      '0104ffffff00',
      '03040a5100fe',
      '06080a5100350a510036',
      '0c066e6f64653432',
      '0f086c61622e74657374',
      '1c040a5100ff', // in option 55 order
      '33040002a300',
      '3a0400015180',
      '3b0400024ea0',
      'ff', // then 51 (48 h), 58 T1, 59 T2
    ]
      .join('')
      .replace(/\s+/g, '');
    const bytes = encodeDhcpPacket(d.reply!);
    assert.equal(bytes.subarray(0, golden.length / 2).toString('hex'), golden);
    assert.ok(
      bytes.subarray(golden.length / 2).every((b) => b === 0),
      'padding after END',
    );
  });

  it('REQUEST (selecting us) → ACK, unicast to the MAC without the broadcast flag', () => {
    const d = answer(
      req(MessageType.REQUEST, { 50: parseIp('10.81.0.42'), 54: parseIp('10.81.0.1') }),
      ctx({ machine: machine('healthy') }),
    );
    assert.equal(wire(d).type, MessageType.ACK);
    assert.deepEqual(d.to, { kind: 'unicast', ip: '10.81.0.42', mac: MAC });
    assert.equal(d.log, 'selecting: ACK 10.81.0.42 (reservation node42); no boot (machine state)');
  });

  it('REQUEST selecting another server: silent', () => {
    const d = answer(
      req(MessageType.REQUEST, { 50: parseIp('10.81.0.42'), 54: parseIp('10.81.0.9') }),
      ctx({ machine: machine('healthy') }),
    );
    assert.equal(d.reply, undefined);
    assert.match(d.log, /selects server 10\.81\.0\.9/);
  });

  it('NAK: another address of our network, and an address of another network (broadcast)', () => {
    const wrong = answer(req(MessageType.REQUEST, { 50: parseIp('10.81.0.77') }), ctx({ machine: machine('healthy') }));
    assert.equal(wire(wrong).type, MessageType.NAK);
    assert.equal(wire(wrong).text(Opt.MESSAGE), "10.81.0.77 is not this client's address (10.81.0.42)");
    assert.deepEqual(wrong.to, { kind: 'broadcast' });
    assert.equal(wire(wrong).p.yiaddr, '0.0.0.0');
    assert.deepEqual([...wire(wrong).p.options.keys()], [53, 54, 56]);
    const away = answer(req(MessageType.REQUEST, { 50: parseIp('192.0.2.7') }), ctx({ machine: machine('healthy') }));
    assert.equal(wire(away).text(Opt.MESSAGE), '192.0.2.7 is not on this network (lab)');
  });

  it('renewing (ciaddr) → ACK unicast to ciaddr, ciaddr kept', () => {
    const d = answer(req(MessageType.REQUEST, {}, { ciaddr: '10.81.0.42' }), ctx({ machine: machine('healthy') }));
    assert.equal(wire(d).type, MessageType.ACK);
    assert.equal(wire(d).p.ciaddr, '10.81.0.42');
    assert.deepEqual(d.to, { kind: 'unicast', ip: '10.81.0.42', mac: MAC });
    assert.match(d.log, /^renewing: /);
  });

  it('a reservation on another network is not offered here; a stale pool lease row is dropped', () => {
    assert.equal(
      answer(req(MessageType.DISCOVER), ctx({ machine: machine('healthy', { ip: '10.99.0.5' }) })).reply,
      undefined,
    );
    const d = answer(req(MessageType.DISCOVER), ctx({ machine: machine('healthy'), lease: lease('10.81.0.120', 100) }));
    assert.equal(d.reply?.yiaddr, '10.81.0.42');
    assert.equal(d.releaseLease, true);
  });

  it("a known machine's second MAC gets a pool lease, not the reservation", () => {
    const p = req(MessageType.DISCOVER, {}, { chaddr: '02:cd:81:00:00:43' });
    const first = answer(p, ctx({ machine: machine('healthy') }));
    assert.deepEqual(first.leaseWanted, { subnetId: 'lab', seconds: 60, hostname: 'node42' });
    const second = answer(
      p,
      ctx({ machine: machine('healthy'), lease: lease('10.81.0.100', 60, '02:cd:81:00:00:43') }),
    );
    assert.equal(second.reply?.yiaddr, '10.81.0.100');
    assert.equal(wire(second).text(Opt.HOSTNAME), 'node42');
  });
});

describe('pool clients', () => {
  const unknown = (over: Partial<PolicyContext> = {}) => ctx({ config: { unknownMachines: 'lease' }, ...over });

  it('unknown MACs are ignored by default, and reported', () => {
    const d = answer(req(MessageType.DISCOVER), ctx());
    assert.equal(d.reply, undefined);
    assert.deepEqual(d.unknownMachine, {
      mac: MAC,
      subnetId: 'lab',
      served: false,
      firmware: undefined,
      arch: undefined,
    });
  });

  it('DISCOVER asks for a held lease, then offers it with the full lease time', () => {
    const p = req(MessageType.DISCOVER, { 12: 'Web-01' });
    const first = answer(p, unknown());
    assert.equal(first.reply, undefined);
    assert.deepEqual(first.leaseWanted, { subnetId: 'lab', seconds: 60, hostname: 'web-01' });
    const second = answer(p, unknown({ lease: lease('10.81.0.100', 60) }));
    assert.equal(wire(second).type, MessageType.OFFER);
    assert.equal(wire(second).opt(Opt.LEASE_TIME)!.readUInt32BE(0), 14_400);
    assert.equal(wire(second).opt(Opt.HOSTNAME), undefined, 'no hostname for an unknown machine');
    assert.equal(second.unknownMachine?.served, true);
  });

  it('an unexpired lease is offered again without touching the inventory', () => {
    const d = answer(req(MessageType.DISCOVER), unknown({ lease: lease('10.81.0.107', 3) }));
    assert.equal(d.leaseWanted, undefined);
    assert.equal(d.reply?.yiaddr, '10.81.0.107');
  });

  it('REQUEST renews the lease before the ACK; a different address is NAKed', () => {
    const p = req(MessageType.REQUEST, { 50: parseIp('10.81.0.100'), 54: parseIp('10.81.0.1') });
    const first = answer(p, unknown({ lease: lease('10.81.0.100', 55) }));
    assert.deepEqual(first.leaseWanted, { subnetId: 'lab', seconds: 14_400, hostname: undefined });
    const second = answer(p, unknown({ lease: lease('10.81.0.100', 14_400) }));
    assert.equal(wire(second).type, MessageType.ACK);
    const other = answer(
      req(MessageType.REQUEST, { 50: parseIp('10.81.0.101'), 54: parseIp('10.81.0.1') }),
      unknown({ lease: lease('10.81.0.100', 30) }),
    );
    assert.equal(wire(other).type, MessageType.NAK);
  });

  it('INIT-REBOOT without a lease on record: NAK when authoritative, else silent', () => {
    const p = req(MessageType.REQUEST, { 50: parseIp('10.81.0.120') });
    assert.equal(wire(answer(p, unknown())).type, MessageType.NAK);
    assert.equal(answer(p, unknown({ config: { unknownMachines: 'lease', authoritative: false } })).reply, undefined);
  });

  it('no pool, or an exhausted one: no answer', () => {
    assert.equal(answer(req(MessageType.DISCOVER), unknown({ interfaceSubnet: STATIC_ONLY })).reply, undefined);
    const d = answer(req(MessageType.DISCOVER), unknown({ leaseUnavailable: true }));
    assert.equal(d.reply, undefined);
    assert.equal(d.leaseWanted, undefined);
    assert.match(d.log, /exhausted/);
    assert.equal(answer(req(MessageType.DISCOVER), unknown({ interfaceSubnet: undefined })).reply, undefined);
  });

  it('RELEASE frees the lease; DECLINE by its holder frees it and marks the address; not ours: nothing', () => {
    const rel = answer(
      req(MessageType.RELEASE, { 54: parseIp('10.81.0.1') }, { ciaddr: '10.81.0.100' }),
      unknown({ lease: lease('10.81.0.100', 100) }),
    );
    assert.deepEqual([rel.reply, rel.releaseLease], [undefined, true]);
    const dec = answer(
      req(MessageType.DECLINE, { 54: parseIp('10.81.0.1'), 50: parseIp('10.81.0.100') }),
      unknown({ lease: lease('10.81.0.100', 100) }),
    );
    assert.deepEqual([dec.reply, dec.releaseLease, dec.declined], [undefined, true, '10.81.0.100']);
    // A DECLINE of an address the MAC does not hold (any MAC can send one): nothing kept out.
    for (const held of [undefined, lease('10.81.0.101', 100)]) {
      const spoofed = answer(
        req(MessageType.DECLINE, { 54: parseIp('10.81.0.1'), 50: parseIp('10.81.0.100') }),
        unknown({ lease: held }),
      );
      assert.deepEqual([spoofed.releaseLease, spoofed.declined], [undefined, undefined]);
      assert.match(spoofed.log, /holds no lease of it; ignored/);
    }
    // A reserved address declined by its machine's primary MAC: another host uses it; no lease to free.
    const reservedDecline = (mac: string) =>
      answer(
        req(MessageType.DECLINE, { 54: parseIp('10.81.0.1'), 50: parseIp('10.81.0.42') }, { chaddr: mac }),
        ctx({ machine: machine('healthy') }),
      );
    const r = reservedDecline(MAC);
    assert.deepEqual([r.releaseLease, r.declined], [undefined, '10.81.0.42']);
    assert.equal(reservedDecline('02:cd:81:00:00:43').declined, undefined, 'not by its other MACs');
    const other = answer(
      req(MessageType.RELEASE, { 54: parseIp('10.81.0.9') }, { ciaddr: '10.81.0.100' }),
      unknown({ lease: lease('10.81.0.100', 100) }),
    );
    assert.equal(other.releaseLease, undefined);
  });

  it('INFORM → ACK with the subnet options, no address and no lease time, to ciaddr', () => {
    const d = answer(
      req(MessageType.INFORM, {}, { ciaddr: '10.81.0.200' }),
      ctx({ machine: machine('healthy', { ip: undefined }) }),
    );
    const w = wire(d);
    assert.equal(w.type, MessageType.ACK);
    assert.equal(w.p.yiaddr, '0.0.0.0');
    assert.equal(w.opt(Opt.LEASE_TIME), undefined);
    assert.equal(w.text(Opt.DOMAIN_NAME), 'lab.test');
    assert.deepEqual(d.to, { kind: 'unicast', ip: '10.81.0.200', mac: MAC });
  });
});

describe('booting by machine state and firmware', () => {
  const offer = (state: MachineState | 'none', options: Opts, config = {}) =>
    answer(
      req(MessageType.DISCOVER, options),
      ctx({
        machine: state === 'none' ? undefined : machine(state),
        lease: lease('10.81.0.100', 50),
        config: { unknownMachines: 'birth', ...config },
      }),
    );

  it('install states boot the installer; healthy, failed and unknown-state machines boot from disk', () => {
    for (const s of ['birth', 'rebirth', 'clean', 'installing', 'none'] as const)
      assert.equal(offer(s, BIOS_PXE).reply?.file, 'undionly.kpxe', s);
    for (const s of ['healthy', 'failed', 'unknown'] as const) {
      const w = wire(offer(s, BIOS_PXE));
      assert.deepEqual(
        [w.p.file, w.p.siaddr, w.opt(60), w.opt(66), w.opt(67)],
        ['', '0.0.0.0', undefined, undefined, undefined],
        s,
      );
    }
  });

  it('PXE firmware by architecture gets the iPXE build for it by TFTP, with the PXE options', () => {
    const w = wire(offer('birth', BIOS_PXE));
    assert.equal(w.p.siaddr, '10.81.0.1');
    assert.equal(w.text(66), '10.81.0.1');
    assert.equal(w.text(67), 'undionly.kpxe');
    assert.equal(w.text(60), 'PXEClient');
    assert.equal(w.opt(43)!.toString('hex'), '060108ff');
    assert.deepEqual([...w.opt(97)!], BIOS_PXE[97]);
    const files = [
      [7, 'ipxe.efi'],
      [9, 'ipxe.efi'],
      [6, 'ipxe-i386.efi'],
      [11, 'ipxe-arm64.efi'],
    ] as const;
    for (const [arch, file] of files)
      assert.equal(offer('birth', { 60: 'PXEClient', 93: u16(arch) }).reply?.file, file, `arch ${arch}`);
    // Option 93 missing: the architecture in option 60 counts.
    assert.equal(offer('birth', { 60: UEFI_PXE[60] }).reply?.file, 'ipxe.efi');
    const odd = offer('birth', { 60: 'PXEClient', 93: u16(99) });
    assert.deepEqual([odd.reply?.file, odd.reply?.options?.get(60)], ['', undefined]);
    assert.match(odd.log, /no iPXE build for client architecture 99/);
  });

  it('iPXE gets its per-machine script over HTTP; configuration overrides names and servers', () => {
    assert.equal(offer('birth', IPXE).reply?.file, `http://10.81.0.1:6977/boot/${MAC}.ipxe`);
    const cfg = {
      httpBootUrl: 'http://boot.lab.test:8080/',
      tftpServer: '10.81.0.5',
      bootFiles: { uefi64: 'snponly.efi' },
    };
    assert.equal(offer('birth', IPXE, cfg).reply?.file, `http://boot.lab.test:8080/boot/${MAC}.ipxe`);
    const w = wire(offer('birth', UEFI_PXE, cfg));
    assert.deepEqual([w.p.file, w.p.siaddr, w.text(66)], ['snponly.efi', '10.81.0.5', '10.81.0.5']);
  });

  it("a non-PXE client (the installer's own DHCP) in an install state gets the TFTP server, no file", () => {
    const w = wire(offer('birth', { 60: 'Cradle-installer', 93: u16(7) }));
    assert.deepEqual([w.p.file, w.p.siaddr, w.text(66), w.opt(60)], ['', '10.81.0.1', '10.81.0.1', undefined]);
  });

  it('records the firmware a known machine PXE-boots with', () => {
    assert.deepEqual(offer('healthy', UEFI_PXE).machinePatch, { firmware: 'uefi' });
    assert.deepEqual(
      answer(req(MessageType.DISCOVER, BIOS_PXE), ctx({ machine: machine('birth', { firmware: 'uefi' }) }))
        .machinePatch,
      { firmware: 'bios' },
    );
    assert.equal(
      answer(req(MessageType.DISCOVER, UEFI_PXE), ctx({ machine: machine('birth', { firmware: 'uefi' }) }))
        .machinePatch,
      undefined,
    );
  });
});

describe('proxyDHCP', () => {
  const proxy = (over: Partial<PolicyContext> = {}) =>
    ctx({ interfaceSubnet: undefined, machine: machine('birth'), config: { mode: 'proxy' }, ...over });

  it('answers a PXE DISCOVER with boot information only: no address, no lease options', () => {
    const d = answer(req(MessageType.DISCOVER, BIOS_PXE), proxy());
    const w = wire(d);
    assert.equal(w.type, MessageType.OFFER);
    assert.deepEqual([w.p.yiaddr, w.p.siaddr, w.p.file], ['0.0.0.0', '10.81.0.1', 'undionly.kpxe']);
    assert.deepEqual([...w.p.options.keys()], [53, 54, 66, 67, 60, 43, 97]);
    assert.deepEqual(d.to, { kind: 'broadcast' });
  });

  it('ignores non-PXE clients, healthy machines and REQUESTs meant for the address server', () => {
    assert.equal(answer(req(MessageType.DISCOVER), proxy()).reply, undefined);
    assert.equal(answer(req(MessageType.DISCOVER, BIOS_PXE), proxy({ machine: machine('healthy') })).reply, undefined);
    assert.equal(
      answer(req(MessageType.REQUEST, { ...BIOS_PXE, 54: parseIp('10.81.0.9'), 50: parseIp('10.81.0.120') }), proxy())
        .reply,
      undefined,
    );
    assert.equal(answer(req(MessageType.DISCOVER, BIOS_PXE), proxy({ machine: undefined })).reply, undefined);
  });

  it('port 4011: the boot-server REQUEST gets an ACK with the boot file, sent back to its source', () => {
    const d = answer(
      req(MessageType.REQUEST, IPXE, { ciaddr: '10.84.0.120' }),
      proxy({ port: 4011, source: { ip: '10.84.0.120', port: 68 } }),
    );
    const w = wire(d);
    assert.equal(w.type, MessageType.ACK);
    assert.deepEqual(
      [w.p.yiaddr, w.p.ciaddr, w.p.file],
      ['0.0.0.0', '10.84.0.120', `http://10.81.0.1:6977/boot/${MAC}.ipxe`],
    );
    assert.deepEqual(d.to, { kind: 'source', ip: '10.84.0.120', port: 68 });
  });
});

describe('relayed requests', () => {
  const RELAYED: Subnet = {
    ...LAB,
    id: 'far',
    gateway: '10.83.0.1',
    pool: { start: '10.83.0.100', end: '10.83.0.149' },
  };
  it('go back to the relay (giaddr) with option 82 echoed last; a relayed NAK has the broadcast bit', () => {
    const agent = [1, 4, ...Buffer.from('eth3')];
    const p = req(MessageType.DISCOVER, { 82: agent, 55: [1, 3] }, { giaddr: '10.83.0.1', hops: 1 });
    const d = answer(
      p,
      ctx({
        interfaceSubnet: RELAYED,
        config: { unknownMachines: 'lease' },
        lease: { ...lease('10.83.0.100', 50), subnetId: 'far' },
      }),
    );
    assert.deepEqual(d.to, { kind: 'relay', ip: '10.83.0.1' });
    const w = wire(d);
    assert.equal(w.p.giaddr, '10.83.0.1');
    assert.deepEqual([...w.p.options.keys()].at(-1), 82);
    assert.deepEqual([...w.opt(82)!], agent);
    const nak = answer(
      req(MessageType.REQUEST, { 50: parseIp('10.81.0.9') }, { giaddr: '10.83.0.1' }),
      ctx({ interfaceSubnet: RELAYED, machine: machine('healthy', { ip: '10.83.0.42' }) }),
    );
    assert.deepEqual(
      [wire(nak).type, wire(nak).p.flags, nak.to],
      [MessageType.NAK, 0x8000, { kind: 'relay', ip: '10.83.0.1' }],
    );
  });
});

describe('requests that get no answer', () => {
  const cases: [string, ReturnType<typeof req>][] = [
    ['a BOOTREPLY', req(MessageType.DISCOVER, {}, { op: 2 })],
    ['not Ethernet', req(MessageType.DISCOVER, {}, { htype: 6 })],
    ['BOOTP (no option 53)', decodeDhcpPacket(encodeDhcpPacket({ op: 1, xid: 1, chaddr: MAC }))],
    ['an OFFER from a client', req(MessageType.OFFER)],
    ['too many relay hops', req(MessageType.DISCOVER, {}, { hops: 17, giaddr: '10.81.0.2' })],
    ['a multicast MAC', req(MessageType.DISCOVER, {}, { chaddr: '03:00:00:00:00:01' })],
    ['an all-zero MAC', req(MessageType.DISCOVER, {}, { chaddr: '00:00:00:00:00:00' })],
    ['a 4-byte hardware address', req(MessageType.DISCOVER, {}, { chaddr: Buffer.from([2, 0, 0, 1]) })],
  ];
  for (const [what, p] of cases) {
    it(what, () => assert.equal(answer(p, ctx({ machine: machine('birth') })).reply, undefined));
  }

  it('broken optional options are ignored, not fatal', () => {
    const d = answer(
      req(MessageType.DISCOVER, { 93: [7], 50: [1, 2], 60: [0xff, 0xfe], 12: [0xc3] }),
      ctx({ machine: machine('birth') }),
    );
    assert.equal(d.reply?.yiaddr, '10.81.0.42');
  });
});
