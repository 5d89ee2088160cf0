// Opening the machine database from one string, as `--db` and CRADLE_DB give it: a file path or
// `sqlite:PATH` for the embedded store, `postgres://…` or `postgresql://…` for a shared server.
// The schema is brought up to date on open, so every command and server sees the current one.
import { migrate } from './migrations.ts';
import type { SqlDb } from './sql-rows.ts';
import { SqlInventory } from './sql-store.ts';
import { InventoryError } from './types.ts';

export const DEFAULT_DB = '/var/lib/cradle/inventory.db';

export type DbLocation = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

export function parseDbUrl(url: string): DbLocation {
  if (/^postgres(ql)?:\/\//i.test(url)) return { kind: 'postgres', url };
  if (/^sqlite:/i.test(url)) {
    // sqlite:/var/lib/x.db, sqlite:relative.db and the URL form sqlite:///var/lib/x.db
    const rest = url.slice('sqlite:'.length);
    const file = rest.startsWith('//') ? rest.slice(2) : rest;
    if (!file) throw new InventoryError(`'${url}' names no file: write sqlite:/path/to/inventory.db`);
    return { kind: 'sqlite', file };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  if (scheme)
    throw new InventoryError(
      `unsupported database '${scheme}://…': use a file path, sqlite:PATH or postgres://user@host/db`,
    );
  if (!url) throw new InventoryError('no database given: pass --db PATH or a postgres:// URL, or set CRADLE_DB');
  return { kind: 'sqlite', file: url };
}

/** Opens (creating and migrating as needed) the machine database at `url`. */
export async function openInventory(url: string): Promise<SqlInventory> {
  const where = parseDbUrl(url);
  let db: SqlDb;
  if (where.kind === 'postgres') {
    const { PostgresDb } = await import('./postgres.ts'); // loaded only by those who use it
    db = new PostgresDb(where.url);
  } else {
    const { SqliteDb } = await import('./sqlite.ts');
    db = new SqliteDb(where.file);
  }
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  return new SqlInventory(db);
}
