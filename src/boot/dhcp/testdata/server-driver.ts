// Runs createDhcpServer in a network namespace for server.test.ts and bench/dhcp-server.ts
// (spawned with `ip netns exec`). Argument: JSON {interfaces, config, db, seed}. db is
// `sqlite:FILE` (the real machine database) or `memory:FILE` (testdata/memory-inventory.ts).
// Prints JSON lines: {"ready":true}, {"log":…}, {"unknown":mac,"info":…}, answers to commands
// read as JSON lines on stdin ({"cmd":"stats"|"leases"|"machine"|"setState"}), and {"final":stats}
// after SIGTERM. The process exits 0 only after a clean close().
import readline from 'node:readline';
import type { Inventory, NewMachine, Subnet } from '../../../inventory/types.ts';
import type { DhcpServerConfig } from '../policy-types.ts';
import { createDhcpServer } from '../server.ts';
import { memoryInventory } from './memory-inventory.ts';

interface Args {
  interfaces: string[];
  config: DhcpServerConfig;
  db: string;
  seed?: { subnets?: Subnet[]; machines?: NewMachine[] };
  quiet?: boolean;
}
const args = JSON.parse(process.argv[2]) as Args;
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

async function open(): Promise<Inventory> {
  if (args.db.startsWith('memory:')) return memoryInventory(args.db.slice(7), args.seed);
  const { openInventory } = (await import('../../../inventory/open.ts')) as { openInventory: (url: string) => Promise<Inventory> };
  const inv = await openInventory(args.db);
  for (const s of args.seed?.subnets ?? []) if (!(await inv.getSubnet(s.id))) await inv.addSubnet(s);
  for (const m of args.seed?.machines ?? []) if (!(await inv.getMachine(m.hostname))) await inv.addMachine(m);
  return inv;
}

const inventory = await open();
const server = createDhcpServer({
  interfaces: args.interfaces,
  inventory,
  config: args.config,
  log: args.quiet ? undefined : (line) => out({ log: line }),
  onUnknownMachine: async (mac, info) => void out({ unknown: mac, info }),
});
await server.start();
out({ ready: true });

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  try {
    const c = JSON.parse(line) as { cmd: string; hostname?: string; state?: string; id?: number };
    if (c.cmd === 'stats') out({ id: c.id, stats: server.stats });
    else if (c.cmd === 'leases') out({ id: c.id, leases: await inventory.listLeases() });
    else if (c.cmd === 'machine') out({ id: c.id, machine: await inventory.getMachine(c.hostname!) });
    else if (c.cmd === 'setState') out({ id: c.id, machine: await inventory.setState(c.hostname!, c.state as never, 'test') });
    else out({ id: c.id, error: `unknown command ${c.cmd}` });
  } catch (err) {
    out({ error: (err as Error).message });
  }
});

process.once('SIGTERM', async () => {
  await server.close();
  await inventory.close();
  out({ final: server.stats });
  process.exit(0);
});
