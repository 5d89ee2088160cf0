// Cradle's DHCP server against real clients, in network namespaces this test creates:
//   <p>-srv  our server: br0 10.81.0.1/24 (subnet lab, pool), br2 10.85.0.1/24 (subnet static,
//            no pool), br1 10.84.0.1/24 (the proxyDHCP segment); route to 10.83.0.0/24 via the relay
//   <p>-cli  the clients: c0 node42 (healthy, reserved), c1 an unknown MAC, c2 birth1 (birth,
//            reserved) on br0; c4 an unknown MAC on br2; c3 behind the relay; p0 birth2 on br1
//   <p>-rly  a relay: r0 10.81.0.2 on br0, r1 10.83.0.1 towards c3 (dnsmasq --dhcp-relay)
//   <p>-dns  dnsmasq as the address server of the proxyDHCP segment: d0 10.84.0.2 on br1
// Peers: busybox udhcpc, ISC dhclient, dnsmasq (relay; address server beside our proxyDHCP) and
// Cradle's own client (client.ts) for the PXE options. The machine database is the real SQLite
// store (src/inventory), so a restart must find the leases.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NewMachine, Subnet } from '../../inventory/types.ts';
import { MessageType, Opt, encodeDhcpPacket, parseIp, type DhcpPacketInit } from '../../protocols/dhcp/packet.ts';
import { encodeUdpIpv4 } from '../../protocols/dhcp/udp-ipv4.ts';
import type { Summary } from './testdata/client-driver.ts';
import {
  addNamespace,
  bridge,
  deleteNamespaces,
  inNs,
  node,
  removeStaleNamespaces,
  runIn,
  sh,
  startIn,
  veth,
  type Proc,
} from './testdata/netns.ts';
import { mutations } from './testdata/malformed.ts';

const testdata = path.join(import.meta.dirname, 'testdata');
const prefix = `cradle-dhcpd-${process.pid}`;
const NS = { srv: `${prefix}-srv`, cli: `${prefix}-cli`, rly: `${prefix}-rly`, dns: `${prefix}-dns` };
const MAC = {
  node42: '02:cd:81:00:00:42',
  birth1: '02:cd:81:00:00:51',
  birth2: '02:cd:84:00:00:61',
  u1: '02:cd:81:00:01:01',
  u3: '02:cd:83:00:01:03',
  u4: '02:cd:85:00:01:04',
  c3: '02:cd:83:00:00:33',
};
const SUBNETS: Subnet[] = [
  {
    id: 'lab',
    gateway: '10.81.0.254',
    mask: '255.255.255.0',
    domainName: 'lab.test',
    dnsServers: ['10.81.0.53'],
    manage: false,
    pool: { start: '10.81.0.100', end: '10.81.0.149' },
  },
  {
    id: 'far',
    gateway: '10.83.0.1',
    mask: '255.255.255.0',
    dnsServers: [],
    manage: false,
    pool: { start: '10.83.0.100', end: '10.83.0.149' },
  },
  { id: 'static', gateway: '10.85.0.254', mask: '255.255.255.0', dnsServers: [], manage: false },
];
const MACHINES: NewMachine[] = [
  { hostname: 'node42', macs: [MAC.node42], ip: '10.81.0.42', subnetId: 'lab', tags: {}, state: 'healthy' },
  { hostname: 'birth1', macs: [MAC.birth1], ip: '10.81.0.51', subnetId: 'lab', tags: {}, state: 'birth' },
  { hostname: 'birth2', macs: [MAC.birth2], tags: {}, state: 'birth' },
];
const BIOS_PXE = {
  [Opt.VENDOR_CLASS]: Buffer.from('PXEClient:Arch:00000:UNDI:002001'),
  [Opt.CLIENT_ARCH]: Buffer.from([0, 0]),
};
const hex = (b: Buffer) => Buffer.from(b).toString('hex');

