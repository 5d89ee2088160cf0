// Cradle's DHCP client against real peers, in network namespaces this test creates (never the
// host's interfaces): <p>-srv runs dnsmasq on srv0 (10.77.0.1/24) and has a silent srv1;
// <p>-fake runs a scripted server (testdata/fake-server.ts) on fk0 (10.79.0.1/24); <p>-cli holds
// the peers cli0, cli1, cli2, up and without any address, where testdata/dhcp-driver.ts runs
// the client. busybox udhcpc against the same dnsmasq proves the setup itself is sound.
// Also the packet log (log.ts), which needs no root.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { leaseFromAck, PARAMETER_REQUEST_LIST, type DhcpLease } from './client.ts';
import { writeDhcpLog } from './log.ts';
import { decodeDhcpPacket, encodeDhcpPacket, parseIp } from './packet.ts';

const node = path.resolve(import.meta.dirname, '../../../node_modules/.bin/node');
const testdata = path.join(import.meta.dirname, 'testdata');
const prefix = `cradle-dhcp-${process.pid}`;
const NS = { srv: `${prefix}-srv`, cli: `${prefix}-cli`, fake: `${prefix}-fake` };
const LIVE = { name: 'cli0', mac: '02:cd:00:00:00:01' }; // dnsmasq, reserved 10.77.0.42 "node42"
const DEAD = { name: 'cli1', mac: '02:cd:00:00:00:02' }; // a link with nobody answering
const FAKE = { name: 'cli2', mac: '02:cd:00:00:00:03' }; // the scripted server, when running

const sh = (...args: string[]) =>
  execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (ns: string, ...args: string[]) => sh('ip', 'netns', 'exec', ns, ...args);

interface Driven {
  ok: boolean;
  lease?: Omit<DhcpLease, 'options' | 'packet'> & { options: Record<string, string>; packet: string };
  error?: { name: string; message: string };
  logs: string[];
  late: string[];
  elapsedMs: number;
  socketsBefore: number;
  socketsPeak: number;
  socketsAfter: number;
}

/** Runs the driver in the client namespace (behind `wrap`, e.g. setpriv); its JSON and wall time. */
function drive(args: object, wrap: string[] = [], limitMs = 20_000): Promise<Driven & { wallMs: number }> {
  const started = performance.now();
  const driver = [
    node,
    '--disable-warning=ExperimentalWarning',
    path.join(testdata, 'dhcp-driver.ts'),
    JSON.stringify(args),
  ];
  const child = spawn('ip', ['netns', 'exec', NS.cli, ...wrap, ...driver]);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const guard = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      clearTimeout(guard);
      if (code !== 0) reject(new Error(`driver exited ${code}: ${err}${out}`));
      else resolve({ ...JSON.parse(out.trim().split('\n').pop()!), wallMs: performance.now() - started });
    });
  });
}

