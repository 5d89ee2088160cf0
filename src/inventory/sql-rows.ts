// The SQL side of the machine database's shapes: the connection the two adapters (sqlite.ts,
// postgres.ts) provide, rows turned into machines, subnets and leases (and a machine into its
// row's values), and the errors for what is not there. Shared by the statements in sql-store.ts and its helpers.
import { type Lease, type Machine, type MachineState, type NewMachine, NotFoundError, type Subnet } from './types.ts';

export type Row = Record<string, unknown>;

export interface SqlConn {
  /** The rows of one statement; placeholders are `$1`, `$2`, … in both dialects. */
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs one statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface SqlDb extends SqlConn {
  readonly dialect: 'sqlite' | 'postgres';
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlConn) => Promise<T>): Promise<T>;
  /** For a UNIQUE violation, what was duplicated ('table.column'); else undefined. */
  uniqueViolation(err: unknown): string | undefined;
  /**
   * Whether another connection committed a change since the last call (the first call: true).
   * Absent where the database cannot tell cheaply; the lookup cache then keeps answers briefly
   * (sql-lookup-cache.ts).
   */
  changedByOthers?(): boolean;
  close(): Promise<void>;
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/[^:/@]*):[^@/]*@/, '$1:***@');
}

export const list = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `$${i + from}`).join(', ');
export const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));
export const fromJson = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
/** A list or record for a JSON column: null when empty, so "none" has one spelling. */
export const jsonSome = (v: unknown[] | object | undefined) =>
  json(v !== undefined && Object.keys(v).length ? v : undefined);
/** A JSON column's list or record as a field: present only when it holds something. */
function present(key: string, v: unknown): Record<string, unknown> {
  const value = v == null ? undefined : fromJson(v);
  return value && Object.keys(value).length ? { [key]: value } : {};
}
/** A text column as a field: present only when it is set. */
const text = (key: string, v: unknown): Record<string, unknown> => (v ? { [key]: v } : {});
export const byKey =
  <T>(key: (x: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
export const byHostname = byKey<{ hostname: string }>((x) => x.hostname);

export function toSubnet(r: Row): Subnet {
  return {
    id: r.id as string,
    gateway: r.gateway as string,
    mask: r.mask as string,
    ...(r.domain_name ? { domainName: r.domain_name as string } : {}),
    dnsServers: fromJson(r.dns_servers) as string[],
    manage: Boolean(r.manage),
    ...(r.vlan_id != null ? { vlanId: Number(r.vlan_id) } : {}),
    ...(r.pool_start ? { pool: { start: r.pool_start as string, end: r.pool_end as string } } : {}),
    ...(r.disable_metadata ? { disableMetadata: true } : {}),
    ...present('allowedGroups', r.allowed_groups),
    ...present('allowedUsers', r.allowed_users),
    ...present('tags', r.tags),
  } as Subnet;
}

export function toMachine(r: Row, macs: string[], tags: Record<string, string>): Machine {
  return {
    hostname: r.hostname as string,
    macs,
    ...(r.ip ? { ip: r.ip as string } : {}),
    ...(r.subnet_id ? { subnetId: r.subnet_id as string } : {}),
    ...(r.subnet_matched ? { subnetMatched: true } : {}),
    ...(r.vlan_trunk ? { vlanTrunk: true } : {}),
    ...present('secondaryNetworkEntries', r.secondary_network_entries),
    ...text('gatewaySubnetId', r.gateway_subnet_id),
    ...(r.ipmi != null ? { ipmi: fromJson(r.ipmi) } : {}),
    ...text('location', r.location),
    ...text('topologyLocation', r.topology_location),
    ...present('ownerGroups', r.owner_groups),
    ...present('ownerUsers', r.owner_users),
    ...present('hardware', r.hardware),
    tags,
    ...(r.storage_layout != null ? { storageLayout: fromJson(r.storage_layout) } : {}),
    ...(r.node_group ? { nodeGroup: r.node_group as string } : {}),
    ...(r.firmware ? { firmware: r.firmware as 'uefi' | 'bios' } : {}),
    state: r.state as MachineState,
    stateChangedAt: r.state_changed_at as string,
    createdAt: r.created_at as string,
  } as Machine;
}

/** The columns of a machine's row that addMachine and updateMachine write, in machineValues' order. */
export const MACHINE_COLUMNS = [
  'ip',
  'subnet_id',
  'ipmi',
  'storage_layout',
  'firmware',
  'node_group',
  'subnet_matched',
  'vlan_trunk',
  'secondary_network_entries',
  'gateway_subnet_id',
  'location',
  'topology_location',
  'owner_groups',
  'owner_users',
  'hardware',
];

export function machineValues(m: NewMachine, subnetId: string | undefined): unknown[] {
  return [
    m.ip ?? null,
    subnetId ?? null,
    json(m.ipmi),
    json(m.storageLayout),
    m.firmware ?? null,
    m.nodeGroup ?? null,
    !m.subnetId && subnetId !== undefined,
    m.vlanTrunk ?? false,
    jsonSome(m.secondaryNetworkEntries),
    m.gatewaySubnetId ?? null,
    m.location || null,
    m.topologyLocation || null,
    jsonSome(m.ownerGroups),
    jsonSome(m.ownerUsers),
    jsonSome(m.hardware),
  ];
}

export function toLease(r: Row): Lease {
  return {
    mac: r.mac as string,
    ip: r.ip as string,
    ...(r.hostname ? { hostname: r.hostname as string } : {}),
    subnetId: r.subnet_id as string,
    expiresAt: r.expires_at as string,
  };
}

export const noMachine = (hostname: string) =>
  new NotFoundError(`no machine named '${hostname}': see 'cradle machine list'`);
export const noSubnet = (id: string) =>
  new NotFoundError(
    `no subnet '${id}': see 'cradle subnet list', or add it with 'cradle subnet add ${id} --gateway … --mask …'`,
  );

/** "a, b, c, d, e and 3 more": who is in the way, in a refusal. */
export const someOf = (names: string[], most = 5) =>
  names.slice(0, most).join(', ') + (names.length > most ? ` and ${names.length - most} more` : '');
