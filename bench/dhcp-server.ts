// Benchmark: DHCP exchanges per second (DISCOVER, OFFER, REQUEST, ACK) for 1,000 simulated
// clients with distinct MACs, Cradle's DHCP server vs dnsmasq on the same namespace setup, in one
// run. Two scenarios: unknown MACs leased from a pool, and 1,000 reserved machines (static
// addresses). The server runs in one namespace on a veth, the load generator (a Node process with
// a UDP socket on port 68, broadcast flag set so both servers broadcast their replies) in another,
// keeping BENCH_DHCP_WINDOW clients in flight and retransmitting after 500 ms. Every run starts
// from an empty lease database (ours: the SQLite machine database; dnsmasq: its lease file), so
// each measures 1,000 new leases. Informative sides: our server on an in-memory inventory (the
// server's own cost without a database's), and with offers held for the whole lease time (the
// DISCOVER's allocation is the lease, so the REQUEST writes nothing; the default holds an offer
// for 60 s and renews it on the REQUEST: two database transactions per client).
//
//   node_modules/.bin/node bench/dhcp-server.ts   (BENCH_RUNS, BENCH_DHCP_CLIENTS, BENCH_DHCP_WINDOW)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { table } from '../src/util/format.ts';
import { cpuSeconds, exec, repoRoot, runBenchmark, tempDir, writeResults } from './lib.ts';
import { measureInterleaved, medians, ratioLine, secs, type Sample } from './measure.ts';

