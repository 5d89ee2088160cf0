// A machine's interfaces beyond the primary (Dominator's SecondaryNetworkEntries) and its gateway
// subnet, checked in SQL as its installer will use them, before they are written: the subnets
// they name exist, their addresses lie in a subnet, and no address is another machine's. Called
// by sql-store.ts inside its transactions.
import { fromJson, type SqlConn } from './sql-rows.ts';
import { subnetsOn } from './sql-subnets.ts';
import { ConflictError, type NetworkEntry, type NewMachine } from './types.ts';
import { cidrOf, inSubnet, ValidationError } from './validate.ts';

const entriesOf = (v: unknown): NetworkEntry[] => (v == null ? [] : (fromJson(v) as NetworkEntry[]));

/** The name of a machine's entry in messages: "secondary network entry 2 (de:ad:be:ef:03:02)". */
const entryName = (e: NetworkEntry, i: number) => `secondary network entry ${i + 1} (${e.mac ?? e.ip ?? 'empty'})`;

/**
 * The gateway subnet must exist; each secondary interface's subnet, if it names one, must exist
 * and hold its address; an address naming no subnet must lie in one (Dominator's installer
 * matches it against the subnets, and skips it otherwise).
 */
export async function checkNetworkSubnetsOn(c: SqlConn, m: NewMachine): Promise<void> {
  if (!m.gatewaySubnetId && !m.secondaryNetworkEntries?.length) return;
  const subnets = await subnetsOn(c);
  const bad = (field: string, why: string) => new ValidationError(`machine '${m.hostname}': ${field} ${why}`);
  if (m.gatewaySubnetId && !subnets.some((s) => s.id === m.gatewaySubnetId))
    throw bad('gatewaySubnetId', `names no subnet '${m.gatewaySubnetId}': add it first, or fix the name`);
  for (const [i, e] of (m.secondaryNetworkEntries ?? []).entries()) {
    const named = e.subnetId ? subnets.find((s) => s.id === e.subnetId) : undefined;
    if (e.subnetId && !named)
      throw bad(
        entryName(e, i),
        `names no subnet '${e.subnetId}': add it first ('cradle subnet add'), or fix the name`,
      );
    if (e.ip && named && !inSubnet(e.ip, named))
      throw bad(
        entryName(e, i),
        `has address ${e.ip}, outside its subnet '${named.id}' (${cidrOf(named)}): fix one of them`,
      );
    if (e.ip && !named && !subnets.some((s) => inSubnet(e.ip as string, s)))
      throw bad(entryName(e, i), `has address ${e.ip}, in no subnet: add its subnet first ('cradle subnet add')`);
  }
}

/**
 * No address of the machine's (its primary's, its other interfaces') is another machine's, on
 * any of its interfaces, nor listed twice by the machine itself. The primary addresses' own
 * uniqueness is the database's (machines.ip UNIQUE); this covers the rest.
 */
export async function checkInterfaceAddressesOn(c: SqlConn, m: NewMachine): Promise<void> {
  const secondary = (m.secondaryNetworkEntries ?? []).map((e) => e.ip).filter((ip): ip is string => !!ip);
  const mine = [...(m.ip ? [m.ip] : []), ...secondary];
  const twice = mine.find((ip, i) => mine.indexOf(ip) !== i);
  if (twice)
    throw new ValidationError(
      `machine '${m.hostname}': address ${twice} is listed on two of its interfaces: list it once`,
    );
  if (!mine.length) return;
  const others = await c.query<{ hostname: string; ip: string | null; secondary_network_entries: unknown }>(
    'SELECT hostname, ip, secondary_network_entries FROM machines WHERE hostname <> $1 AND secondary_network_entries IS NOT NULL',
    [m.hostname],
  );
  for (const o of others) {
    const taken = entriesOf(o.secondary_network_entries).find((e) => e.ip && mine.includes(e.ip));
    if (taken)
      throw new ConflictError(
        `address ${taken.ip} is already on an interface of machine '${o.hostname}': pick another`,
      );
  }
  for (const ip of secondary) {
    const [owner] = await c.query<{ hostname: string }>(
      'SELECT hostname FROM machines WHERE ip = $1 AND hostname <> $2',
      [ip, m.hostname],
    );
    if (owner) throw new ConflictError(`address ${ip} is already machine '${owner.hostname}''s: pick another`);
  }
}
