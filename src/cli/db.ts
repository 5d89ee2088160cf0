// The machine database as commands open it: `--db` (or CRADLE_DB), opened for one command and
// always closed, storage layouts read from a file and checked as the installer checks them, and
// `cradle db copy`, the database moved from one store into another.
import fs from 'node:fs';
import { type Command, Option } from 'commander';
import { type CopyReport, copyDatabase, describeRows } from '../inventory/copy.ts';
import { DEFAULT_DB, openInventory, parseDbUrl } from '../inventory/open.ts';
import { redactUrl } from '../inventory/sql-rows.ts';
import type { SqlInventory } from '../inventory/sql-store.ts';
import { HEAD_PATHS, readEnv } from '../setup/services.ts';
import { parseStorageLayout } from '../storage/layout.ts';
import { stripLineComments } from '../util/parse-json.ts';

/**
 * The database a command uses unless told: CRADLE_DB, else on a head node the one its services use
 * (its settings file: PostgreSQL after the first boot), else the SQLite file. One default for every
 * command, so nothing opens a stale or new empty file beside the database the servers serve from.
 */
export function defaultDb(): string {
  if (process.env.CRADLE_DB) return process.env.CRADLE_DB;
  let settings = '';
  try {
    settings = fs.readFileSync(HEAD_PATHS.env, 'utf8');
  } catch {
    // not a head node
  }
  return readEnv(settings).CRADLE_DB || DEFAULT_DB;
}

export const dbOption = () =>
  new Option(
    '--db <url>',
    `machine database: a SQLite file, sqlite:PATH or postgres://user@host/db (env CRADLE_DB; on a head node its ${HEAD_PATHS.env})`,
  ).default(defaultDb());

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

/** Prints a copy's rows per table, as `db copy` and the head node's first boot report it. */
export function describeCopy(report: CopyReport, from: string, to: string): string {
  const rows = describeRows(report.rows);
  return report.alreadyCopied
    ? `${redactUrl(to)} already holds every row of ${redactUrl(from)} (checked row for row): ${rows}`
    : `copied ${redactUrl(from)} into ${redactUrl(to)}, checked row for row: ${rows}`;
}

/** `cradle db copy FROM TO`: the machine database into another store (SQLite to PostgreSQL, or back). */
export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('the machine database itself');
  db.command('copy <from> <to>')
    .description(
      'copy every row of one machine database into another, empty one (e.g. sqlite:/var/lib/cradle/inventory.db into postgres://...) and check it row for row',
    )
    .action(async (from: string, to: string) => {
      const source = parseDbUrl(from);
      if (source.kind === 'sqlite' && !fs.existsSync(source.file))
        throw new Error(`${source.file} does not exist: name the SQLite file to copy from`);
      await withDb(from, (source) =>
        withDb(to, async (dest) => console.log(describeCopy(await copyDatabase(source.db, dest.db), from, to))),
      );
    });
}
