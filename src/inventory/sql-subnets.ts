// Subnets in SQL (both dialects): a subnet's row, all of them by id, adding one, and removing one
// no machine uses (by its address, gateway or other interfaces). Called by sql-store.ts inside its
// transactions.
import { ConflictError, type NetworkEntry, type Subnet } from './types.ts';
import { byKey, fromJson, json, jsonSome, noSubnet, type SqlConn, someOf, toSubnet } from './sql-rows.ts';

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
