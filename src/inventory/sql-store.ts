// The machine database in SQL, written once for both stores. The two adapters (sqlite.ts,
// postgres.ts) differ in connections, transactions and error codes; the statements here are the
// common subset of both dialects, with `$1` placeholders and ISO 8601 times. Every multi-row change
// runs in one transaction. Addresses are the one place where concurrent writers meet (several boot
// servers sharing PostgreSQL): pool allocation and static-address changes serialize on one lock and
// UNIQUE constraints back that up, so no address is ever handed out twice.
import {
  checkMac,
  checkNewMachine,
  checkNodeGroup,
  checkNodeGroupPatchKeys,
  checkPatchKeys,
  checkState,
  checkSubnet,
  ipToInt,
  ipv4Schema,
  normalizeMac,
  ValidationError,
} from './validate.ts';
import {
  ConflictError,
  type InstallProgress,
  type Inventory,
  type Lease,
  type Machine,
  type MachinePatch,
  type MachineState,
  type NewMachine,
  type NewNodeGroup,
  type NodeGroup,
  type NodeGroupPatch,
  type StateChange,
  type Subnet,
} from './types.ts';
import { allocateOn } from './sql-leases.ts';
import { LookupCache } from './sql-lookup-cache.ts';
import {
  checkMacsFreeOn,
  checkNodeGroupExistsOn,
  claimAddressOn,
  listMachinesOn,
  loadMachineOn,
  subnetForOn,
  writeDetailsOn,
} from './sql-machines.ts';
import { addSubnetOn, removeSubnetOn, subnetOn, subnetsOn } from './sql-subnets.ts';
import { checkInterfaceAddressesOn, checkNetworkSubnetsOn } from './sql-interfaces.ts';
import {
  noNodeGroup,
  nodeGroupOn,
  nodeGroupsOn,
  nodeGroupsUsingKitOn,
  removeNodeGroupOn,
  writeNodeGroupOn,
} from './sql-node-groups.ts';
import { appendLogOn, logOf, MAX_LOG_LINES, progressOf, recordProgressOn } from './sql-install-log.ts';
import {
  list,
  MACHINE_COLUMNS,
  machineValues,
  noMachine,
  noSubnet,
  type SqlConn,
  type SqlDb,
  toLease,
} from './sql-rows.ts';

/** An Inventory whose changes can be grouped into one transaction (imports). */
export interface TransactionalInventory extends Inventory {
  transaction<T>(fn: (inv: Inventory) => Promise<T>): Promise<T>;
}

/** pg_advisory_xact_lock key serializing address changes on PostgreSQL ("addr"). */
const ADDRESS_LOCK = 0x61646472;
/** Attempts of a lease allocation that lost a race on the UNIQUE address (PostgreSQL only). */
const ALLOCATE_ATTEMPTS = 5;
/** Machines remembered by MAC and by address (each), and "no such machine" answers (each). */
const LOOKUP_CACHE_ENTRIES = 16_384;
const LOOKUP_CACHE_MISSES = 4096;
/** How long a remembered lookup is trusted where the database cannot tell of others' commits (PostgreSQL). */
const LOOKUP_CACHE_TTL_MS = 1000;

/**
 * What a write may change, as the lookup cache sees it: 'machines' (the default) for anything a
 * machine lookup reads (machines, their MACs and tags, subnets), which drops the cache; 'leases
 * or logs' for writes to the leases, the installer's progress and log only, which keeps it.
 */
type Touches = 'machines' | 'leases or logs';

const CONFLICTS: Record<string, string> = {
  'machines.hostname': 'that host name is already taken',
  'machine_macs.mac': 'one of its MAC addresses already belongs to another machine',
  'machines.ip': 'its address is already another machine’s',
  'subnets.id': 'that subnet id is already taken',
  'node_groups.name': 'that node group name is already taken',
  'leases.ip': 'the address was leased by another boot server at the same moment',
};

export class SqlInventory implements TransactionalInventory {
  /** The database itself. Changes made through it directly bypass the lookup cache: write through the store. */
  readonly db: SqlDb;
  /** Set on the instance handed to a transaction's callback: everything runs on that connection. */
  private readonly tx: SqlConn | undefined;
  /**
   * Machine lookups by MAC and address (sql-lookup-cache.ts), shared with the instances handed to
   * transactions, which never read from it (a transaction sees its own uncommitted changes).
   */
  readonly lookups: LookupCache;
  /** On a transaction's instance: a write in it may have changed what the lookups read. */
  private touchedMachines = false;

