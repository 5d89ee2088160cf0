// The machine database as commands open it: `--db` (or CRADLE_DB), opened for one command and
// always closed, and storage layouts read from a file and checked as the installer checks them.
import fs from 'node:fs';
import { Option } from 'commander';
import { DEFAULT_DB, openInventory } from '../inventory/open.ts';
import type { SqlInventory } from '../inventory/sql-store.ts';
import { parseStorageLayout } from '../storage/layout.ts';
import { stripLineComments } from '../util/parse-json.ts';

export const dbOption = () =>
  new Option(
    '--db <url>',
    'machine database: a SQLite file, sqlite:PATH or postgres://user@host/db (env CRADLE_DB)',
  ).default(process.env.CRADLE_DB || DEFAULT_DB);

/** Opens the database for one command and always closes it, so a PostgreSQL pool never keeps the process alive. */
export async function withDb<T>(url: string, fn: (inv: SqlInventory) => Promise<T>): Promise<T> {
  const inv = await openInventory(url);
  try {
    return await fn(inv);
  } finally {
    await inv.close();
  }
}

export function readLayout(file: string): Record<string, unknown> {
  const text = fs.readFileSync(file, 'utf8');
  parseStorageLayout(text, file); // the installer's own check, now rather than at install time
  return JSON.parse(stripLineComments(text)) as Record<string, unknown>;
}
