// Pool leases in SQL: a MAC's lease renewed, or the first free address of the subnet's pool (not
// leased to another MAC and unexpired, not a machine's static address on any of its interfaces). The caller holds the
// address lock (sql-store.ts), so two boot servers sharing a database never hand out one address.
//
// Finding the first free address by reading every lease and every machine costs O(leases) per
// allocation, O(n²) for a burst of n new clients (the DHCP benchmark's collapse: 10,000 MACs).
// On SQLite a pool view remembers, per connection and pool, a floor below which every address was
// taken, and until when that holds (the earliest expiry of a lease below it): the next allocation
// probes upward from the floor with indexed look-ups of single addresses. The view is only a hint
// and never decides alone that an address is free: every candidate is probed in the database
// inside the caller's transaction. It is dropped when anything else could have freed an address
// below the floor: a write by another connection (PRAGMA data_version), a write on this
// connection that was not this module's (total_changes()), a lease below it expiring, or this
// module moving a MAC's lease. So the choice stays exactly first-fit, as without the view.
import { intToIp, ipToInt } from './validate.ts';
import type { Lease, NetworkEntry, Subnet } from './types.ts';
import { fromJson, type SqlConn, toLease } from './sql-rows.ts';

interface PoolView {
  /** Every pool address below this was taken when the view was made or advanced. */
  floor: number;
  /** Epoch ms of the earliest expiry among the leases below the floor: the view holds until then. */
  until: number;
  /** Addresses of machines' other interfaces (taken; they never expire). */
  secondary: Set<string>;
}

interface ConnViews {
  /** data_version and total_changes() right after this module's last write. */
  signature: string;
  pools: Map<string, PoolView>;
}

const views = new WeakMap<SqlConn, ConnViews>();
/** Whether a connection is SQLite's (the views use its PRAGMA and functions); asked once per connection. */
const dialects = new WeakMap<SqlConn, boolean>();

async function isSqlite(c: SqlConn): Promise<boolean> {
  let known = dialects.get(c);
  if (known === undefined) {
    // Valid in both dialects, so a PostgreSQL transaction is not aborted: LIKE ignores ASCII case
    // in SQLite only. PostgreSQL connections are made per transaction, so this costs it a query.
    const [r] = await c.query<{ s: unknown }>("SELECT ('abc' LIKE 'ABC') AS s");
    known = r?.s === 1 || r?.s === true;
    dialects.set(c, known);
  }
  return known;
}

async function signature(c: SqlConn): Promise<string> {
  const [v] = await c.query<{ data_version: number }>('PRAGMA data_version');
  const [t] = await c.query<{ t: number }>('SELECT total_changes() AS t');
  return `${v?.data_version}:${t?.t}`;
}

/** The connection's views, emptied when the database changed in a way this module did not see. */
async function viewsOf(c: SqlConn): Promise<ConnViews | undefined> {
  if (!(await isSqlite(c))) return undefined;
  const sig = await signature(c);
  let v = views.get(c);
  if (!v) views.set(c, (v = { signature: sig, pools: new Map() }));
  else if (v.signature !== sig) v = { signature: sig, pools: new Map() };
  views.set(c, v);
  return v;
}

const poolKey = (s: Subnet) => `${s.id}\n${s.pool?.start}\n${s.pool?.end}`;

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
  const conn = await viewsOf(c);
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
    if (conn) {
      // A renewal may shorten the lease: the views it lies below hold only until then.
      for (const v of conn.pools.values()) v.until = Math.min(v.until, Date.parse(expiresAt));
      conn.signature = await signature(c);
    }
    return toLease((await c.query('SELECT * FROM leases WHERE mac = $1', [mac]))[0]);
  }
  if (!subnet.pool) return undefined;
  const start = ipToInt(subnet.pool.start);
  const end = ipToInt(subnet.pool.end);
  const nowMs = Date.parse(now);
  const key = poolKey(subnet);
  let view = conn?.pools.get(key);
  if (view && (cur || nowMs >= view.until)) view = undefined; // its old lease may lie below the floor
  const found = view ? await probeFrom(c, view, mac, nowMs, end) : await scan(c, mac, now, start, end);
  if (conn) {
    if (cur) conn.pools.clear();
    // The address chosen is below the floor now, taken until the new lease expires.
    else conn.pools.set(key, { ...found.view, until: Math.min(found.view.until, Date.parse(expiresAt)) });
  }
  const ip = found.ip;
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
  if (conn) conn.signature = await signature(c);
  return toLease({ mac, ip, subnet_id: subnetId, hostname, expires_at: expiresAt });
}

/** The chosen address (the view advanced past it), or none with the view at the pool's end. */
interface Found {
  ip?: string;
  view: PoolView;
}

/** Every lease and machine read: the first free address, and a view of the pool below it. */
async function scan(c: SqlConn, mac: string, now: string, start: number, end: number): Promise<Found> {
  const taken = new Map<string, number>(); // address → until when (Infinity: a machine's)
  for (const r of await c.query<{ ip: string; expires_at: unknown }>(
    'SELECT ip, expires_at FROM leases WHERE mac <> $1 AND expires_at > $2',
    [mac, now],
  ))
    taken.set(r.ip, Date.parse(String(r.expires_at)));
  for (const r of await c.query<{ ip: string }>('SELECT ip FROM machines WHERE ip IS NOT NULL'))
    taken.set(r.ip, Infinity);
  const secondary = await secondaryAddresses(c);
  for (const ip of secondary) taken.set(ip, Infinity);
  for (let n = start; n <= end; n++) {
    const ip = intToIp(n);
    if (!taken.has(ip)) return { ip, view: { floor: n + 1, until: earliestExpiry(taken, start, n), secondary } };
  }
  return { view: { floor: end + 1, until: earliestExpiry(taken, start, end + 1), secondary } };
}

/** The earliest expiry of the leased addresses in [start, below) (Infinity: none expires). */
function earliestExpiry(taken: Map<string, number>, start: number, below: number): number {
  let min = Infinity;
  for (const [ip, until] of taken) {
    if (until < min) {
      const n = ipToInt(ip);
      if (n >= start && n < below) min = until;
    }
  }
  return min;
}

/** From the view's floor up: each address looked up alone, the first free one taken. */
async function probeFrom(c: SqlConn, view: PoolView, mac: string, nowMs: number, end: number): Promise<Found> {
  const next: PoolView = { ...view };
  for (let n = view.floor; n <= end; n++) {
    const ip = intToIp(n);
    let until: number | undefined;
    if (view.secondary.has(ip) || (await c.query('SELECT 1 FROM machines WHERE ip = $1', [ip])).length)
      until = Infinity;
    else {
      const [l] = await c.query<{ mac: string; expires_at: unknown }>(
        'SELECT mac, expires_at FROM leases WHERE ip = $1',
        [ip],
      );
      const t = l && Date.parse(String(l.expires_at));
      if (l && l.mac !== mac && t > nowMs) until = t;
    }
    next.floor = n + 1;
    if (until === undefined) return { ip, view: next };
    next.until = Math.min(next.until, until);
  }
  return { view: next };
}

/** A machine's other interfaces' addresses are as much its own. */
async function secondaryAddresses(c: SqlConn): Promise<Set<string>> {
  const out = new Set<string>();
  for (const r of await c.query<{ entries: unknown }>(
    'SELECT secondary_network_entries AS entries FROM machines WHERE secondary_network_entries IS NOT NULL',
  ))
    for (const e of fromJson(r.entries) as NetworkEntry[]) if (e.ip) out.add(e.ip);
  return out;
}
