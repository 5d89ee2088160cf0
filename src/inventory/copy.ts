// Copying the machine database from one store into another, then checking the copy row for row:
// how a head node's SQLite file, carried from its install, becomes its PostgreSQL database at
// first boot (as Kusu moved its database into MySQL), and how a site moves to a shared server.
// Both stores are at the same schema version (opened and migrated). The source is read in one
// transaction (a consistent view; on SQLite it also holds writers off), the destination written
// and checked in one: a crash, a kill or a difference leaves it empty, and the copy can run again.
// Rows are read in key order, text compared byte by byte on both stores (PostgreSQL's own order
// follows its locale), a batch at a time from where the last ended (never OFFSET: a site's
// installer logs run to millions of rows).
import { type Row, type SqlConn, type SqlDb, fromJson, list } from './sql-rows.ts';
import { InventoryError } from './types.ts';

interface TableSpec {
  name: string;
  /** The primary key: the order rows are read in, and what a difference is named by. */
  key: string[];
  /** Key columns that are numbers (the others are text). */
  intKeys?: string[];
  json?: string[];
  bool?: string[];
  time?: string[];
  /** A PostgreSQL identity column, copied as it is and its sequence moved past it. */
  identity?: string;
}

/** Every table of the schema, parents before the tables that reference them. */
export const TABLES: TableSpec[] = [
  {
    name: 'subnets',
    key: ['id'],
    json: ['dns_servers', 'allowed_groups', 'allowed_users', 'tags'],
    bool: ['manage', 'disable_metadata'],
  },
  {
    name: 'node_groups',
    key: ['name'],
    json: ['storage_layout', 'installer_flags'],
    time: ['created_at', 'updated_at'],
  },
  { name: 'node_group_components', key: ['node_group', 'position'], intKeys: ['position'] },
  {
    name: 'machines',
    key: ['hostname'],
    json: ['ipmi', 'storage_layout', 'secondary_network_entries', 'owner_groups', 'owner_users', 'hardware'],
    bool: ['subnet_matched', 'vlan_trunk'],
    time: ['state_changed_at', 'created_at'],
  },
  { name: 'machine_macs', key: ['mac'] },
  { name: 'machine_tags', key: ['hostname', 'key'] },
  { name: 'state_history', key: ['id'], intKeys: ['id'], time: ['at'], identity: 'id' },
  { name: 'leases', key: ['mac'], time: ['expires_at'] },
  { name: 'install_progress', key: ['hostname'], json: ['progress'], time: ['updated_at'] },
  { name: 'installer_log', key: ['hostname', 'seq'], intKeys: ['seq'] },
];

/** Rows read and written at a time: bounded memory whatever the size of the installer logs. */
const BATCH = 500;

export interface CopyReport {
  /** Rows per table, equal on both sides. */
  rows: Record<string, number>;
  /** The destination already held exactly the source's rows: nothing was written. */
  alreadyCopied: boolean;
}

/** Rows per table as a copy reports them: `subnets 1, machines 3, ...`. */
export function describeRows(rows: Record<string, number>): string {
  return Object.entries(rows)
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
}