const NAME = 'dhcp-server';
const NS = { srv: `cradle-bench-dhcp-${process.pid}-srv`, cli: `cradle-bench-dhcp-${process.pid}-cli` };
const CLIENTS = Number(process.env.BENCH_DHCP_CLIENTS ?? 1000);
const WINDOW = Number(process.env.BENCH_DHCP_WINDOW ?? 50);
const PACKET_URL = pathToFileURL(path.join(repoRoot, 'src/protocols/dhcp/packet.ts')).href;
const SERVER_DRIVER = path.join(repoRoot, 'src/boot/dhcp/testdata/server-driver.ts');
const mac = (i: number) =>
  `02:b0:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const staticIp = (i: number) => `10.81.${100 + (i >> 8)}.${i & 255}`;

/** The load generator: prints {seconds, retransmits, naks} once every client has its ACK. */
const GENERATOR = `
import dgram from 'node:dgram';
import { decodeDhcpPacket, encodeDhcpPacket } from ${JSON.stringify(PACKET_URL)};
const { n, window, xidBase } = JSON.parse(process.argv[1]);
const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
await new Promise((r) => sock.bind(68, '0.0.0.0', r));
sock.setBroadcast(true);
const clients = Array.from({ length: n }, (_, i) => ({ i, mac: Buffer.from([2, 0xb0, 0, 0, i >> 8, i & 255]), xid: (xidBase + i) >>> 0, phase: 'idle', sentAt: 0, offer: null }));
const byXid = new Map(clients.map((c) => [c.xid, c]));
const prl = Buffer.from([1, 3, 6, 12, 15, 28, 51, 54]);
let next = 0, done = 0, retransmits = 0, naks = 0;
const send = (c) => {
  const o = new Map([[53, Buffer.from([c.phase === 'discover' ? 1 : 3])], [61, Buffer.concat([Buffer.from([1]), c.mac])], [55, prl]]);
  if (c.phase === 'request') { o.set(50, c.offer.ip); o.set(54, c.offer.server); }
  c.sentAt = performance.now();
  sock.send(encodeDhcpPacket({ op: 1, xid: c.xid, flags: 0x8000, chaddr: c.mac, options: o }), 67, '255.255.255.255');
};
const launch = () => { while (next < n && next - done < window) { const c = clients[next++]; c.phase = 'discover'; send(c); } };
const started = performance.now();
const finished = new Promise((resolve) => {
  sock.on('message', (msg) => {
    let p;
    try { p = decodeDhcpPacket(msg); } catch { return; }
    const c = byXid.get(p.xid);
    const t = p.options.get(53)?.[0];
    if (!c || !p.chaddr.subarray(0, 6).equals(c.mac)) return;
    if (t === 2 && c.phase === 'discover') { c.phase = 'request'; c.offer = { ip: msg.subarray(16, 20), server: p.options.get(54) }; send(c); }
    else if (t === 5 && c.phase === 'request') { c.phase = 'done'; if (++done === n) resolve(); else launch(); }
    else if (t === 6 && c.phase === 'request') { naks++; c.phase = 'discover'; send(c); }
  });
});
const timer = setInterval(() => {
  const now = performance.now();
  for (const c of clients) if ((c.phase === 'discover' || c.phase === 'request') && now - c.sentAt > 500) { retransmits++; send(c); }
}, 100);
sock.on('error', (err) => { console.error(err.message); process.exit(1); });
const deadline = setTimeout(() => { console.error(\`only \${done} of \${n} exchanges done in 120 s\`); process.exit(1); }, 120_000);
launch();
await finished;
clearTimeout(deadline);
const seconds = (performance.now() - started) / 1000;
clearInterval(timer);
sock.close();
console.log(JSON.stringify({ seconds, retransmits, naks }));`;

const inNs = (ns: string, cmd: string, args: string[]) => exec('ip', ['netns', 'exec', ns, cmd, ...args]);

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts a server in the server namespace and waits for `ready` in its output. */
function startServer(argv: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', NS.srv, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`${argv[0]} did not start: ${text}`)), 60_000);
    const onData = (d: Buffer) => {
      text += d;
      if (ready.test(text)) {
        clearTimeout(guard);
        child.stdout!.removeAllListeners('data');
        child.stderr!.removeAllListeners('data');
        child.stdout!.resume();
        child.stderr!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${argv[0]} exited (${code}): ${text}`)));
  });
}

await runBenchmark(NAME, async (c) => {
  const work = tempDir(c, NAME);
  for (const ns of Object.values(NS)) {
    await exec('ip', ['netns', 'add', ns]);
    c.defer(`ip netns del ${ns}`, () => exec('ip', ['netns', 'del', ns]));
    await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await exec('ip', ['-n', NS.cli, 'link', 'add', 'g0', 'type', 'veth', 'peer', 'name', 's0', 'netns', NS.srv]);
  await exec('ip', ['-n', NS.srv, 'addr', 'add', '10.81.0.1/16', 'dev', 's0']);
  await exec('ip', ['-n', NS.cli, 'addr', 'add', '10.81.0.2/16', 'dev', 'g0']);
  await exec('ip', ['-n', NS.srv, 'link', 'set', 's0', 'up']);
  await exec('ip', ['-n', NS.cli, 'link', 'set', 'g0', 'up']);
  // A route for 255.255.255.255, as a client's own (packet-socket) sending needs none.
  await exec('ip', ['-n', NS.cli, 'route', 'add', 'default', 'dev', 'g0']);

  const subnet = {
    id: 'bench',
    gateway: '10.81.0.254',
    mask: '255.255.0.0',
    domainName: 'bench.test',
    dnsServers: ['10.81.0.53'],
    manage: false,
    pool: { start: '10.81.1.0', end: '10.81.99.255' },
  };
  const machines = Array.from({ length: CLIENTS }, (_, i) => ({
    hostname: `node${i}`,
    macs: [mac(i)],
    ip: staticIp(i),
    subnetId: 'bench',
    tags: {},
    state: 'healthy',
  }));
  fs.writeFileSync(
    path.join(work, 'hosts'),
    `${machines.map((m) => `${m.macs[0]},${m.ip},${m.hostname}`).join('\n')}\n`,
  );
  let running: { child: ChildProcess; pid: number } | undefined;
  let run = 0;

  const dnsmasq = (reservations: boolean) => async () => {
    await stop(running?.child);
    const leases = path.join(work, `dnsmasq-${++run}.leases`);
    const child = await startServer(
      [
        '/usr/sbin/dnsmasq',
        '--keep-in-foreground',
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--user=root',
        '--interface=s0',
        '--bind-interfaces',
        '--dhcp-authoritative',
        '--no-ping',
        '--quiet-dhcp',
        '--log-facility=-',
        '--dhcp-lease-max=100000',
        `--dhcp-leasefile=${leases}`,
        `--dhcp-range=${reservations ? '10.81.0.0,static' : '10.81.1.0,10.81.99.255'},255.255.0.0,4h`,
        '--dhcp-option=3,10.81.0.254',
        '--dhcp-option=6,10.81.0.53',
        '--dhcp-option=15,bench.test',
        ...(reservations ? [`--dhcp-hostsfile=${path.join(work, 'hosts')}`] : []),
      ],
      /DHCP, sockets bound exclusively to interface s0/,
    );
    running = { child, pid: child.pid! }; // ip netns exec execs the program: the pid is the server's
  };
  const cradle =
    (reservations: boolean, db: 'sqlite' | 'memory', holdWholeLease = false) =>
    async () => {
      await stop(running?.child);
      // memory: with no file, nothing is persisted: the server's own cost without a database's.
      const where = db === 'sqlite' ? `sqlite:${path.join(work, `cradle-${++run}.db`)}` : 'memory:';
      const args = {
        interfaces: ['s0'],
        db: where,
        quiet: true,
        config: {
          unknownMachines: reservations ? 'ignore' : 'lease',
          ...(holdWholeLease ? { offerHoldSeconds: 14_400 } : {}),
        },
        seed: { subnets: [subnet], machines: reservations ? machines : [] },
      };
      const child = await startServer(
        [process.execPath, '--disable-warning=ExperimentalWarning', SERVER_DRIVER, JSON.stringify(args)],
        /"ready":true/,
      );
      running = { child, pid: child.pid! };
    };
  c.defer('stop the last server', () => stop(running?.child));

  let xidBase = 0x10000000;
  const load = async (): Promise<Sample> => {
    const cpu0 = cpuSeconds([running!.pid]);
    xidBase += 0x100000;
    const res = await inNs(NS.cli, process.execPath, [
      '--input-type=module',
      '-e',
      GENERATOR,
      JSON.stringify({ n: CLIENTS, window: WINDOW, xidBase }),
    ]);
    const r = JSON.parse(res.stdout) as { seconds: number; retransmits: number; naks: number };
    return {
      seconds: r.seconds,
      perSecond: CLIENTS / r.seconds,
      serverCpu: cpuSeconds([running!.pid]) - cpu0,
      retransmits: r.retransmits,
      naks: r.naks,
    };
  };

  const results: Record<string, unknown> = {};
  for (const reservations of [false, true]) {
    const scenario = reservations ? 'reservations' : 'pool';
    console.log(`\n${NAME} ${scenario}: ${CLIENTS} clients, ${WINDOW} in flight`);
    const sides = [
      { name: `cradle (SQLite) ${scenario}`, prepare: cradle(reservations, 'sqlite'), run: load },
      { name: `dnsmasq ${scenario}`, prepare: dnsmasq(reservations), run: load },
      { name: `cradle (in-memory) ${scenario}`, prepare: cradle(reservations, 'memory'), run: load },
    ];
    // An offer held for the whole lease time: one database write per client instead of two.
    if (!reservations)
      sides.push({ name: 'cradle (SQLite, whole-lease hold) pool', prepare: cradle(false, 'sqlite', true), run: load });
    const samples = await measureInterleaved(sides);
    const m = Object.fromEntries(sides.map((s) => [s.name, medians(samples[s.name])]));
    console.log();
    console.log(
      table(
        ['', 'median', 'exchanges/s', 'server CPU s', 'retransmits', 'runs (s)'],
        sides.map((s) => {
          const x = m[s.name];
          return [
            s.name,
            secs(x.seconds),
            x.perSecond.toFixed(0),
            x.serverCpu.toFixed(2),
            String(x.retransmits),
            samples[s.name].map((y) => y.seconds.toFixed(2)).join(' '),
          ];
        }),
      ),
    );
    const ours = m[sides[0].name];
    const peer = m[sides[1].name];
    results[scenario] = { samples, medians: m, ratio: ours.perSecond / peer.perSecond };
    console.log(
      ratioLine(
        `${NAME} ${scenario}`,
        { label: 'cradle', value: `${ours.perSecond.toFixed(0)}/s`, n: ours.perSecond },
        { label: 'dnsmasq', value: `${peer.perSecond.toFixed(0)}/s`, n: peer.perSecond },
        'exchanges per second, higher is better for cradle; target >= 1.00',
      ),
    );
  }
  await stop(running?.child);
  const file = writeResults(NAME, {
    clients: CLIENTS,
    window: WINDOW,
    ...results,
    target: 'cradle >= peer (ratio >= 1) in exchanges per second',
  });
  console.log(`results: ${file}`);
});
