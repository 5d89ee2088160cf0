// Subnets in SQL (both dialects): a subnet's row, all of them by id, adding one, removing one no
// machine uses, and the subnets a machine's interfaces name. Called by sql-store.ts inside its
// transactions.
import { ConflictError, type NetworkEntry, type NewMachine, type Subnet } from './types.ts';
import { byKey, fromJson, json, jsonSome, noSubnet, type SqlConn, someOf, toSubnet } from './sql-rows.ts';
import { cidrOf, inSubnet, ValidationError } from './validate.ts';

export async function subnetOn(c: SqlConn, id: string): Promise<Subnet | undefined> {
  const [row] = await c.query('SELECT * FROM subnets WHERE id = $1', [id]);
  return row && toSubnet(row);
}

export async function subnetsOn(c: SqlConn): Promise<Subnet[]> {
  return (await c.query('SELECT * FROM subnets')).map(toSubnet).sort(byKey((s) => s.id));
}

/** Adds a checked subnet; refused when its id is taken. */
export async function addSubnetOn(c: SqlConn, s: Subnet): Promise<Subnet> {
  if (await subnetOn(c, s.id))
    throw new ConflictError(
      `subnet '${s.id}' already exists: remove it first ('cradle subnet rm ${s.id}') or choose another id`,
    );
  await c.run(
    `INSERT INTO subnets (id, gateway, mask, domain_name, dns_servers, manage, vlan_id, pool_start, pool_end,
       disable_metadata, allowed_groups, allowed_users, tags)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [
      s.id,
      s.gateway,
      s.mask,
      s.domainName ?? null,
      json(s.dnsServers),
      s.manage,
      s.vlanId ?? null,
      s.pool?.start ?? null,
      s.pool?.end ?? null,
      s.disableMetadata ?? false,
      jsonSome(s.allowedGroups),
      jsonSome(s.allowedUsers),
      jsonSome(s.tags),
    ],
  );
  return (await subnetOn(c, s.id)) as Subnet;
}

/**
 * A machine's other references to subnets, checked as its installer will use them: the gateway
 * subnet must exist, and each secondary interface's address must lie in a subnet (the one it
 * names, if it names one); a bridge-only interface (MAC and subnet, no address) needs its subnet.
 */
export async function checkNetworkSubnetsOn(c: SqlConn, m: NewMachine): Promise<void> {
  if (!m.gatewaySubnetId && !m.secondaryNetworkEntries?.length) return;
  const subnets = await subnetsOn(c);
  const bad = (field: string, why: string) => new ValidationError(`machine '${m.hostname}': ${field} ${why}`);
  if (m.gatewaySubnetId && !subnets.some((s) => s.id === m.gatewaySubnetId))
    throw bad('gatewaySubnetId', `names no subnet '${m.gatewaySubnetId}': add it first, or fix the name`);
  for (const [i, e] of (m.secondaryNetworkEntries ?? []).entries()) {
    const field = `secondary network entry ${i + 1} (${e.mac ?? e.ip ?? 'empty'})`;
    const named = e.subnetId ? subnets.find((s) => s.id === e.subnetId) : undefined;
    if (e.subnetId && !named)
      throw bad(field, `names no subnet '${e.subnetId}': add it first ('cradle subnet add'), or fix the name`);
    if (e.ip && named && !inSubnet(e.ip, named))
      throw bad(field, `has address ${e.ip}, outside its subnet '${named.id}' (${cidrOf(named)}): fix one of them`);
    if (e.ip && !named && !subnets.some((s) => inSubnet(e.ip as string, s)))
      throw bad(field, `has address ${e.ip}, in no subnet: add its subnet first ('cradle subnet add')`);
  }
}

/** Who refers to subnet `id`: its machines, and machines whose gateway or other interfaces name it. */
async function usersOf(c: SqlConn, id: string): Promise<string[]> {
  const rows = await c.query<{
    hostname: string;
    subnet_id: string | null;
    gateway_subnet_id: string | null;
    secondary_network_entries: unknown;
  }>(
    'SELECT hostname, subnet_id, gateway_subnet_id, secondary_network_entries FROM machines WHERE subnet_id = $1 OR gateway_subnet_id = $1 OR secondary_network_entries IS NOT NULL',
    [id],
  );
  const entries = (v: unknown) => (v == null ? [] : (fromJson(v) as NetworkEntry[]));
  return rows
    .filter(
      (r) =>
        r.subnet_id === id ||
        r.gateway_subnet_id === id ||
        entries(r.secondary_network_entries).some((e) => e.subnetId === id),
    )
    .map((r) => r.hostname)
    .sort();
}

/** Removes a subnet no machine uses (its leases go with it); otherwise refuses, naming them. */
export async function removeSubnetOn(c: SqlConn, id: string, lock: string): Promise<void> {
  if (!(await c.query(`SELECT id FROM subnets WHERE id = $1${lock}`, [id])).length) throw noSubnet(id);
  const users = await usersOf(c, id);
  if (users.length)
    throw new ConflictError(
      `subnet '${id}' is still used by ${users.length} machine(s) (${someOf(users)}): move or remove them first`,
    );
  await c.run('DELETE FROM subnets WHERE id = $1', [id]); // its leases go with it (ON DELETE CASCADE)
}
