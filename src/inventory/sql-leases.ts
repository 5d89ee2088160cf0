// Pool leases in SQL: a MAC's lease renewed, or the first free address of the subnet's pool (not
// leased to another MAC and unexpired, not a machine's static address on any of its interfaces). The caller holds the
// address lock (sql-store.ts), so two boot servers sharing a database never hand out one address.
import { intToIp, ipToInt } from './validate.ts';
import type { Lease, NetworkEntry, Subnet } from './types.ts';
import { fromJson, type SqlConn, toLease } from './sql-rows.ts';

/** Renews or allocates `mac`'s lease in `subnet`; undefined when its pool is full (or it has none). */
export async function allocateOn(
  c: SqlConn,
  subnet: Subnet,
  mac: string,
  now: string,
  expiresAt: string,
  hostname?: string,
): Promise<Lease | undefined> {
  const subnetId = subnet.id;
  const [cur] = await c.query<{ ip: string; subnet_id: string }>('SELECT ip, subnet_id FROM leases WHERE mac = $1', [
    mac,
  ]);
  // Its current lease is renewed, unless its address has since become a machine's static one.
  if (cur && cur.subnet_id === subnetId && !(await c.query('SELECT 1 FROM machines WHERE ip = $1', [cur.ip])).length) {
    await c.run('UPDATE leases SET expires_at = $2, hostname = COALESCE($3, hostname) WHERE mac = $1', [
      mac,
      expiresAt,
      hostname ?? null,
    ]);
    return toLease((await c.query('SELECT * FROM leases WHERE mac = $1', [mac]))[0]);
  }
  if (!subnet.pool) return undefined;
  const taken = new Set<string>();
  for (const r of await c.query<{ ip: string }>('SELECT ip FROM leases WHERE mac <> $1 AND expires_at > $2', [
    mac,
    now,
  ]))
    taken.add(r.ip);
  for (const r of await c.query<{ ip: string }>('SELECT ip FROM machines WHERE ip IS NOT NULL')) taken.add(r.ip);
  // A machine's other interfaces' addresses are as much its own.
  for (const r of await c.query<{ entries: unknown }>(
    'SELECT secondary_network_entries AS entries FROM machines WHERE secondary_network_entries IS NOT NULL',
  ))
    for (const e of fromJson(r.entries) as NetworkEntry[]) if (e.ip) taken.add(e.ip);
  let ip: string | undefined;
  for (let n = ipToInt(subnet.pool.start), end = ipToInt(subnet.pool.end); n <= end && !ip; n++)
    if (!taken.has(intToIp(n))) ip = intToIp(n);
  if (!ip) return undefined;
  // Its old lease goes, and so does an expired lease of someone else on the chosen address.
  await c.run('DELETE FROM leases WHERE mac = $1 OR ip = $2', [mac, ip]);
  await c.run('INSERT INTO leases (mac, ip, subnet_id, hostname, expires_at) VALUES ($1, $2, $3, $4, $5)', [
    mac,
    ip,
    subnetId,
    hostname ?? null,
    expiresAt,
  ]);
  return toLease({ mac, ip, subnet_id: subnetId, hostname, expires_at: expiresAt });
}
