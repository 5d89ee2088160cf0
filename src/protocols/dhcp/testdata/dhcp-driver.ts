// Runs Cradle's DHCP client inside a test network namespace (client.test.ts spawns it with
// `ip netns exec`) and prints one JSON line: the lease or the error, the client's log, how many
// sockets the process had before and after, and any log line written after dhcpRace returned
// (there must be none: a cancelled exchange that keeps retransmitting would show up there).
// With `raw`, it instead sends one hand-made REQUEST and prints the server's answer.
import fs from 'node:fs';
import { buildRequest, dhcpRace, type DhcpOptions } from '../client.ts';
import { decodeDhcpPacket, messageTypeName, messageType, optionString, parseMac } from '../packet.ts';
import { openDhcpSocket } from '../socket.ts';

interface Args {
  ifaces: { name: string; mac: string }[];
  opts?: Omit<DhcpOptions, 'signal' | 'log'>;
  abortAfterMs?: number;
  raw?: { requestIp: string; serverId: string };
}
const args = JSON.parse(process.argv[2]) as Args;

const socketCount = () =>
  fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // the fd readdir itself used
    }
  }).length;

const hexMap = (m: Map<number, Buffer>) => Object.fromEntries([...m].map(([k, v]) => [k, v.toString('hex')]));

if (args.raw) {
  const { name, mac } = args.ifaces[0];
  using sock = openDhcpSocket(name);
  const xid = 0x5eed;
  sock.send(buildRequest(xid, parseMac(mac), 0, { ip: args.raw.requestIp, serverId: args.raw.serverId }, {}));
  for (;;) {
    const d = await sock.receive(5000);
    if (!d) {
      console.log(JSON.stringify({ answer: 'none' }));
      break;
    }
    const p = decodeDhcpPacket(d.payload);
    if (p.xid !== xid) continue;
    console.log(JSON.stringify({ answer: messageTypeName(messageType(p)), message: optionString(p.options, 56) }));
    break;
  }
} else {
  const logs: string[] = [];
  const late: string[] = [];
  let returned = false;
  const before = socketCount();
  let peak = before; // proves the count sees the packet sockets at all
  const started = performance.now();
  let result: object;
  try {
    const lease = await dhcpRace(args.ifaces, {
      ...args.opts,
      signal: args.abortAfterMs ? AbortSignal.timeout(args.abortAfterMs) : undefined,
      log: (line) => {
        (returned ? late : logs).push(line);
        peak = Math.max(peak, socketCount());
      },
    });
    result = { ok: true, lease: { ...lease, options: hexMap(lease.options), packet: lease.packet.toString('hex') } };
  } catch (err) {
    result = { ok: false, error: { name: (err as Error).name, message: (err as Error).message } };
  }
  returned = true;
  const elapsedMs = performance.now() - started;
  const after = socketCount();
  await new Promise((resolve) => setTimeout(resolve, 300)); // room for a leaked exchange to log
  console.log(JSON.stringify({ ...result, logs, late, elapsedMs, socketsBefore: before, socketsPeak: peak, socketsAfter: after }));
}
