// The embedded store: one SQLite file through Node's built-in node:sqlite (no native addon).
// WAL mode lets the boot server's readers run beside a writer (the CLI, another process). Writers
// take the write lock up front (BEGIN IMMEDIATE), so a transaction never fails half-way on a lock
// upgrade; waiting for that lock is done asynchronously, because DatabaseSync blocks the thread
// while SQLite busy-waits, and the holder may be a transaction in this very event loop.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { InventoryError } from './types.ts';
import type { Row, SqlConn, SqlDb } from './sql-rows.ts';

/** How long a writer waits for another one to finish before giving up. */
export const BUSY_TIMEOUT_MS = 10_000;

const SQLITE_BUSY = 5;

interface SqliteError extends Error {
  errcode?: number;
}

const isBusy = (err: unknown) => ((err as SqliteError).errcode ?? 0) % 256 === SQLITE_BUSY;

function bind(params: readonly unknown[]): SQLInputValue[] {
  return params.map((p) => (p === undefined ? null : typeof p === 'boolean' ? (p ? 1 : 0) : (p as SQLInputValue)));
}

export class SqliteDb implements SqlDb {
  readonly dialect = 'sqlite';
  readonly file: string;
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  /** One connection, one transaction at a time: callers in this process queue here. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly conn: SqlConn;
  private dataVersion: StatementSync | undefined;
  private lastDataVersion: number | undefined;

  constructor(file: string) {
    this.file = file;
    if (file !== ':memory:') {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory())
        throw new InventoryError(`'${file}' is a directory: pass the path of the database file`);
    }
    try {
      this.db = new DatabaseSync(file, { timeout: BUSY_TIMEOUT_MS, enableForeignKeyConstraints: true });
      this.db.exec('PRAGMA journal_mode = WAL');
    } catch (err) {
      throw new InventoryError(`cannot open the SQLite database '${file}': ${(err as Error).message}`);
    }
    this.conn = {
      // Rows come with a null prototype; plain objects compare and print like PostgreSQL's.
      query: async <T>(sql: string, params: readonly unknown[] = []) =>
        this.prepare(sql)
          .all(...bind(params))
          .map((r) => ({ ...r })) as T[],
      run: async (sql, params = []) => Number(this.prepare(sql).run(...bind(params)).changes),
    };
  }

  private prepare(sql: string): StatementSync {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      // `$1` is a named parameter to SQLite; `?1` is the numbered one the shared statements mean.
      stmt = this.db.prepare(sql.replace(/\$(\d+)/g, '?$1'));
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn);
    this.queue = result.catch(() => {});
    return result;
  }

  query<T = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.exclusive(() => this.conn.query<T>(sql, params));
  }

  run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.exclusive(() => this.conn.run(sql, params));
  }

  transaction<T>(fn: (tx: SqlConn) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      await this.begin();
      try {
        const result = await fn(this.conn);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /** BEGIN IMMEDIATE, retried with back-off while another connection holds the write lock. */
  private async begin(): Promise<void> {
    const deadline = Date.now() + BUSY_TIMEOUT_MS;
    this.db.exec('PRAGMA busy_timeout = 0');
    try {
      for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
        try {
          this.db.exec('BEGIN IMMEDIATE');
          return;
        } catch (err) {
          if (!isBusy(err)) throw err;
          if (Date.now() > deadline)
            throw new InventoryError(
              `the SQLite database '${this.file}' stayed locked by another writer for ${BUSY_TIMEOUT_MS / 1000} s`,
            );
          await sleep(delay * (0.5 + Math.random()));
        }
      }
    } finally {
      this.db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  /**
   * PRAGMA data_version moves when another connection (the CLI, another process) commits, never
   * for this connection's own commits (SqlInventory drops its cache itself on those). Read outside
   * the queue: it is one synchronous statement, and inside this connection's own open transaction
   * it is still right, as nobody else can commit while that transaction holds the write lock.
   */
  changedByOthers(): boolean {
    let version: number;
    try {
      this.dataVersion ??= this.db.prepare('PRAGMA data_version');
      version = Number((this.dataVersion.get() as { data_version: number }).data_version);
    } catch {
      return true; // closed, or unreadable: assume a change, and let the lookup itself report the error
    }
    const changed = version !== this.lastDataVersion;
    this.lastDataVersion = version;
    return changed;
  }

  uniqueViolation(err: unknown): string | undefined {
    const m = /UNIQUE constraint failed: ([\w.]+)/.exec((err as Error)?.message ?? '');
    return m?.[1];
  }

  async close(): Promise<void> {
    await this.exclusive(async () => this.db.close());
  }
}