function packet(
  type: number,
  mac: string,
  options: Record<number, Buffer> = {},
  fields: Partial<DhcpPacketInit> = {},
): Buffer {
  const map = new Map<number, Buffer>([[Opt.MESSAGE_TYPE, Buffer.from([type])]]);
  for (const [k, v] of Object.entries(options)) map.set(Number(k), v);
  return encodeDhcpPacket({ op: 1, xid: Math.floor(Math.random() * 2 ** 32), chaddr: mac, options: map, ...fields });
}

/** Our server in the server namespace (testdata/server-driver.ts), talking JSON lines. */
class Server {
  proc!: Proc;
  #id = 0;
  static async start(tmp: string, interfaces: string[], config: object): Promise<Server> {
    const s = new Server();
    const args = {
      interfaces,
      config,
      db: `sqlite:${tmp}/inventory.db`,
      seed: { subnets: SUBNETS, machines: MACHINES },
    };
    s.proc = await startIn(
      NS.srv,
      [node, '--disable-warning=ExperimentalWarning', path.join(testdata, 'server-driver.ts'), JSON.stringify(args)],
      /"ready":true/,
    );
    return s;
  }
  async cmd<T>(c: object): Promise<T> {
    const id = ++this.#id;
    this.proc.child.stdin!.write(`${JSON.stringify({ ...c, id })}\n`);
    return JSON.parse(await this.proc.waitFor(new RegExp(`^\\{"id":${id},`)));
  }
  stats = async () => (await this.cmd<{ stats: Record<string, number> }>({ cmd: 'stats' })).stats;
  logs = () =>
    this.proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{"log"'))
      .map((l) => JSON.parse(l).log as string);
  async stop(): Promise<void> {
    assert.equal(await this.proc.stop(), 0, `the server did not close cleanly:\n${this.proc.output().slice(-2000)}`);
  }
}

async function client(args: object): Promise<{ offers: Summary[]; answer?: Summary; replies: Summary[] }> {
  const r = await runIn(
    (args as { ns?: string }).ns ?? NS.cli,
    [node, '--disable-warning=ExperimentalWarning', path.join(testdata, 'client-driver.ts'), '-'],
    60_000,
    JSON.stringify(args),
  );
  if (r.code !== 0) throw new Error(`client driver failed (${r.code}): ${r.err}${r.out}`);
  return JSON.parse(r.out.trim().split('\n').pop()!);
}

async function udhcpc(
  iface: string,
  script: string,
  tries = 3,
): Promise<{ code: number | null; env: Record<string, string> }> {
  const r = await runIn(NS.cli, [
    'busybox',
    'udhcpc',
    '-i',
    iface,
    '-n',
    '-q',
    '-f',
    '-t',
    String(tries),
    '-T',
    '1',
    '-O',
    'tftp',
    '-s',
    script,
  ]);
  const env = Object.fromEntries(
    r.out
      .split('\n')
      .filter((l) => /^\w+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { code: r.code, env };
}

const isRoot = process.getuid?.() === 0;
const tools = ['/usr/sbin/dnsmasq', '/usr/bin/busybox', '/usr/sbin/dhclient'].filter((t) => !fs.existsSync(t));

describe('DHCP server against real clients in network namespaces', {
  skip: !isRoot ? 'needs root' : tools.length ? `needs ${tools.join(', ')}` : false,
}, () => {
  let tmp: string;
  let server: Server | undefined;
  const extra: Proc[] = [];
  let uscript: string;
  let dscript: string;

  before(async () => {
    removeStaleNamespaces('cradle-dhcpd');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-dhcpd-'));
    for (const ns of Object.values(NS)) addNamespace(ns);
    bridge(NS.srv, 'br0', '10.81.0.1/24');
    bridge(NS.srv, 'br1', '10.84.0.1/24');
    bridge(NS.srv, 'br2', '10.85.0.1/24');
    veth(NS.cli, 'c0', NS.srv, 's-c0', { macA: MAC.node42, bridgeB: 'br0' });
    veth(NS.cli, 'c1', NS.srv, 's-c1', { macA: MAC.u1, bridgeB: 'br0' });
    veth(NS.cli, 'c2', NS.srv, 's-c2', { macA: MAC.birth1, bridgeB: 'br0' });
    veth(NS.cli, 'c4', NS.srv, 's-c4', { macA: MAC.u4, bridgeB: 'br2' });
    veth(NS.cli, 'p0', NS.srv, 's-p0', { macA: MAC.birth2, bridgeB: 'br1' });
    veth(NS.rly, 'r0', NS.srv, 's-r0', { addrA: '10.81.0.2/24', bridgeB: 'br0' });
    veth(NS.cli, 'c3', NS.rly, 'r1', { macA: MAC.c3, addrB: '10.83.0.1/24' });
    veth(NS.dns, 'd0', NS.srv, 's-d0', { addrA: '10.84.0.2/24', bridgeB: 'br1' });
    sh('ip', '-n', NS.srv, 'route', 'add', '10.83.0.0/24', 'via', '10.81.0.2');
    uscript = path.join(tmp, 'udhcpc.sh');
    fs.writeFileSync(
      uscript,
      '#!/bin/sh\n[ "$1" = bound ] && env | grep -E "^(ip|subnet|router|dns|domain|hostname|siaddr|boot_file|tftp|lease|serverid|broadcast)="\nexit 0\n',
      { mode: 0o755 },
    );
    // dhclient's script configures the address, so that its RELEASE can be unicast to us.
    dscript = path.join(tmp, 'dhclient.sh');
    fs.writeFileSync(
      dscript,
      '#!/bin/sh\necho "reason=$reason"\ncase $reason in BOUND) env | grep -E "^new_"; ip addr add "$new_ip_address/24" dev "$interface";; esac\nexit 0\n',
      { mode: 0o755 },
    );
    server = await Server.start(tmp, ['br0', 'br2'], { unknownMachines: 'birth' });
  });

  after(async () => {
    await server?.stop().catch((err) => console.error(err));
    for (const p of extra) await p.stop();
    deleteNamespaces(prefix);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    assert.ok(!sh('ip', 'netns', 'list').includes(prefix), 'a test namespace survived');
  });

  it('busybox udhcpc: a reservation gets its address, hostname and the subnet options; healthy: no boot file', async () => {
    const r = await udhcpc('c0', uscript);
    assert.deepEqual(r.env, {
      ip: '10.81.0.42',
      subnet: '255.255.255.0',
      router: '10.81.0.254',
      dns: '10.81.0.53',
      domain: 'lab.test',
      hostname: 'node42',
      broadcast: '10.81.0.255',
      lease: '172800',
      serverid: '10.81.0.1',
    });
  });

  it('ISC dhclient: the same reservation', async () => {
    const d = await startIn(
      NS.cli,
      ['dhclient', '-d', '-1', '-v', '-sf', dscript, '-lf', `${tmp}/c0.leases`, '-pf', `${tmp}/c0.pid`, 'c0'],
      /^bound to/m,
    );
    const env = Object.fromEntries(
      d
        .output()
        .split('\n')
        .filter((l) => l.startsWith('new_'))
        .map((l) => l.split('=')),
    );
    await d.stop();
    sh('ip', '-n', NS.cli, 'addr', 'flush', 'dev', 'c0');
    assert.equal(env.new_ip_address, '10.81.0.42');
    assert.equal(env.new_host_name, 'node42');
    assert.equal(env.new_routers, '10.81.0.254');
    assert.equal(env.new_domain_name_servers, '10.81.0.53');
    assert.equal(env.new_dhcp_lease_time, '172800');
    assert.equal(env.new_broadcast_address, '10.81.0.255');
  });

  it('a served interface going down and up again: still answered', async () => {
    sh('ip', '-n', NS.srv, 'link', 'set', 'br0', 'down');
    await new Promise((r) => setTimeout(r, 300));
    sh('ip', '-n', NS.srv, 'link', 'set', 'br0', 'up');
    sh('ip', '-n', NS.srv, 'route', 'replace', '10.83.0.0/24', 'via', '10.81.0.2'); // went with the link
    assert.equal((await udhcpc('c0', uscript)).env.ip, '10.81.0.42');
    assert.equal((await server!.stats()).errors, 0);
  });

  it('an unknown MAC gets a pool lease that survives a restart, is reported, and dhclient -r releases it', async () => {
    const first = await udhcpc('c1', uscript);
    assert.match(first.env.ip ?? '', /^10\.81\.0\.1[0-4]\d$/);
    assert.equal(first.env.lease, '14400');
    assert.equal(first.env.siaddr, '10.81.0.1', 'unknown machines are born: they get the TFTP server');
    await server!.proc.waitFor(new RegExp(`"unknown":"${MAC.u1}".*"served":true`));
    const { leases } = await server!.cmd<{ leases: { mac: string; ip: string }[] }>({ cmd: 'leases' });
    assert.deepEqual(
      leases.filter((l) => l.mac === MAC.u1).map((l) => l.ip),
      [first.env.ip],
    );
    await server!.stop();
    server = await Server.start(tmp, ['br0', 'br2'], { unknownMachines: 'birth' });
    assert.equal((await udhcpc('c1', uscript)).env.ip, first.env.ip, 'same address after the restart');
    // ISC dhclient: the same lease, then RELEASE (unicast from the configured address).
    const d = await startIn(
      NS.cli,
      ['dhclient', '-d', '-1', '-v', '-sf', dscript, '-lf', `${tmp}/c1.leases`, '-pf', `${tmp}/c1.pid`, 'c1'],
      /^bound to/m,
    );
    assert.match(d.output(), new RegExp(`new_ip_address=${first.env.ip.replace(/\./g, '\\.')}\n`));
    const rel = await runIn(NS.cli, [
      'dhclient',
      '-r',
      '-v',
      '-sf',
      dscript,
      '-lf',
      `${tmp}/c1.leases`,
      '-pf',
      `${tmp}/c1.pid`,
      'c1',
    ]);
    assert.equal(rel.code, 0, rel.err);
    await d.stop();
    sh('ip', '-n', NS.cli, 'addr', 'flush', 'dev', 'c1');
    await server!.proc.waitFor(/RELEASE from 02:cd:81:00:01:01 .*lease freed/);
    const after = await server!.cmd<{ leases: { mac: string }[] }>({ cmd: 'leases' });
    assert.equal(
      after.leases.some((l) => l.mac === MAC.u1),
      false,
    );
  });

  it('an unknown MAC on a network without a pool gets no answer', async () => {
    const before = await server!.stats();
    const r = await udhcpc('c4', uscript, 2);
    assert.notEqual(r.code, 0);
    assert.deepEqual(r.env, {});
    const now = await server!.stats();
    assert.equal(now.offers, before.offers);
    assert.ok(now.unanswered >= before.unanswered + 2);
    assert.ok(
      server!.logs().some((l) => l.includes(`${MAC.u4} has no reserved address and subnet static has no pool`)),
    );
  });

  it('a REQUEST for a wrong address is NAKed', async () => {
    const reqs = [
      packet(MessageType.REQUEST, MAC.node42, { [Opt.REQUESTED_IP]: parseIp('10.81.0.77') }), // init-reboot
      packet(MessageType.REQUEST, MAC.node42, {
        [Opt.REQUESTED_IP]: parseIp('10.81.0.77'),
        [Opt.SERVER_ID]: parseIp('10.81.0.1'),
      }),
      packet(MessageType.REQUEST, MAC.node42, { [Opt.REQUESTED_IP]: parseIp('192.0.2.7') }),
    ];
    const r = await client({ mode: 'send', iface: 'c0', packets: reqs.map(hex), listenMs: 500 });
    assert.deepEqual(
      r.replies.map((x) => [x.type, Buffer.from(x.options['56'], 'hex').toString()]),
      [
        [MessageType.NAK, "10.81.0.77 is not this client's address (10.81.0.42)"],
        [MessageType.NAK, "10.81.0.77 is not this client's address (10.81.0.42)"],
        [MessageType.NAK, '192.0.2.7 is not on this network (lab)'],
      ],
    );
  });

  it("PXE (Cradle's client): birth chainloads iPXE by architecture, iPXE gets its HTTP script, healthy gets no boot file", async () => {
    const race = async (iface: string, mac: string, clientArch: number) => {
      const r = await runIn(NS.cli, [
        node,
        '--disable-warning=ExperimentalWarning',
        path.resolve(import.meta.dirname, '../../protocols/dhcp/testdata/dhcp-driver.ts'),
        JSON.stringify({
          ifaces: [{ name: iface, mac }],
          opts: {
            vendorClass: `PXEClient:Arch:0000${clientArch}:UNDI:002001`,
            clientArch,
            attemptTimeoutMs: 500,
            timeoutMs: 5000,
          },
        }),
      ]);
      const { lease } = JSON.parse(r.out.trim().split('\n').pop()!);
      return lease;
    };
    const bios = await race('c2', MAC.birth1, 0);
    assert.deepEqual(
      [bios.ip, bios.bootFile, bios.siaddr, bios.tftpServerName, bios.hostname],
      ['10.81.0.51', 'undionly.kpxe', '10.81.0.1', '10.81.0.1', 'birth1'],
    );
    assert.equal(Buffer.from(bios.options['60'], 'hex').toString(), 'PXEClient');
    const uefi = await race('c2', MAC.birth1, 7);
    assert.equal(uefi.bootFile, 'ipxe.efi');
    const { machine } = await server!.cmd<{ machine: { firmware: string } }>({ cmd: 'machine', hostname: 'birth1' });
    assert.equal(machine.firmware, 'uefi');
    const healthy = await race('c0', MAC.node42, 0);
    assert.deepEqual([healthy.ip, healthy.bootFile, healthy.siaddr], ['10.81.0.42', undefined, undefined]);
    // iPXE: option 77, and option 97 (client machine id) is echoed.
    const uuid = Buffer.from(`00${'11'.repeat(16)}`, 'hex');
    const discover = packet(MessageType.DISCOVER, MAC.birth1, {
      ...BIOS_PXE,
      77: Buffer.from('iPXE'),
      [Opt.CLIENT_UUID]: uuid,
    });
    const ipxe = await client({ mode: 'exchange', iface: 'c2', discover: hex(discover), waitMs: 2000, gatherMs: 100 });
    assert.equal(ipxe.offers[0].file, `http://10.81.0.1:6977/boot/${MAC.birth1}.ipxe`);
    assert.equal(ipxe.answer?.type, MessageType.ACK);
    assert.equal(ipxe.answer?.file, `http://10.81.0.1:6977/boot/${MAC.birth1}.ipxe`);
    assert.equal(ipxe.answer?.options['97'], hex(uuid));
  });

  it('relayed: a crafted relay packet (giaddr, option 82) is answered to the relay from the far pool', async () => {
    const agent = Buffer.from([1, 2, ...Buffer.from('c3')]);
    const d = packet(MessageType.DISCOVER, MAC.u3, { 82: agent }, { giaddr: '10.83.0.1', hops: 1 });
    const r = await client({
      ns: NS.rly,
      mode: 'udp',
      bindPort: 67,
      to: '10.81.0.1',
      port: 67,
      packets: [hex(d)],
      listenMs: 500,
    });
    assert.equal(r.replies.length, 1);
    const o = r.replies[0];
    assert.equal(o.type, MessageType.OFFER);
    assert.match(o.yiaddr, /^10\.83\.0\.1[0-4]\d$/);
    assert.deepEqual(
      [o.giaddr, o.from, o.options['3'], o.options['82'], o.options['54']],
      ['10.83.0.1', '10.81.0.1', hex(parseIp('10.83.0.1')), hex(agent), hex(parseIp('10.81.0.1'))],
    );
  });

  it('relayed: busybox udhcpc behind dnsmasq --dhcp-relay', async () => {
    const relay = await startIn(
      NS.rly,
      [
        '/usr/sbin/dnsmasq',
        '--keep-in-foreground',
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--user=root',
        '--dhcp-relay=10.83.0.1,10.81.0.1',
        '--log-dhcp',
        '--log-facility=-',
        `--pid-file=${tmp}/relay.pid`,
      ],
      /DHCP relay from 10\.83\.0\.1 to 10\.81\.0\.1/,
    );
    extra.push(relay);
    const before = await server!.stats();
    const r = await udhcpc('c3', uscript);
    await relay.stop();
    assert.match(r.env.ip ?? '', /^10\.83\.0\.1[0-4]\d$/, JSON.stringify(r));
    assert.equal(r.env.router, '10.83.0.1');
    assert.equal(r.env.serverid, '10.81.0.1');
    assert.ok((await server!.stats()).relayed >= before.relayed + 2);
  });

  it('malformed packets (a corpus and generated mutations): no crash, no answer', async () => {
    const valid = packet(MessageType.DISCOVER, MAC.node42, BIOS_PXE, { flags: 0x8000 });
    const m = mutations(valid, 1500, 0xc0ffee);
    // Broken IP/UDP around a valid payload: bad header checksum, UDP longer than the IP packet.
    const good = encodeUdpIpv4({
      source: '0.0.0.0',
      destination: '255.255.255.255',
      sourcePort: 68,
      destinationPort: 67,
      payload: valid,
    });
    const badSum = Buffer.from(good);
    badSum[10] ^= 0xff;
    const longUdp = Buffer.from(good);
    longUdp.writeUInt16BE(longUdp.readUInt16BE(24) + 40, 24);
    const before = await server!.stats();
    const r = await client({
      mode: 'send',
      iface: 'c0',
      packets: [...m.undecodable, ...m.unanswerable].map(hex),
      frames: [badSum, longUdp].map(hex),
      listenMs: 800,
    });
    assert.deepEqual(r.replies, [], 'nothing malformed may be answered');
    // The same through the UDP paths: relayed (giaddr set) and the PXE port.
    const relayed = m.undecodable.filter((b) => b.length >= 28 && b.readUInt32BE(24) !== 0);
    const viaUdp = await client({
      ns: NS.rly,
      mode: 'udp',
      bindPort: 67,
      to: '10.81.0.1',
      port: 67,
      packets: relayed.map(hex),
      listenMs: 300,
    });
    const via4011 = await client({
      ns: NS.rly,
      mode: 'udp',
      bindPort: 4011,
      to: '10.81.0.1',
      port: 4011,
      packets: m.undecodable.slice(0, 300).map(hex),
      listenMs: 300,
    });
    assert.deepEqual([viaUdp.replies, via4011.replies], [[], []]);
    const now = await server!.stats();
    // Each counted once: on the link those with giaddr 0, on UDP port 67 (the broadcast reaches it too) the others.
    // With br_netfilter calling iptables, the bridge itself drops the frame with the bad IPv4 checksum.
    const bridgeChecks =
      inNs(NS.srv, 'sh', '-c', 'cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0').trim() === '1';
    const frames = bridgeChecks ? 1 : 2;
    assert.equal(
      now.malformed - before.malformed,
      m.undecodable.length + frames + relayed.length + 300,
      'every malformed packet was seen and counted once',
    );
    assert.equal(now.errors, before.errors);
    // Still alive and answering.
    const ok = await client({ mode: 'send', iface: 'c0', packets: [hex(valid)], listenMs: 500 });
    assert.equal(ok.replies.length, 1);
    assert.equal(ok.replies[0].type, MessageType.OFFER);
  });

  it('proxyDHCP beside dnsmasq: dnsmasq gives the address, we give only the boot information (ports 67 and 4011)', async () => {
    await server!.stop();
    server = await Server.start(tmp, ['br1'], { mode: 'proxy' });
    const dns = await startIn(
      NS.dns,
      [
        '/usr/sbin/dnsmasq',
        '--keep-in-foreground',
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--user=root',
        '--interface=d0',
        '--bind-interfaces',
        '--dhcp-range=10.84.0.100,10.84.0.150,255.255.255.0,1h',
        '--no-ping',
        '--log-dhcp',
        '--log-facility=-',
        `--dhcp-leasefile=${tmp}/dns.leases`,
        `--pid-file=${tmp}/dns.pid`,
      ],
      /DHCP, sockets bound exclusively to interface d0/,
    );
    extra.push(dns);
    const discover = packet(MessageType.DISCOVER, MAC.birth2, { ...BIOS_PXE, [Opt.CLIENT_UUID]: Buffer.alloc(17, 7) });
    const r = await client({
      mode: 'exchange',
      iface: 'p0',
      discover: hex(discover),
      waitMs: 3000,
      gatherMs: 700,
      serverId: '10.84.0.2',
    });
    const ours = r.offers.find((o) => o.from === '10.84.0.1');
    const theirs = r.offers.find((o) => o.from === '10.84.0.2');
    assert.ok(ours && theirs, JSON.stringify(r.offers));
    assert.deepEqual(
      [ours.yiaddr, ours.siaddr, ours.file, Buffer.from(ours.options['60'], 'hex').toString(), ours.options['43']],
      ['0.0.0.0', '10.84.0.1', 'undionly.kpxe', 'PXEClient', '060108ff'],
    );
    assert.equal(ours.options['51'], undefined, 'no lease options from a proxy');
    assert.match(theirs.yiaddr, /^10\.84\.0\.1\d\d$/);
    assert.equal(r.answer?.type, MessageType.ACK);
    assert.equal(r.answer?.from, '10.84.0.2');
    // Then the PXE client, configured, asks us on port 4011 (as iPXE does for a proxyDHCP offer).
    sh('ip', '-n', NS.cli, 'addr', 'add', `${r.answer!.yiaddr}/24`, 'dev', 'p0');
    const req = packet(
      MessageType.REQUEST,
      MAC.birth2,
      { ...BIOS_PXE, 77: Buffer.from('iPXE') },
      { ciaddr: r.answer!.yiaddr },
    );
    const ack = await client({
      mode: 'udp',
      bindPort: 68,
      to: '10.84.0.1',
      port: 4011,
      packets: [hex(req)],
      listenMs: 500,
    });
    sh('ip', '-n', NS.cli, 'addr', 'flush', 'dev', 'p0');
    assert.equal(ack.replies.length, 1);
    assert.deepEqual(
      [ack.replies[0].type, ack.replies[0].file, ack.replies[0].from],
      [MessageType.ACK, `http://10.84.0.1:6977/boot/${MAC.birth2}.ipxe`, '10.84.0.1'],
    );
    // A client that is not PXE gets dnsmasq's answer only.
    const plain = await udhcpc('p0', uscript);
    assert.match(plain.env.ip ?? '', /^10\.84\.0\.1\d\d$/);
    assert.equal(plain.env.boot_file, undefined);
    assert.ok(server!.logs().some((l) => l.includes('proxyDHCP: not a PXE client')));
    await dns.stop();
  });
});