  constructor(db: SqlDb, tx?: SqlConn, lookups?: LookupCache) {
    this.db = db;
    this.tx = tx;
    this.lookups =
      lookups ??
      new LookupCache({
        maxEntries: LOOKUP_CACHE_ENTRIES,
        maxMisses: LOOKUP_CACHE_MISSES,
        ttlMs: db.changedByOthers ? Infinity : LOOKUP_CACHE_TTL_MS,
        changed: db.changedByOthers?.bind(db),
      });
  }

  private get conn(): SqlConn {
    return this.tx ?? this.db;
  }

  private get forUpdate(): string {
    return this.db.dialect === 'postgres' ? ' FOR UPDATE' : ''; // SQLite: BEGIN IMMEDIATE already serializes writers
  }

  /**
   * Runs `fn` in one transaction with an Inventory bound to it: everything it does commits or
   * rolls back together. Use only that Inventory inside `fn` (on SQLite this one waits for it).
   */
  async transaction<T>(fn: (inv: Inventory) => Promise<T>): Promise<T> {
    if (this.tx) return fn(this);
    let inner: SqlInventory | undefined;
    return this.write(
      (tx) => fn((inner = new SqlInventory(this.db, tx, this.lookups))),
      () => (inner && !inner.touchedMachines ? 'leases or logs' : 'machines'),
    );
  }

  /**
   * Runs a change in a transaction (the caller's, if any); a UNIQUE violation becomes a
   * ConflictError. Every write goes through here, and so does the lookup cache's invalidation:
   * after the outermost transaction ends (committed or rolled back), unless all it touched was
   * leases or logs.
   */
  private async write<T>(fn: (c: SqlConn) => Promise<T>, touches: Touches | (() => Touches) = 'machines'): Promise<T> {
    const touched = () => (typeof touches === 'function' ? touches() : touches) === 'machines';
    try {
      if (this.tx) {
        if (touched()) this.touchedMachines = true;
        return await fn(this.tx);
      }
      return await this.db.transaction(fn);
    } catch (err) {
      const what = this.db.uniqueViolation(err);
      if (what) throw new ConflictError(`${CONFLICTS[what] ?? `duplicate ${what}`} (${(err as Error).message})`);
      throw err;
    } finally {
      if (!this.tx && touched()) this.lookups.invalidate();
    }
  }

  private async lockAddresses(c: SqlConn): Promise<void> {
    if (this.db.dialect === 'postgres') await c.query('SELECT pg_advisory_xact_lock($1)', [ADDRESS_LOCK]);
  }

  async addMachine(input: NewMachine): Promise<Machine> {
    const m = checkNewMachine(input);
    return this.write(async (c) => {
      if ((await c.query('SELECT 1 FROM machines WHERE hostname = $1', [m.hostname])).length) {
        throw new ConflictError(
          `machine '${m.hostname}' already exists: change it with 'cradle machine set-state', or 'cradle machine rm' it first`,
        );
      }
      const subnetId = await subnetForOn(c, m);
      await checkNodeGroupExistsOn(c, m);
      await checkNetworkSubnetsOn(c, m);
      await checkInterfaceAddressesOn(c, m);
      await checkMacsFreeOn(c, m);
      await claimAddressOn(c, m, (tx) => this.lockAddresses(tx));
      const now = new Date().toISOString();
      await c.run(
        `INSERT INTO machines (hostname, state, state_changed_at, created_at, ${MACHINE_COLUMNS.join(', ')})
         VALUES ($1, $2, $3, $4, ${list(MACHINE_COLUMNS.length, 5)})`,
        [m.hostname, m.state ?? 'unknown', now, now, ...machineValues(m, subnetId)],
      );
      await writeDetailsOn(c, m, false);
      return (await loadMachineOn(c, m.hostname)) as Machine;
    });
  }

