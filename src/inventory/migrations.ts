// Versioned schema migrations for both stores, applied when a database is opened: all pending
// steps in one transaction (SQLite and PostgreSQL both have transactional DDL, so a failed upgrade
// leaves the previous schema intact), each recorded in schema_version. A database newer than this
// code is refused rather than half-understood: a boot server of an older release must not write
// into a schema it does not know.
//
// A migration, once released, is never edited: add a new one. That is also why the state list
// in the CHECK constraints is spelled out here rather than taken from MACHINE_STATES.
import { InventoryError } from './types.ts';
import type { SqlConn, SqlDb } from './sql-rows.ts';

export interface Migration {
  version: number;
  description: string;
  sqlite: string[];
  postgres: string[];
}

const STATES = "'unknown', 'birth', 'installing', 'healthy', 'rebirth', 'clean', 'failed'";

/** Column types per dialect: JSONB, TIMESTAMPTZ and BOOLEAN on PostgreSQL; STRICT tables on SQLite. */
function typesOf(d: 'sqlite' | 'postgres') {
  const pg = d === 'postgres';
  return {
    json: pg ? 'JSONB' : 'TEXT',
    time: pg ? 'TIMESTAMPTZ' : 'TEXT', // SQLite: ISO 8601 in UTC, so text order is time order
    bool: pg ? 'BOOLEAN' : 'INTEGER',
    strict: pg ? '' : ' STRICT',
    serial: pg ? 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY' : 'INTEGER PRIMARY KEY',
  };
}

/** The first schema, written once per dialect. */
function v1(d: 'sqlite' | 'postgres'): string[] {
  const { json, time, bool, strict, serial } = typesOf(d);
  return [
    `CREATE TABLE subnets (
      id TEXT PRIMARY KEY,
      gateway TEXT NOT NULL,
      mask TEXT NOT NULL,
      domain_name TEXT,
      dns_servers ${json} NOT NULL,
      manage ${bool} NOT NULL,
      vlan_id INTEGER,
      pool_start TEXT,
      pool_end TEXT
    )${strict}`,
    `CREATE TABLE machines (
      hostname TEXT PRIMARY KEY,
      ip TEXT UNIQUE,
      subnet_id TEXT REFERENCES subnets (id),
      ipmi ${json},
      storage_layout ${json},
      firmware TEXT CHECK (firmware IN ('uefi', 'bios')),
      state TEXT NOT NULL CHECK (state IN (${STATES})),
      state_changed_at ${time} NOT NULL,
      created_at ${time} NOT NULL
    )${strict}`,
    'CREATE INDEX machines_subnet ON machines (subnet_id)',
    'CREATE INDEX machines_state ON machines (state)',
    `CREATE TABLE machine_macs (
      mac TEXT PRIMARY KEY,
      hostname TEXT NOT NULL REFERENCES machines (hostname) ON DELETE CASCADE,
      position INTEGER NOT NULL,
      UNIQUE (hostname, position)
    )${strict}`,
    `CREATE TABLE machine_tags (
      hostname TEXT NOT NULL REFERENCES machines (hostname) ON DELETE CASCADE,
      key TEXT NOT NULL,
      value TEXT NOT NULL,
      PRIMARY KEY (hostname, key)
    )${strict}`,
    'CREATE INDEX machine_tags_kv ON machine_tags (key, value)',
    `CREATE TABLE state_history (
      id ${serial},
      hostname TEXT NOT NULL REFERENCES machines (hostname) ON DELETE CASCADE,
      from_state TEXT NOT NULL,
      to_state TEXT NOT NULL,
      at ${time} NOT NULL,
      reason TEXT NOT NULL
    )${strict}`,
    'CREATE INDEX state_history_hostname ON state_history (hostname, id)',
    // One lease per MAC; the UNIQUE ip is what makes two allocators unable to hand out one address.
    `CREATE TABLE leases (
      mac TEXT PRIMARY KEY,
      ip TEXT NOT NULL UNIQUE,
      subnet_id TEXT NOT NULL REFERENCES subnets (id) ON DELETE CASCADE,
      hostname TEXT,
      expires_at ${time} NOT NULL
    )${strict}`,
    'CREATE INDEX leases_subnet ON leases (subnet_id)',
    `CREATE TABLE install_progress (
      hostname TEXT PRIMARY KEY REFERENCES machines (hostname) ON DELETE CASCADE,
      updated_at ${time} NOT NULL,
      progress ${json} NOT NULL
    )${strict}`,
  ];
}

/** The installer's log of a machine's latest run, line by line (seq is the installer's own). */
function v2(d: 'sqlite' | 'postgres'): string[] {
  const { strict } = typesOf(d);
  return [
    `CREATE TABLE installer_log (
      hostname TEXT NOT NULL REFERENCES machines (hostname) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      line TEXT NOT NULL,
      PRIMARY KEY (hostname, seq)
    )${strict}`,
  ];
}

/**
 * Node groups (Kusu's: the head node, compute nodes, ...): the OS kit and components a group's
 * image is composed of, its machines' storage layout and installer flags. Kits themselves stay
 * in the depot, where their content is; a group pins each kit by name, version and digest, so a
 * kit replaced under the same name is noticed rather than silently used. Machines belong to one.
 */
