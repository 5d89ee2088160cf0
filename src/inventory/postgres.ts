// The shared store: PostgreSQL through the `pg` package (pure JavaScript), for fleets where several
// boot servers use one database. Transactions are READ COMMITTED on a pooled connection; the
// statements that must not interleave take row locks (SELECT … FOR UPDATE) or the address lock
// (see sql-store.ts). Times come back as Date and are handed on as ISO 8601 strings, like SQLite's.
import pg from 'pg';
import { InventoryError } from './types.ts';
import { type Row, redactUrl, type SqlConn, type SqlDb } from './sql-rows.ts';

const UNIQUE_VIOLATION = '23505';

interface PgError extends Error {
  code?: string;
  table?: string;
  detail?: string;
}

function normalize(row: Row): Row {
  for (const [k, v] of Object.entries(row)) if (v instanceof Date) row[k] = v.toISOString();
  return row;
}

export class PostgresDb implements SqlDb {
  readonly dialect = 'postgres';
  readonly url: string;
  private readonly pool: pg.Pool;

  constructor(url: string, poolSize = 10) {
    this.url = url;
    this.pool = new pg.Pool({ connectionString: url, max: poolSize, application_name: 'cradle' });
    // An idle pooled connection that breaks (server restart) is dropped by the pool and replaced
    // at the next query; without a listener the error would end the process.
    this.pool.on('error', () => {});
  }

  /** An error of the server (with its SQLSTATE) as it is; any other (refused, unknown host, TLS) named with the database. */
  private wrap(err: unknown): unknown {
    if (err instanceof pg.DatabaseError) return err;
    const e = err as PgError;
    return new InventoryError(
      `cannot use the PostgreSQL database ${redactUrl(this.url)}: ${e?.message || e?.code || String(e)}`,
    );
  }

  private on(client: pg.Pool | pg.PoolClient): SqlConn {
    return {
      query: async <T>(sql: string, params: readonly unknown[] = []) => {
        try {
          return (await client.query(sql, params as unknown[])).rows.map(normalize) as T[];
        } catch (err) {
          throw this.wrap(err);
        }
      },
      run: async (sql, params = []) => {
        try {
          return (await client.query(sql, params as unknown[])).rowCount ?? 0;
        } catch (err) {
          throw this.wrap(err);
        }
      },
    };
  }

  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.on(this.pool).query<T>(sql, params);
  }

  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.on(this.pool).run(sql, params);
  }

  async transaction<T>(fn: (tx: SqlConn) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.wrap(err);
    }
    const conn = this.on(client);
    let broken = false;
    try {
      await conn.run('BEGIN');
      const result = await fn(conn);
      await conn.run('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection is gone: do not return it to the pool
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  uniqueViolation(err: unknown): string | undefined {
    const e = err as PgError;
    if (e?.code !== UNIQUE_VIOLATION) return undefined;
    const column = /^Key \(([^)]+)\)/.exec(e.detail ?? '')?.[1];
    return `${e.table}.${column}`;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
