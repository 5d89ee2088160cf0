// `cradle machine add|import|list|show|set-state|rm` and `cradle subnet add|list|rm`: the machine
// database from the command line. Argument parsing and printing only; the rules (validation,
// conflicts, transactions) live in src/inventory/ so the boot server obeys the same ones.
import fs from 'node:fs';
import os from 'node:os';
import { Option, type Command } from 'commander';
import { configJson } from '../boot/config-files.ts';
import { importBatch, parseImportFile } from '../inventory/import.ts';
import type { SqlInventory } from '../inventory/sql-store.ts';
import {
  MACHINE_STATES,
  NotFoundError,
  type Lease,
  type Machine,
  type MachinePatch,
  type MachineState,
  type Subnet,
} from '../inventory/types.ts';
import { checkState, cidrOf, ValidationError } from '../inventory/validate.ts';
import { formatBytes, table } from '../util/format.ts';
import { dbOption, readLayout, withDb } from './db.ts';
import { dominatorDetails } from './machine-details.ts';

/** What each state means for the machine's next network boot (docs/inventory.md). */
export const STATE_MEANING: Record<MachineState, string> = {
  unknown: 'not to be installed: boots from its local disk',
  birth: 'new: its next network boot installs its image',
  installing: 'the installer is running: a network boot starts it again, unless the install already succeeded',
  healthy: 'installed and reported in: boots from its local disk',
  rebirth: 'to be reinstalled: its next network boot installs its image again',
  clean: 'to be reinstalled, like rebirth: its next network boot runs the installer',
  failed: "its last install failed ('cradle machine show' has the error): set birth or rebirth to try again",
};

const collect = (value: string, previous: string[]) => [...previous, value];