function v3(d: 'sqlite' | 'postgres'): string[] {
  const { json, time, strict } = typesOf(d);
  return [
    `CREATE TABLE node_groups (
      name TEXT PRIMARY KEY,
      description TEXT NOT NULL,
      os_kit_name TEXT NOT NULL,
      os_kit_version TEXT NOT NULL,
      os_kit_digest TEXT NOT NULL,
      storage_layout ${json},
      installer_flags ${json} NOT NULL,
      created_at ${time} NOT NULL,
      updated_at ${time} NOT NULL
    )${strict}`,
    'CREATE INDEX node_groups_os_kit ON node_groups (os_kit_name, os_kit_version)',
    `CREATE TABLE node_group_components (
      node_group TEXT NOT NULL REFERENCES node_groups (name) ON DELETE CASCADE,
      position INTEGER NOT NULL,
      kit_name TEXT NOT NULL,
      kit_version TEXT NOT NULL,
      kit_digest TEXT NOT NULL,
      component TEXT NOT NULL,
      PRIMARY KEY (node_group, position),
      UNIQUE (node_group, kit_name, component)
    )${strict}`,
    'CREATE INDEX node_group_components_kit ON node_group_components (kit_name, kit_version)',
    'ALTER TABLE machines ADD COLUMN node_group TEXT REFERENCES node_groups (name)',
    'CREATE INDEX machines_node_group ON machines (node_group)',
  ];
}

/**
 * The rest of Dominator's config.json, so a machine imported from one is served back unchanged:
 * a machine's other interfaces, VLAN trunk, gateway subnet, locations, owners and hardware; a
 * subnet's DisableMetadata, allowed groups and users, and tags. Lists and the hardware record
 * are JSON (read whole, never searched by part); the rest are columns.
 */
function v4(d: 'sqlite' | 'postgres'): string[] {
  const { json, bool } = typesOf(d);
  const no = d === 'postgres' ? 'FALSE' : '0';
  return [
    // Whether subnet_id was matched from the address rather than named (older rows: named).
    `ALTER TABLE machines ADD COLUMN subnet_matched ${bool} NOT NULL DEFAULT ${no}`,
    `ALTER TABLE machines ADD COLUMN vlan_trunk ${bool} NOT NULL DEFAULT ${no}`,
    `ALTER TABLE machines ADD COLUMN secondary_network_entries ${json}`,
    'ALTER TABLE machines ADD COLUMN gateway_subnet_id TEXT',
    'ALTER TABLE machines ADD COLUMN location TEXT',
    'ALTER TABLE machines ADD COLUMN topology_location TEXT',
    `ALTER TABLE machines ADD COLUMN owner_groups ${json}`,
    `ALTER TABLE machines ADD COLUMN owner_users ${json}`,
    `ALTER TABLE machines ADD COLUMN hardware ${json}`,
    `ALTER TABLE subnets ADD COLUMN disable_metadata ${bool} NOT NULL DEFAULT ${no}`,
    `ALTER TABLE subnets ADD COLUMN allowed_groups ${json}`,
    `ALTER TABLE subnets ADD COLUMN allowed_users ${json}`,
    `ALTER TABLE subnets ADD COLUMN tags ${json}`,
  ];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'machines, MACs, tags, state history, subnets, leases, install progress',
    sqlite: v1('sqlite'),
    postgres: v1('postgres'),
  },
  {
    version: 2,
    description: "installer log of each machine's latest run",
    sqlite: v2('sqlite'),
    postgres: v2('postgres'),
  },
  {
    version: 3,
    description: 'node groups: OS kit, components, layout, installer flags; machines belong to one',
    sqlite: v3('sqlite'),
    postgres: v3('postgres'),
  },
  {
    version: 4,
    description: "the rest of Dominator's config.json: secondary interfaces, trunk, owners, hardware, subnet details",
    sqlite: v4('sqlite'),
    postgres: v4('postgres'),
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** A lock key for PostgreSQL: boot servers starting together migrate one after the other. */
const MIGRATION_LOCK = 0x63726164; // "crad"

async function currentVersion(tx: SqlConn): Promise<number> {
  const rows = await tx.query<{ v: number | string | null }>('SELECT MAX(version) AS v FROM schema_version');
  return Number(rows[0]?.v ?? 0);
}

/**
 * Brings the database to SCHEMA_VERSION. Returns the versions before and after; throws an
 * InventoryError for a database written by a newer Cradle.
 */
export async function migrate(db: SqlDb, migrations: Migration[] = MIGRATIONS): Promise<{ from: number; to: number }> {
  const latest = migrations.length ? migrations[migrations.length - 1].version : 0;
  return db.transaction(async (tx) => {
    if (db.dialect === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    const time = db.dialect === 'postgres' ? 'TIMESTAMPTZ' : 'TEXT';
    await tx.run(
      `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at ${time} NOT NULL)`,
    );
    const from = await currentVersion(tx);
    if (from > latest) {
      throw new InventoryError(
        `the machine database has schema version ${from}, newer than this Cradle understands (${latest}): upgrade Cradle on this host (every boot server sharing the database must run a release at least as new)`,
      );
    }
    for (const m of migrations) {
      if (m.version <= from) continue;
      for (const sql of db.dialect === 'postgres' ? m.postgres : m.sqlite) await tx.run(sql);
      await tx.run('INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)', [
        m.version,
        m.description,
        new Date().toISOString(),
      ]);
    }
    return { from, to: Math.max(from, latest) };
  });
}