/** The tables of a store, schema_version left out. */
export async function tablesOf(db: SqlDb): Promise<string[]> {
  const rows =
    db.dialect === 'sqlite'
      ? await db.query<{ name: string }>(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
      : await db.query<{ name: string }>(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
        );
  return rows.map((r) => r.name).filter((n) => n !== 'schema_version');
}

async function checkSchema(db: SqlDb, where: string): Promise<void> {
  const known = new Set(TABLES.map((t) => t.name));
  const unknown = (await tablesOf(db)).filter((t) => !known.has(t));
  if (unknown.length)
    throw new InventoryError(
      `${where} has tables this copy does not know (${unknown.join(', ')}): copy with the Cradle release that made them`,
    );
}

const version = async (db: SqlDb) =>
  Number((await db.query<{ v: unknown }>('SELECT MAX(version) AS v FROM schema_version'))[0]?.v ?? 0);

/** A value as the destination's column takes it. */
function toStore(t: TableSpec, column: string, v: unknown, dialect: SqlDb['dialect']): unknown {
  if (v === null || v === undefined) return null;
  if (t.json?.includes(column)) return JSON.stringify(fromJson(v)); // pg would write a JS array as an SQL array
  if (t.bool?.includes(column)) return dialect === 'postgres' ? Boolean(v) : v ? 1 : 0;
  return typeof v === 'bigint' ? Number(v) : v;
}

/** JSON with its keys sorted: JSONB keeps its own key order, so text is compared by value. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** A value as both stores would agree on it: JSON by value, booleans as booleans, times as instants. */
function comparable(t: TableSpec, column: string, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (t.json?.includes(column)) return canonical(fromJson(v));
  if (t.bool?.includes(column)) return Boolean(v);
  if (t.time?.includes(column)) {
    const at = Date.parse(String(v));
    return Number.isNaN(at) ? String(v) : at;
  }
  if (column === t.identity) return Number(v); // pg hands BIGINT over as text
  return typeof v === 'bigint' || typeof v === 'number' ? Number(v) : v;
}

/** One store as a copy reads or writes it: a connection (in a transaction) and its dialect. */
interface Side {
  c: SqlConn;
  dialect: SqlDb['dialect'];
}

async function* rowsOf(side: Side, t: TableSpec): AsyncGenerator<Row[]> {
  const column = (k: string) => (side.dialect === 'postgres' && !t.intKeys?.includes(k) ? `${k} COLLATE "C"` : k);
  const order = t.key.map(column).join(', ');
  let after: unknown[] | undefined;
  for (;;) {
    const where = after ? ` WHERE (${order}) > (${list(t.key.length)})` : '';
    const rows = await side.c.query(`SELECT * FROM ${t.name}${where} ORDER BY ${order} LIMIT ${BATCH}`, after ?? []);
    if (rows.length) yield rows;
    if (rows.length < BATCH) return;
    const last = rows[rows.length - 1];
    after = t.key.map((k) => last[k]);
  }
}

async function count(c: SqlConn, table: string): Promise<number> {
  return Number((await c.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);
}

async function copyTable(from: Side, to: Side, t: TableSpec): Promise<number> {
  const { dialect } = to;
  let copied = 0;
  for await (const rows of rowsOf(from, t)) {
    const columns = Object.keys(rows[0]);
    const values: unknown[] = [];
    const tuples = rows.map((r, i) => {
      for (const c of columns) values.push(toStore(t, c, r[c], dialect));
      return `(${list(columns.length, i * columns.length + 1)})`;
    });
    const override = t.identity && dialect === 'postgres' ? ' OVERRIDING SYSTEM VALUE' : '';
    await to.c.run(`INSERT INTO ${t.name} (${columns.join(', ')})${override} VALUES ${tuples.join(', ')}`, values);
    copied += rows.length;
  }
  if (t.identity && dialect === 'postgres')
    await to.c.query(
      `SELECT setval(pg_get_serial_sequence('${t.name}', '${t.identity}'), COALESCE(MAX(${t.identity}), 0) + 1, false) FROM ${t.name}`,
    );
  return copied;
}

/** Both stores' rows, table by table in key order; throws naming the first difference. */
async function compare(a: Side, b: Side): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of TABLES) {
    const [na, nb] = [await count(a.c, t.name), await count(b.c, t.name)];
    if (na !== nb) throw new InventoryError(`${t.name}: ${na} rows in the source, ${nb} in the copy`);
    const left = rowsOf(a, t);
    const right = rowsOf(b, t);
    for (;;) {
      const [x, y] = [await left.next(), await right.next()];
      if (x.done || y.done) break;
      for (const [i, ra] of x.value.entries()) {
        const rb = y.value[i];
        for (const column of Object.keys(ra)) {
          const [va, vb] = [comparable(t, column, ra[column]), comparable(t, column, rb?.[column])];
          if (va !== vb) {
            const key = t.key.map((k) => `${k}=${String(ra[k])}`).join(', ');
            throw new InventoryError(
              `${t.name} (${key}): ${column} is ${JSON.stringify(va)} in the source, ${JSON.stringify(vb)} in the copy`,
            );
          }
        }
      }
    }
    counts[t.name] = na;
  }
  return counts;
}

/**
 * Checks that both stores hold the same rows, table by table in key order. Throws naming the
 * table, the row's key and the column of the first difference; returns the rows per table.
 */
export function compareDatabases(a: SqlDb, b: SqlDb): Promise<Record<string, number>> {
  return compare({ c: a, dialect: a.dialect }, { c: b, dialect: b.dialect });
}

/**
 * Copies every row of `from` into `to` and checks the copy row for row before it is committed.
 * `to` must be empty, or already hold exactly `from`'s rows (a copy that completed before a
 * crash): then nothing is written.
 */
export async function copyDatabase(from: SqlDb, to: SqlDb): Promise<CopyReport> {
  const [vf, vt] = [await version(from), await version(to)];
  if (vf !== vt)
    throw new InventoryError(`the source has schema version ${vf}, the destination ${vt}: open both with one release`);
  await checkSchema(from, 'the source');
  await checkSchema(to, 'the destination');
  return from.transaction(async (tx) => {
    // One view of the source for the copy and the check, whatever its writers do meanwhile.
    if (from.dialect === 'postgres') await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const source: Side = { c: tx, dialect: from.dialect };
    let held = 0;
    for (const t of TABLES) held += await count(to, t.name);
    if (held) {
      try {
        return { rows: await compare(source, { c: to, dialect: to.dialect }), alreadyCopied: true };
      } catch (err) {
        throw new InventoryError(
          `the destination is not empty (${held} rows) and differs from the source: ${(err as Error).message}; copy into an empty database`,
        );
      }
    }
    return to.transaction(async (dtx) => {
      const dest: Side = { c: dtx, dialect: to.dialect };
      for (const t of TABLES) await copyTable(source, dest, t);
      return { rows: await compare(source, dest), alreadyCopied: false };
    });
  });
}