  /** Fields present in `patch` replace the machine's; a field present as undefined is cleared. */
  async updateMachine(hostname: string, patch: MachinePatch): Promise<Machine> {
    checkPatchKeys(patch);
    return this.write(async (c) => {
      const cur = await loadMachineOn(c, hostname, this.forUpdate);
      if (!cur) throw noMachine(hostname);
      const { state: _s, stateChangedAt: _c, createdAt: _a, subnetMatched, ...fields } = cur;
      const merged: Record<string, unknown> = { ...fields, ...patch };
      // A new address without a subnet named is matched to its subnet afresh, and so is a subnet
      // that was matched, not named; a machine whose address is cleared stays in its subnet, to
      // get a pool address there.
      if ((patch.ip !== undefined || (subnetMatched && merged.ip)) && !('subnetId' in patch)) delete merged.subnetId;
      for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
      const m = checkNewMachine(merged as unknown as NewMachine);
      const subnetId = await subnetForOn(c, m);
      await checkNodeGroupExistsOn(c, m);
      await checkNetworkSubnetsOn(c, m);
      await checkInterfaceAddressesOn(c, m);
      await checkMacsFreeOn(c, m);
      if (m.ip !== cur.ip) await claimAddressOn(c, m, (tx) => this.lockAddresses(tx));
      await c.run(
        `UPDATE machines SET ${MACHINE_COLUMNS.map((col, i) => `${col} = $${i + 2}`).join(', ')} WHERE hostname = $1`,
        [hostname, ...machineValues(m, subnetId)],
      );
      await writeDetailsOn(c, m, true);
      return (await loadMachineOn(c, hostname)) as Machine;
    });
  }

  async removeMachine(hostname: string): Promise<void> {
    await this.write(async (c) => {
      if ((await c.run('DELETE FROM machines WHERE hostname = $1', [hostname])) === 0) throw noMachine(hostname);
    });
  }

  async getMachine(hostname: string): Promise<Machine | undefined> {
    return loadMachineOn(this.conn, hostname);
  }

  async findMachineByMac(mac: string): Promise<Machine | undefined> {
    const normal = normalizeMac(mac);
    if (!normal) return undefined; // a lookup by a malformed MAC finds nothing; only writes are strict
    const load = async (c: SqlConn) => {
      const [row] = await c.query<{ hostname: string }>('SELECT hostname FROM machine_macs WHERE mac = $1', [normal]);
      return row && loadMachineOn(c, row.hostname);
    };
    return this.tx ? load(this.tx) : this.lookups.machineByMac(normal, () => load(this.db));
  }

  /** The machine whose own (primary, static) address is `ip`; a malformed address finds nothing. */
  async findMachineByIp(ip: string): Promise<Machine | undefined> {
    if (!ipv4Schema.safeParse(ip).success) return undefined;
    const load = async (c: SqlConn) => {
      const [row] = await c.query<{ hostname: string }>('SELECT hostname FROM machines WHERE ip = $1', [ip]);
      return row && loadMachineOn(c, row.hostname);
    };
    return this.tx ? load(this.tx) : this.lookups.machineByIp(ip, () => load(this.db));
  }

  async listMachines(
    filter: { state?: MachineState; tag?: [string, string]; nodeGroup?: string } = {},
  ): Promise<Machine[]> {
    return listMachinesOn(this.conn, filter);
  }

  async setState(hostname: string, to: MachineState, reason: string): Promise<Machine> {
    const state = checkState(to);
    return this.write(async (c) => {
      const [row] = await c.query<{ state: MachineState }>(
        `SELECT state FROM machines WHERE hostname = $1${this.forUpdate}`,
        [hostname],
      );
      if (!row) throw noMachine(hostname);
      if (row.state !== state) {
        const at = new Date().toISOString();
        await c.run('UPDATE machines SET state = $2, state_changed_at = $3 WHERE hostname = $1', [hostname, state, at]);
        await c.run(
          'INSERT INTO state_history (hostname, from_state, to_state, at, reason) VALUES ($1, $2, $3, $4, $5)',
          [hostname, row.state, state, at, reason ?? ''],
        );
      }
      return (await loadMachineOn(c, hostname)) as Machine;
    });
  }

  async history(hostname: string): Promise<StateChange[]> {
    const c = this.conn;
    if (!(await c.query('SELECT 1 FROM machines WHERE hostname = $1', [hostname])).length) throw noMachine(hostname);
    const rows = await c.query<{ from_state: MachineState; to_state: MachineState; at: string; reason: string }>(
      'SELECT from_state, to_state, at, reason FROM state_history WHERE hostname = $1 ORDER BY id',
      [hostname],
    );
    return rows.map((r) => ({ hostname, from: r.from_state, to: r.to_state, at: r.at, reason: r.reason }));
  }

  async addSubnet(input: Subnet): Promise<Subnet> {
    const s = checkSubnet(input);
    return this.write((c) => addSubnetOn(c, s));
  }

  async getSubnet(id: string): Promise<Subnet | undefined> {
    return subnetOn(this.conn, id);
  }

  async listSubnets(): Promise<Subnet[]> {
    return subnetsOn(this.conn);
  }

  async removeSubnet(id: string): Promise<void> {
    await this.write((c) => removeSubnetOn(c, id, this.forUpdate));
  }

