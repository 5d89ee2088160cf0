// A machine's rows in SQL (both dialects): read with its MACs and tags, listed, and the checks and
// detail writes addMachine and updateMachine make inside their transaction. Called by sql-store.ts,
// which owns the transactions (and so the lookup cache's invalidation).
import { noNodeGroup } from './sql-node-groups.ts';
import { byHostname, list, noSubnet, type SqlConn, toMachine } from './sql-rows.ts';
import { subnetOn, subnetsOn } from './sql-subnets.ts';
import { ConflictError, type Machine, type MachineState, type NewMachine } from './types.ts';
import { checkState, cidrOf, inSubnet, ValidationError } from './validate.ts';

/** A machine with its MACs and tags; `lock` is appended to its row's SELECT (' FOR UPDATE' or ''). */
export async function loadMachineOn(c: SqlConn, hostname: string, lock = ''): Promise<Machine | undefined> {
  const [row] = await c.query(`SELECT * FROM machines WHERE hostname = $1${lock}`, [hostname]);
  if (!row) return undefined;
  const macs = await c.query<{ mac: string }>('SELECT mac FROM machine_macs WHERE hostname = $1 ORDER BY position', [
    hostname,
  ]);
  const tags = await c.query<{ key: string; value: string }>(
    'SELECT key, value FROM machine_tags WHERE hostname = $1',
    [hostname],
  );
  return toMachine(
    row,
    macs.map((m) => m.mac),
    Object.fromEntries(tags.map((t) => [t.key, t.value])),
  );
}

/** The subnet a static address belongs to: the one named (which must hold it), else the first that does. */
export async function subnetForOn(c: SqlConn, m: NewMachine): Promise<string | undefined> {
  if (m.subnetId) {
    const s = await subnetOn(c, m.subnetId);
    if (!s) throw noSubnet(m.subnetId);
    if (m.ip && !inSubnet(m.ip, s))
      throw new ValidationError(
        `machine '${m.hostname}': address ${m.ip} is outside subnet '${s.id}' (${cidrOf(s)}): fix the address or the subnet`,
      );
    if (m.ip === s.gateway)
      throw new ValidationError(
        `machine '${m.hostname}': address ${m.ip} is subnet '${s.id}''s gateway: give the machine an address of its own`,
      );
    return s.id;
  }
  if (!m.ip) return undefined;
  const found = (await subnetsOn(c)).find((s) => inSubnet(m.ip as string, s));
  if (!found)
    throw new ValidationError(
      `machine '${m.hostname}': no subnet contains ${m.ip}: add one first ('cradle subnet add') or name it (--subnet)`,
    );
  return subnetForOn(c, { ...m, subnetId: found.id });
}

export async function checkNodeGroupExistsOn(c: SqlConn, m: NewMachine): Promise<void> {
  if (m.nodeGroup && !(await c.query('SELECT 1 FROM node_groups WHERE name = $1', [m.nodeGroup])).length)
    throw noNodeGroup(m.nodeGroup);
}

export async function checkMacsFreeOn(c: SqlConn, m: NewMachine): Promise<void> {
  const rows = await c.query<{ mac: string; hostname: string }>(
    `SELECT mac, hostname FROM machine_macs WHERE mac IN (${list(m.macs.length)})`,
    m.macs,
  );
  const taken = rows.find((r) => r.hostname !== m.hostname);
  if (taken)
    throw new ConflictError(
      `MAC ${taken.mac} already belongs to machine '${taken.hostname}': a MAC names one machine (if that one was replaced, 'cradle machine rm ${taken.hostname}' first)`,
    );
}

/** Makes `ip` the machine's own: not another machine's, and not leased to a MAC of another. */
export async function claimAddressOn(
  c: SqlConn,
  m: NewMachine,
  lockAddresses: (c: SqlConn) => Promise<void>,
): Promise<void> {
  if (!m.ip) return;
  await lockAddresses(c);
  const [owner] = await c.query<{ hostname: string }>(
    'SELECT hostname FROM machines WHERE ip = $1 AND hostname <> $2',
    [m.ip, m.hostname],
  );
  if (owner) throw new ConflictError(`address ${m.ip} is already machine '${owner.hostname}''s: pick another`);
  // An expired lease of the address, or the machine's own pool lease, gives way to the static address.
  await c.run(`DELETE FROM leases WHERE ip = $1 AND (expires_at <= $2 OR mac IN (${list(m.macs.length, 3)}))`, [
    m.ip,
    new Date().toISOString(),
    ...m.macs,
  ]);
  const [lease] = await c.query<{ mac: string; expires_at: string }>(
    'SELECT mac, expires_at FROM leases WHERE ip = $1',
    [m.ip],
  );
  if (lease)
    throw new ConflictError(
      `address ${m.ip} is leased to ${lease.mac} until ${lease.expires_at}: pick another address, or release that lease first`,
    );
}

/** Writes the machine's MACs (in order) and tags, replacing its old ones when `replace`. */
export async function writeDetailsOn(c: SqlConn, m: NewMachine, replace: boolean): Promise<void> {
  if (replace) {
    await c.run('DELETE FROM machine_macs WHERE hostname = $1', [m.hostname]);
    await c.run('DELETE FROM machine_tags WHERE hostname = $1', [m.hostname]);
  }
  for (const [i, mac] of m.macs.entries())
    await c.run('INSERT INTO machine_macs (mac, hostname, position) VALUES ($1, $2, $3)', [mac, m.hostname, i]);
  for (const [key, value] of Object.entries(m.tags))
    await c.run('INSERT INTO machine_tags (hostname, key, value) VALUES ($1, $2, $3)', [m.hostname, key, value]);
}

/** Machines with their MACs and tags, by host name, those the filter names. */
export async function listMachinesOn(
  c: SqlConn,
  filter: { state?: MachineState; tag?: [string, string]; nodeGroup?: string } = {},
): Promise<Machine[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.nodeGroup !== undefined) {
    params.push(filter.nodeGroup);
    where.push(`node_group = $${params.length}`);
  }
  if (filter.state !== undefined) {
    params.push(checkState(filter.state));
    where.push(`state = $${params.length}`);
  }
  if (filter.tag) {
    params.push(filter.tag[0], filter.tag[1]);
    where.push(
      `hostname IN (SELECT hostname FROM machine_tags WHERE key = $${params.length - 1} AND value = $${params.length})`,
    );
  }
  const cond = where.length ? ` WHERE ${where.join(' AND ')}` : '';
  const inSet = where.length ? ` WHERE hostname IN (SELECT hostname FROM machines${cond})` : '';
  const rows = await c.query(`SELECT * FROM machines${cond}`, params);
  const macs = new Map<string, string[]>();
  for (const r of await c.query<{ hostname: string; mac: string }>(
    `SELECT hostname, mac FROM machine_macs${inSet} ORDER BY hostname, position`,
    params,
  )) {
    macs.set(r.hostname, [...(macs.get(r.hostname) ?? []), r.mac]);
  }
  const tags = new Map<string, Record<string, string>>();
  for (const r of await c.query<{ hostname: string; key: string; value: string }>(
    `SELECT hostname, key, value FROM machine_tags${inSet}`,
    params,
  )) {
    tags.set(r.hostname, { ...tags.get(r.hostname), [r.key]: r.value });
  }
  // Sorted here, not by ORDER BY: PostgreSQL's collation would order '-' and '.' unlike SQLite.
  return rows
    .map((r) => toMachine(r, macs.get(r.hostname as string) ?? [], tags.get(r.hostname as string) ?? {}))
    .sort(byHostname);
}