/** Starts a long-running process in a namespace and waits for `ready` in its output. */
function start(ns: string, argv: string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv]);
  let text = '';
  const output = () => text;
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`${argv[0]} did not start: ${text}`)), 10_000);
    const onData = (d: Buffer) => {
      text += d;
      if (ready.test(text)) {
        clearTimeout(guard);
        resolve({ child, output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${argv[0]} exited ${code}: ${text}`)));
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

const isRoot = process.getuid?.() === 0;
const haveTools = fs.existsSync('/usr/sbin/dnsmasq') && fs.existsSync('/usr/bin/busybox');

describe('DHCP client against real servers in network namespaces', {
  skip: !isRoot || !haveTools ? 'needs root, dnsmasq and busybox' : false,
}, () => {
  let tmp: string;
  let dnsmasq: Awaited<ReturnType<typeof start>> | undefined;
  let fake: Awaited<ReturnType<typeof start>> | undefined;

  before(async () => {
    // Namespaces left by an earlier run of this test that was killed (its pid is gone).
    for (const line of sh('ip', 'netns', 'list').split('\n')) {
      const m = /^(cradle-dhcp-(\d+)-\w+)/.exec(line);
      if (m && !fs.existsSync(`/proc/${m[2]}`)) sh('ip', 'netns', 'del', m[1]);
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-dhcp-'));
    for (const ns of Object.values(NS)) {
      sh('ip', 'netns', 'add', ns);
      sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    }
    // Created from inside the client namespace, so no device ever appears on the host.
    sh(
      'ip',
      '-n',
      NS.cli,
      'link',
      'add',
      'cli0',
      'address',
      LIVE.mac,
      'type',
      'veth',
      'peer',
      'name',
      'srv0',
      'netns',
      NS.srv,
    );
    sh(
      'ip',
      '-n',
      NS.cli,
      'link',
      'add',
      'cli1',
      'address',
      DEAD.mac,
      'type',
      'veth',
      'peer',
      'name',
      'srv1',
      'netns',
      NS.srv,
    );
    sh(
      'ip',
      '-n',
      NS.cli,
      'link',
      'add',
      'cli2',
      'address',
      FAKE.mac,
      'type',
      'veth',
      'peer',
      'name',
      'fk0',
      'netns',
      NS.fake,
    );
    sh('ip', '-n', NS.srv, 'addr', 'add', '10.77.0.1/24', 'dev', 'srv0');
    sh('ip', '-n', NS.fake, 'addr', 'add', '10.79.0.1/24', 'dev', 'fk0');
    for (const [ns, dev] of [
      [NS.srv, 'srv0'],
      [NS.srv, 'srv1'],
      [NS.fake, 'fk0'],
      [NS.cli, 'cli0'],
      [NS.cli, 'cli1'],
      [NS.cli, 'cli2'],
    ]) {
      sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    }
    // systemd's default (loose reverse-path filtering): a UDP socket would miss every reply here.
    inNs(NS.cli, 'sysctl', '-q', 'net.ipv4.conf.all.rp_filter=2');
    dnsmasq = await start(
      NS.srv,
      [
        '/usr/sbin/dnsmasq',
        '--keep-in-foreground',
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--user=root',
        '--interface=srv0',
        '--bind-interfaces',
        '--dhcp-authoritative',
        '--no-ping',
        '--log-dhcp',
        '--log-facility=-',
        '--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h',
        '--dhcp-option=3,10.77.0.1',
        '--dhcp-option=6,10.77.0.53',
        '--dhcp-option=15,lab.test',
        '--dhcp-option=66,tftp.lab.test',
        '--dhcp-boot=pxelinux.0,,10.77.0.1',
        `--dhcp-host=${LIVE.mac},10.77.0.42,node42`,
        `--dhcp-leasefile=${tmp}/leases`,
        `--pid-file=${tmp}/dnsmasq.pid`,
      ],
      /DHCP, sockets bound exclusively to interface srv0/,
    );
  });

  after(async () => {
    await stop(dnsmasq?.child);
    await stop(fake?.child);
    for (const ns of Object.values(NS)) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        // never created (before() failed early)
      }
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    assert.ok(!sh('ip', 'netns', 'list').includes(prefix), 'a test namespace survived');
  });

  it('the setup works: busybox udhcpc gets the reserved lease on cli0', () => {
    const script = path.join(tmp, 'udhcpc.sh');
    fs.writeFileSync(
      script,
      '#!/bin/sh\n[ "$1" = bound ] && env | grep -E "^(ip|subnet|router|dns|domain|hostname|siaddr|boot_file|tftp)="\nexit 0\n',
      { mode: 0o755 },
    );
    const env = Object.fromEntries(
      inNs(
        NS.cli,
        'busybox',
        'udhcpc',
        '-i',
        'cli0',
        '-n',
        '-q',
        '-f',
        '-t',
        '5',
        '-T',
        '1',
        '-O',
        'tftp',
        '-s',
        script,
      )
        .split('\n')
        .filter((l) => /^\w+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    assert.deepEqual(env, {
      ip: '10.77.0.42',
      subnet: '255.255.255.0',
      router: '10.77.0.1',
      dns: '10.77.0.53',
      domain: 'lab.test',
      hostname: 'node42',
      siaddr: '10.77.0.1',
      boot_file: 'pxelinux.0',
      tftp: 'tftp.lab.test',
    });
    assert.equal(
      inNs(NS.cli, 'ip', '-4', 'addr', 'show', 'dev', 'cli0').includes('inet '),
      false,
      'the script must not configure cli0',
    );
  });

  let real: DhcpLease | undefined;
  it('gets the full lease from dnsmasq on an address-less interface', async () => {
    const r = await drive({
      ifaces: [LIVE],
      opts: { attemptTimeoutMs: 500, timeoutMs: 10_000, hostname: 'cradle-test', clientArch: 7 },
    });
    assert.ok(r.ok, JSON.stringify(r));
    const { options, packet, ...lease } = r.lease!;
    assert.deepEqual(lease, {
      interface: 'cli0',
      mac: LIVE.mac,
      ip: '10.77.0.42',
      subnetMask: '255.255.255.0',
      routers: ['10.77.0.1'],
      dnsServers: ['10.77.0.53'],
      hostname: 'node42',
      domainName: 'lab.test',
      serverId: '10.77.0.1',
      siaddr: '10.77.0.1',
      tftpServerName: 'tftp.lab.test',
      bootFile: 'pxelinux.0',
      leaseSeconds: 3600,
    });
    // Option 66 is text; dnsmasq sends it as a C string, the lease drops the NUL.
    assert.equal(Buffer.from(options['66'], 'hex').toString(), 'tftp.lab.test\0');
    assert.deepEqual(r.late, []);
    assert.equal(r.socketsAfter, r.socketsBefore);
    // dnsmasq saw what we sent.
    const log = dnsmasq!.output();
    assert.match(log, /vendor class: Cradle-installer/);
    assert.match(log, /client provides name: cradle-test/);
    const raw = Buffer.from(packet, 'hex');
    real = {
      ...lease,
      options: new Map(Object.entries(options).map(([k, v]) => [Number(k), Buffer.from(v, 'hex')])),
      packet: raw,
    };
    assert.deepEqual(decodeDhcpPacket(raw).yiaddr, '10.77.0.42');
  });

  it('logs the real ACK in the original layout', (t) => {
    if (!real) return t.skip('no lease from the previous test');
    const dir = writeDhcpLog(path.join(tmp, 'dhcp-log'), real);
    assert.equal(dir, path.join(tmp, 'dhcp-log', '0'));
    assert.equal(fs.readFileSync(path.join(dir, 'router'), 'utf8'), '10.77.0.1\n');
    const options = fs.readFileSync(path.join(dir, 'options'), 'utf8');
    assert.match(options, /^Code: {2}15\/domain-name\n {2}value: 0x6c61622e74657374 \("lab\.test"\)$/m);
    // The NUL dnsmasq appends is not printable, so (as in the original) no text is shown.
    assert.match(options, /^Code: {2}66\/tftp-server-name\n {2}value: 0x746674702e6c61622e7465737400$/m);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'packet')), real.packet);
  });

  it('races two interfaces: the live one wins, the other is cancelled and nothing leaks', async () => {
    const r = await drive({ ifaces: [DEAD, LIVE], opts: { attemptTimeoutMs: 400, timeoutMs: 10_000 } });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.lease!.interface, 'cli0');
    assert.ok(
      r.logs.some((l) => l.startsWith('cli1: sent DISCOVER')),
      'cli1 took part',
    );
    assert.deepEqual(r.late, [], 'no exchange may go on after the race is decided');
    assert.equal(r.socketsPeak, r.socketsBefore + 2, 'one packet socket per interface while racing');
    assert.equal(r.socketsAfter, r.socketsBefore, 'every packet socket closed');
    assert.ok(r.elapsedMs < 2000, `took ${r.elapsedMs} ms`);
    assert.ok(r.wallMs < r.elapsedMs + 3000, `the driver lingered: ${r.wallMs} ms`);
  });

  it('no server: a clean timeout naming the interfaces, within timeoutMs', async () => {
    const r = await drive({ ifaces: [DEAD, FAKE], opts: { attemptTimeoutMs: 300, timeoutMs: 1500 } });
    assert.equal(r.ok, false);
    assert.equal(r.error!.name, 'DhcpError');
    assert.match(
      r.error!.message,
      /^no DHCP lease on cli1, cli2 within 1\.5 s \(cli1: no OFFER after \d+ DISCOVER\(s\); cli2: no OFFER/,
    );
    assert.ok(r.elapsedMs >= 1500 && r.elapsedMs < 2000, `took ${r.elapsedMs} ms`);
    assert.deepEqual(r.late, []);
    assert.equal(r.socketsAfter, r.socketsBefore);
  });

  it("the caller's AbortSignal stops the race and closes the sockets", async () => {
    const r = await drive({ ifaces: [DEAD], abortAfterMs: 400, opts: { attemptTimeoutMs: 300 } });
    assert.equal(r.error?.name, 'TimeoutError'); // AbortSignal.timeout's reason, passed through
    assert.ok(r.elapsedMs < 900, `took ${r.elapsedMs} ms`);
    assert.equal(r.socketsAfter, r.socketsBefore);
  });

  it('fails at once when no interface can be used', async () => {
    const r = await drive({ ifaces: [{ name: 'nope0', mac: '02:00:00:00:00:09' }] });
    assert.equal(r.error?.message, "DHCP failed on every interface: nope0: no network interface named 'nope0'");
  });

  it('without CAP_NET_RAW: a clear error, not a hang', async () => {
    const r = await drive({ ifaces: [DEAD], opts: { timeoutMs: 5000 } }, [
      'setpriv',
      '--reuid=0',
      '--inh-caps=-all',
      '--bounding-set=-net_raw',
    ]);
    assert.equal(
      r.error?.message,
      'DHCP failed on every interface: cli1: EPERM: socket(AF_PACKET) failed on cli1 (DHCP needs root: CAP_NET_RAW for a packet socket)',
    );
  });

  it('dnsmasq NAKs a REQUEST for an address not on its network', async () => {
    // A hand-made REQUEST (the client itself only asks for what it was offered).
    const r = (await drive({ ifaces: [LIVE], raw: { requestIp: '192.0.2.7', serverId: '10.77.0.1' } })) as unknown as {
      answer: string;
    };
    assert.equal(r.answer, 'NAK', JSON.stringify(r));
  });

  describe('a scripted server', () => {
    after(() => stop(fake?.child));
    const serve = async (scenario: string) => {
      await stop(fake?.child);
      fake = await start(
        NS.fake,
        [node, '--disable-warning=ExperimentalWarning', path.join(testdata, 'fake-server.ts'), scenario],
        /"ready":true/,
      );
    };
    const seen = () =>
      fake!
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{"type"'))
        .map((l) => JSON.parse(l));

    it('NAK restarts from DISCOVER; a 7-byte DNS option rejects that ACK; an ACK without router is a lease', async () => {
      await serve('nak-baddns-norouter');
      const r = await drive({
        ifaces: [FAKE],
        opts: {
          attemptTimeoutMs: 300,
          timeoutMs: 10_000,
          vendorClass: 'Cradle-test',
          hostname: 'cradle-client',
          clientArch: 7,
        },
      });
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.lease!.ip, '10.79.0.50');
      assert.deepEqual(r.lease!.routers, []);
      assert.deepEqual(r.lease!.dnsServers, ['10.79.0.53']);
      const logs = r.logs.join('\n');
      assert.match(logs, /cli2: NAK from 10\.79\.0\.1 \("address not available"\); DISCOVER again in 250 ms/);
      assert.match(
        logs,
        /cli2: rejecting ACK from 10\.79\.0\.1: option 6 \(domain-name-servers\) has 7 bytes, not a multiple of 4/,
      );
      assert.match(logs, /cli2: the ACK names no router \(option 3\)/);
      // What the client sent, as the server saw it.
      const msgs = seen();
      assert.deepEqual(
        msgs.map((m) => m.type).filter((t, i, a) => t !== a[i - 1]),
        [1, 3, 1, 3],
      );
      const discover = msgs[0].options;
      const prl = [...Buffer.from(discover['55'], 'hex')];
      for (const code of [1, 3, 6, 12, 15, 28, 42, 51, 54, 66, 67])
        assert.ok(prl.includes(code), `option 55 lacks ${code}`);
      assert.deepEqual(prl, PARAMETER_REQUEST_LIST);
      assert.equal(discover['57'], '05dc');
      assert.equal(discover['61'], '0102cd00000003');
      assert.equal(Buffer.from(discover['60'], 'hex').toString(), 'Cradle-test');
      assert.equal(discover['93'], '0007');
      assert.equal(Buffer.from(discover['12'], 'hex').toString(), 'cradle-client');
      const request = msgs.find((m) => m.type === 3)!;
      assert.equal(request.options['50'], parseIp('10.79.0.50').toString('hex'));
      assert.equal(request.options['54'], parseIp('10.79.0.1').toString('hex'));
      assert.equal(request.xid, msgs[0].xid);
    });

    it('keeps every router, and reads options split by RFC 3396 and carried in the file field', async () => {
      await serve('rich');
      const r = await drive({ ifaces: [FAKE], opts: { attemptTimeoutMs: 300, timeoutMs: 10_000 } });
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual(r.lease!.routers, ['10.79.0.1', '10.79.0.2', '10.79.0.3']);
      assert.deepEqual(r.lease!.dnsServers, ['10.79.0.53', '10.79.0.54']);
      assert.equal(r.lease!.domainName, 'fake.test');
      assert.equal(r.lease!.bootFile, 'grubx64.efi');
      assert.equal(r.lease!.tftpServerName, 'tftp.fake.test');
      assert.equal(r.lease!.siaddr, undefined);
    });
  });
});

describe('packet log', () => {
  const lease = () => {
    const raw = encodeDhcpPacket({
      op: 2,
      xid: 1,
      chaddr: '52:54:00:00:00:01',
      yiaddr: '10.0.0.7',
      options: new Map([
        [53, Buffer.from([5])],
        [1, parseIp('255.255.0.0')],
        [3, Buffer.concat([parseIp('10.0.0.1'), parseIp('10.0.0.2')])],
        [12, Buffer.from('node7.example')],
        [224, Buffer.from([0, 1, 0x7f])],
      ]),
    });
    return leaseFromAck({ name: 'eth0', mac: '52:54:00:00:00:01' }, decodeDhcpPacket(raw), raw);
  };

  it('writes the original layout, mode 0644 whatever the umask', (t) => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-dhcplog-'));
    t.after(() => fs.rmSync(base, { recursive: true, force: true }));
    const old = process.umask(0o077);
    let dir: string;
    try {
      dir = writeDhcpLog(path.join(base, 'dhcp'), lease());
    } finally {
      process.umask(old);
    }
    const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
    assert.deepEqual(fs.readdirSync(dir).sort(), [
      'interface',
      'ipaddr',
      'netmask',
      'option.12_hostname',
      'option.1_subnet-mask',
      'option.224_unknown',
      'option.3_router',
      'option.53_message-type',
      'options',
      'packet',
      'router',
    ]);
    assert.equal(read('interface'), 'eth0\n');
    assert.equal(read('ipaddr'), '10.0.0.7\n');
    assert.equal(read('netmask'), '255.255.0.0\n');
    assert.equal(read('router'), '10.0.0.1\n10.0.0.2\n');
    assert.equal(
      read('options'),
      [
        'Code:   1/subnet-mask',
        '  value: 0xffff0000',
        'Code:   3/router',
        '  value: 0x0a0000010a000002',
        'Code:  12/hostname',
        '  value: 0x6e6f6465372e6578616d706c65 ("node7.example")',
        'Code:  53/message-type',
        '  value: 0x05',
        'Code: 224/unknown',
        '  value: 0x00017f',
        '',
      ].join('\n'),
    );
    assert.deepEqual(fs.readFileSync(path.join(dir, 'option.12_hostname')), Buffer.from('node7.example'));
    for (const f of fs.readdirSync(dir)) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o644, f);
  });

  it('takes the first free number, with no limit at 100', (t) => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-dhcplog-'));
    t.after(() => fs.rmSync(base, { recursive: true, force: true }));
    for (let n = 0; n <= 100; n++) fs.mkdirSync(path.join(base, String(n)));
    fs.mkdirSync(path.join(base, '102'));
    const l = lease();
    assert.equal(writeDhcpLog(base, l), path.join(base, '101'));
    assert.equal(writeDhcpLog(base, l), path.join(base, '103'));
    assert.equal(fs.existsSync(path.join(base, '103', 'router')), true);
    assert.equal(writeDhcpLog(base, { ...l, routers: [], subnetMask: undefined }), path.join(base, '104'));
    assert.equal(fs.existsSync(path.join(base, '104', 'router')), false, 'router only when known');
    assert.equal(fs.existsSync(path.join(base, '104', 'netmask')), false);
  });
});