function parseTags(pairs: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new ValidationError(`--tag '${pair}' is not NAME=VALUE, e.g. --tag RequiredImage=debian/2026-11-22`);
    tags[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return tags;
}

const when = (iso: string) => iso.replace(/\.\d+Z$/, 'Z');

function addressOf(m: Machine, leases: Map<string, Lease>): string {
  if (m.ip) return m.ip;
  const lease = m.macs.map((mac) => leases.get(mac)).find(Boolean);
  return lease ? `${lease.ip} (pool)` : '-';
}

function showMachine(
  m: Machine,
  subnet: Subnet | undefined,
  lease: Lease | undefined,
  history: Awaited<ReturnType<SqlInventory['history']>>,
  progress: Awaited<ReturnType<SqlInventory['getProgress']>>,
): string {
  const lines = [
    `hostname:  ${m.hostname}`,
    `state:     ${m.state} since ${when(m.stateChangedAt)}: ${STATE_MEANING[m.state]}`,
    `MACs:      ${m.macs.join(', ')}${m.macs.length > 1 ? ' (the first boots)' : ''}`,
    `address:   ${m.ip ?? (lease ? `${lease.ip} from the pool, lease until ${when(lease.expiresAt)}` : 'none yet (from the pool at its next boot)')}`,
    `subnet:    ${subnet ? `${subnet.id} (${cidrOf(subnet)}, gateway ${subnet.gateway})` : '-'}`,
  ];
  if (m.ipmi) lines.push(`IPMI:      ${[m.ipmi.hostname, m.ipmi.ip, m.ipmi.mac].filter(Boolean).join(', ')}`);
  lines.push(...dominatorDetails(m));
  if (m.nodeGroup) lines.push(`group:     ${m.nodeGroup}`);
  const groupImage = m.nodeGroup ? `nodegroup/${m.nodeGroup} (its node group's newest build)` : undefined;
  lines.push(`image:     ${m.tags.RequiredImage ?? groupImage ?? "- (the boot server's default)"}`);
  const other = Object.entries(m.tags).filter(([k]) => k !== 'RequiredImage');
  if (other.length) lines.push(`tags:      ${other.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  const groupLayout = m.nodeGroup ? `node group ${m.nodeGroup}'s, else the boot server's default` : undefined;
  lines.push(
    `layout:    ${m.storageLayout ? 'its own storage-layout.json' : (groupLayout ?? "the boot server's default")}`,
  );
  if (m.firmware) lines.push(`firmware:  ${m.firmware.toUpperCase()}`);
  lines.push(`added:     ${when(m.createdAt)}`);
  if (progress) {
    const bytes = progress.bytesTotal
      ? ` ${formatBytes(progress.bytesDone ?? 0)} of ${formatBytes(progress.bytesTotal)}`
      : '';
    const eta = progress.etaSeconds != null ? `, about ${Math.round(progress.etaSeconds)} s left` : '';
    const result = progress.result
      ? progress.result.ok
        ? ', succeeded'
        : `, FAILED: ${progress.result.error ?? 'no detail'}`
      : '';
    lines.push(`progress:  ${progress.phase}${bytes}${eta}${result} (at ${when(progress.updatedAt)})`);
  }
  lines.push(
    'history:',
    ...(history.length
      ? history.map((h) => `  ${when(h.at)}  ${h.from} -> ${h.to}  ${h.reason}`)
      : ['  (no state changes yet)']),
  );
  return lines.join('\n');
}

function registerMachineCommands(program: Command): void {
  const machine = program.command('machine').description('machines in the machine database, and their states');

  machine
    .command('add')
    .description('add a machine (state unknown unless --state: it is not installed until you say so)')
    .argument('<hostname>')
    .option('--mac <mac>', 'MAC address; repeat for more interfaces, the boot interface first', collect, [])
    .option('--ip <ip>', 'static address (else one from the subnet pool)')
    .option('--subnet <id>', "the address's subnet (default: the subnet containing --ip)")
    .option('--tag <name=value>', 'tag, e.g. RequiredImage=debian/2026-11-22; repeatable', collect, [])
    .addOption(new Option('--state <state>', 'initial state').choices(MACHINE_STATES).default('unknown'))
    .option('--layout <file>', "the machine's own storage-layout.json")
    .option('--node-group <name>', "its node group: the group's newest image and layout, unless it names its own")
    .option('--ipmi-ip <ip>', 'address of its BMC')
    .option('--ipmi-mac <mac>', 'MAC of its BMC')
    .option('--ipmi-hostname <name>', 'host name of its BMC')
    .addOption(dbOption())
    .action(
      async (
        hostname: string,
        o: {
          mac: string[];
          ip?: string;
          subnet?: string;
          tag: string[];
          state: MachineState;
          layout?: string;
          nodeGroup?: string;
          ipmiIp?: string;
          ipmiMac?: string;
          ipmiHostname?: string;
          db: string;
        },
      ) => {
        if (o.mac.length === 0)
          throw new ValidationError('--mac is required: give the MAC address of the interface the machine boots from');
        const ipmi =
          o.ipmiIp || o.ipmiMac || o.ipmiHostname
            ? {
                ...(o.ipmiIp ? { ip: o.ipmiIp } : {}),
                ...(o.ipmiMac ? { mac: o.ipmiMac } : {}),
                ...(o.ipmiHostname ? { hostname: o.ipmiHostname } : {}),
              }
            : undefined;
        const m = await withDb(o.db, (inv) =>
          inv.addMachine({
            hostname,
            macs: o.mac,
            ip: o.ip,
            subnetId: o.subnet,
            tags: parseTags(o.tag),
            state: o.state,
            storageLayout: o.layout ? readLayout(o.layout) : undefined,
            nodeGroup: o.nodeGroup,
            ipmi,
          }),
        );
        console.log(
          `added ${m.hostname}: ${m.macs.join(', ')}${m.ip ? `, ${m.ip}` : ''}${m.subnetId ? ` in ${m.subnetId}` : ''}; state ${m.state}: ${STATE_MEANING[m.state]}`,
        );
      },
    );

  machine
    .command('import')
    .description(
      'import machines (all or none) from a Dominator config.json (or a JSON array of them) or CSV: hostname,mac,ip,subnet,ipmi_ip,tags[,state]',
    )
    .argument('<file>')
    .addOption(
      new Option('--state <state>', 'state of imported machines that name none (default unknown)').choices(
        MACHINE_STATES,
      ),
    )
    .addOption(dbOption())
    .action(async (file: string, o: { state?: MachineState; db: string }) => {
      const batch = parseImportFile(fs.readFileSync(file, 'utf8'), file);
      const r = await withDb(o.db, (inv) => importBatch(inv, batch, { state: o.state }));
      const subnets = [
        r.subnetsAdded.length ? `added subnets ${r.subnetsAdded.join(', ')}` : '',
        r.subnetsUnchanged.length ? `kept subnets ${r.subnetsUnchanged.join(', ')} (unchanged)` : '',
      ].filter(Boolean);
      console.log([`imported ${r.machines.length} machine(s)`, ...subnets].join('; '));
    });

  machine
    .command('list')
    .description('list machines')
    .addOption(new Option('--state <state>', 'only machines in this state').choices(MACHINE_STATES))
    .option('--tag <name=value>', 'only machines with this tag')
    .option('--json', 'print JSON')
    .addOption(dbOption())
    .action(async (o: { state?: MachineState; tag?: string; json?: boolean; db: string }) => {
      const tag = o.tag ? (Object.entries(parseTags([o.tag]))[0] as [string, string]) : undefined;
      const [machines, leases] = await withDb(
        o.db,
        async (inv) => [await inv.listMachines({ state: o.state, tag }), await inv.listLeases()] as const,
      );
      if (o.json) return console.log(JSON.stringify(machines, null, 2));
      const byMac = new Map(leases.map((l) => [l.mac, l]));
      const rows = machines.map((m) => [
        m.hostname,
        m.state,
        when(m.stateChangedAt),
        m.macs.join(','),
        addressOf(m, byMac),
        m.subnetId ?? '-',
        m.nodeGroup ?? '-',
        m.tags.RequiredImage ?? (m.nodeGroup ? `nodegroup/${m.nodeGroup}` : '-'),
      ]);
      console.log(table(['HOSTNAME', 'STATE', 'SINCE', 'MACS', 'IP', 'SUBNET', 'GROUP', 'IMAGE'], rows));
    });

  machine
    .command('show')
    .description('show a machine: details, state history and the last installer progress')
    .argument('<hostname>')
    .option('--json', 'print JSON')
    .addOption(dbOption())
    .action(async (hostname: string, o: { json?: boolean; db: string }) => {
      await withDb(o.db, async (inv) => {
        const m = await inv.getMachine(hostname);
        if (!m) throw new NotFoundError(`no machine named '${hostname}': see 'cradle machine list'`);
        const [history, progress, subnet] = [
          await inv.history(hostname),
          await inv.getProgress(hostname),
          m.subnetId ? await inv.getSubnet(m.subnetId) : undefined,
        ];
        const lease = (await Promise.all(m.macs.map((mac) => inv.getLease(mac)))).find(Boolean);
        if (o.json)
          return console.log(
            JSON.stringify({ machine: m, lease: lease ?? null, progress: progress ?? null, history }, null, 2),
          );
        console.log(showMachine(m, subnet, lease, history, progress));
      });
    });

  machine
    .command('export')
    .description("print a machine's config.json as the boot server serves it (Dominator's GetMachineInfoResponse)")
    .argument('<hostname>')
    .addOption(dbOption())
    .action(async (hostname: string, o: { db: string }) => {
      await withDb(o.db, async (inv) => {
        const m = await inv.getMachine(hostname);
        if (!m) throw new NotFoundError(`no machine named '${hostname}': see 'cradle machine list'`);
        process.stdout.write(configJson(m, await inv.listSubnets()));
      });
    });

  machine
    .command('set-state')
    .description(`move a machine to a state (${MACHINE_STATES.join(', ')}); it acts at its next network boot`)
    .argument('<hostname>')
    .argument('<state>')
    .option('--reason <text>', 'why, kept in its history')
    .addOption(dbOption())
    .action(async (hostname: string, state: string, o: { reason?: string; db: string }) => {
      const to = checkState(state);
      await withDb(o.db, async (inv) => {
        const before = await inv.getMachine(hostname);
        const m = await inv.setState(
          hostname,
          to,
          o.reason ?? `set by ${os.userInfo().username} with cradle machine set-state`,
        );
        console.log(
          before?.state === to
            ? `${hostname} is already ${to}: nothing changed`
            : `${hostname}: ${before?.state} -> ${m.state}: ${STATE_MEANING[m.state]}`,
        );
      });
    });

  machine
    .command('set')
    .description("change a machine's node group or storage layout (its state: set-state)")
    .argument('<hostname>')
    .option('--node-group <name>', 'move it to this node group')
    .option('--no-node-group', 'take it out of its node group')
    .option('--layout <file>', 'give it its own storage-layout.json')
    .option('--no-layout', "drop its own layout (its group's, or the boot server's default, applies)")
    .addOption(dbOption())
    .action(async (hostname: string, o: { nodeGroup?: string | false; layout?: string | false; db: string }) => {
      const patch: MachinePatch = {};
      if (o.nodeGroup !== undefined) patch.nodeGroup = o.nodeGroup || undefined;
      if (o.layout !== undefined) patch.storageLayout = o.layout ? readLayout(o.layout) : undefined;
      if (!Object.keys(patch).length) throw new ValidationError('nothing to change: give --node-group or --layout');
      const m = await withDb(o.db, (inv) => inv.updateMachine(hostname, patch));
      console.log(
        `${m.hostname}: node group ${m.nodeGroup ?? '-'}, layout ${m.storageLayout ? 'its own' : 'the default'}`,
      );
    });

  machine
    .command('rm')
    .description('remove a machine and its history')
    .argument('<hostname>')
    .addOption(dbOption())
    .action(async (hostname: string, o: { db: string }) => {
      await withDb(o.db, (inv) => inv.removeMachine(hostname));
      console.log(`removed ${hostname}`);
    });
}

function registerSubnetCommands(program: Command): void {
  const subnet = program
    .command('subnet')
    .description("subnets (Dominator's Subnets): addresses, gateway, DNS, VLAN, pool");

  subnet
    .command('add')
    .description('add a subnet')
    .argument('<id>', "Dominator's Subnets[].Id, e.g. Hypervisors")
    .requiredOption('--gateway <ip>', 'router address')
    .requiredOption('--mask <mask>', 'netmask, e.g. 255.255.255.0')
    .option('--dns <a,b>', 'DNS servers, comma-separated')
    .option('--domain <name>', 'DNS domain')
    .option('--manage', "installed machines get a VLAN and bridge for it (Dominator's Manage)")
    .option('--vlan <n>', 'VLAN id (1-4094)')
    .option('--pool <start-end>', 'addresses for machines without a static one, e.g. 10.0.0.100-10.0.0.199')
    .addOption(dbOption())
    .action(
      async (
        id: string,
        o: {
          gateway: string;
          mask: string;
          dns?: string;
          domain?: string;
          manage?: boolean;
          vlan?: string;
          pool?: string;
          db: string;
        },
      ) => {
        if (o.vlan !== undefined && !/^\d+$/.test(o.vlan))
          throw new ValidationError(`--vlan must be a number 1-4094, not '${o.vlan}'`);
        const pool = o.pool?.split('-');
        if (pool && pool.length !== 2)
          throw new ValidationError(`--pool '${o.pool}' is not START-END, e.g. 10.0.0.100-10.0.0.199`);
        const s = await withDb(o.db, (inv) =>
          inv.addSubnet({
            id,
            gateway: o.gateway,
            mask: o.mask,
            dnsServers: o.dns
              ? o.dns
                  .split(',')
                  .map((a) => a.trim())
                  .filter(Boolean)
              : [],
            manage: Boolean(o.manage),
            ...(o.domain ? { domainName: o.domain } : {}),
            ...(o.vlan !== undefined ? { vlanId: Number(o.vlan) } : {}),
            ...(pool ? { pool: { start: pool[0].trim(), end: pool[1].trim() } } : {}),
          }),
        );
        console.log(
          `added subnet ${s.id}: ${cidrOf(s)}, gateway ${s.gateway}${s.pool ? `, pool ${s.pool.start}-${s.pool.end}` : ', no pool'}`,
        );
      },
    );

  subnet
    .command('list')
    .description('list subnets')
    .option('--json', 'print JSON')
    .addOption(dbOption())
    .action(async (o: { json?: boolean; db: string }) => {
      const subnets = await withDb(o.db, (inv) => inv.listSubnets());
      if (o.json) return console.log(JSON.stringify(subnets, null, 2));
      const rows = subnets.map((s) => [
        s.id,
        cidrOf(s),
        s.gateway,
        s.dnsServers.join(',') || '-',
        s.domainName ?? '-',
        s.vlanId ? String(s.vlanId) : '-',
        s.manage ? 'yes' : 'no',
        s.pool ? `${s.pool.start}-${s.pool.end}` : '-',
      ]);
      console.log(table(['ID', 'NETWORK', 'GATEWAY', 'DNS', 'DOMAIN', 'VLAN', 'MANAGE', 'POOL'], rows));
    });

  subnet
    .command('rm')
    .description('remove a subnet (refused while machines use it; its pool leases go with it)')
    .argument('<id>')
    .addOption(dbOption())
    .action(async (id: string, o: { db: string }) => {
      await withDb(o.db, (inv) => inv.removeSubnet(id));
      console.log(`removed subnet ${id}`);
    });
}

export function registerInventoryCommands(program: Command): void {
  registerMachineCommands(program);
  registerSubnetCommands(program);
}