  async allocateLease(
    mac: string,
    subnetId: string,
    leaseSeconds: number,
    now: Date,
    hostname?: string,
  ): Promise<Lease | undefined> {
    const m = checkMac(mac);
    if (!(leaseSeconds > 0))
      throw new ValidationError(`lease time must be a positive number of seconds, not ${leaseSeconds}`);
    // The host name a DHCP client sends is whatever the client likes: kept for display, not checked.
    if (hostname !== undefined && (typeof hostname !== 'string' || hostname.length > 255)) hostname = undefined;
    const at = now.toISOString();
    const expiresAt = new Date(now.getTime() + leaseSeconds * 1000).toISOString();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.write(async (c) => {
          const subnet = await subnetOn(c, subnetId);
          if (!subnet) throw noSubnet(subnetId);
          await this.lockAddresses(c);
          return allocateOn(c, subnet, m, at, expiresAt, hostname);
        }, 'leases or logs');
      } catch (err) {
        // Only reachable if a writer bypassed the address lock; the UNIQUE ip stopped it, so look again.
        if (!(err instanceof ConflictError) || this.tx || attempt >= ALLOCATE_ATTEMPTS) throw err;
      }
    }
  }

  /** A MAC's lease, also when expired (the address stays its own until someone else takes it). */
  async getLease(mac: string): Promise<Lease | undefined> {
    const normal = normalizeMac(mac);
    if (!normal) return undefined;
    const [row] = await this.conn.query('SELECT * FROM leases WHERE mac = $1', [normal]);
    return row && toLease(row);
  }

  async listLeases(): Promise<Lease[]> {
    return (await this.conn.query('SELECT * FROM leases')).map(toLease).sort((a, b) => ipToInt(a.ip) - ipToInt(b.ip));
  }

  async releaseLease(mac: string): Promise<void> {
    await this.write((c) => c.run('DELETE FROM leases WHERE mac = $1', [checkMac(mac)]), 'leases or logs');
  }

  async addNodeGroup(input: NewNodeGroup): Promise<NodeGroup> {
    const g = checkNodeGroup(input);
    return this.write(async (c) => {
      if (await nodeGroupOn(c, g.name))
        throw new ConflictError(
          `node group '${g.name}' already exists: change it with 'cradle nodegroup set', or remove it first`,
        );
      await writeNodeGroupOn(c, g, undefined);
      return (await nodeGroupOn(c, g.name)) as NodeGroup;
    });
  }

  async updateNodeGroup(name: string, patch: NodeGroupPatch): Promise<NodeGroup> {
    checkNodeGroupPatchKeys(patch);
    return this.write(async (c) => {
      const cur = await nodeGroupOn(c, name, this.forUpdate);
      if (!cur) throw noNodeGroup(name);
      const { createdAt: _c, updatedAt: _u, ...fields } = cur;
      const merged: Record<string, unknown> = { ...fields, ...patch };
      for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
      const g = checkNodeGroup(merged as unknown as NewNodeGroup);
      await writeNodeGroupOn(c, g, cur);
      return (await nodeGroupOn(c, name)) as NodeGroup;
    });
  }

  async getNodeGroup(name: string): Promise<NodeGroup | undefined> {
    return nodeGroupOn(this.conn, name);
  }

  async listNodeGroups(): Promise<NodeGroup[]> {
    return nodeGroupsOn(this.conn);
  }

  async removeNodeGroup(name: string): Promise<void> {
    await this.write((c) => removeNodeGroupOn(c, name, this.forUpdate));
  }

  async nodeGroupsUsingKit(name: string, version: string): Promise<string[]> {
    return nodeGroupsUsingKitOn(this.conn, name, version);
  }

  async recordProgress(input: InstallProgress): Promise<void> {
    await this.write((c) => recordProgressOn(c, input), 'leases or logs');
  }

  async getProgress(hostname: string): Promise<InstallProgress | undefined> {
    return progressOf(this.conn, hostname);
  }

  async appendInstallerLog(hostname: string, firstSeq: number, lines: string[]): Promise<void> {
    if (lines.length) await this.write((c) => appendLogOn(c, hostname, firstSeq, lines), 'leases or logs');
  }

  async installerLog(hostname: string, sinceSeq = 0, limit = MAX_LOG_LINES): Promise<{ seq: number; line: string }[]> {
    return logOf(this.conn, hostname, sinceSeq, limit);
  }

  async clearInstallerLog(hostname: string): Promise<void> {
    await this.write((c) => c.run('DELETE FROM installer_log WHERE hostname = $1', [hostname]), 'leases or logs');
  }

  async close(): Promise<void> {
    if (!this.tx) await this.db.close();
  }
}
