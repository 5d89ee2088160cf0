// Each machine's last install as the boot server follows it: its progress (one row, replaced) and
// its installer's log lines (keyed by line number, so a batch sent again changes nothing; the latest
// MAX_LOG_LINES kept). Statements for both SQL dialects, run by sql-store.ts in its transactions.
import type { InstallProgress } from './types.ts';
import { checkProgress } from './validate.ts';
import { fromJson, json, noMachine, type SqlConn } from './sql-rows.ts';

/** The installer log kept per machine: its latest lines, each cut to a length. */
export const MAX_LOG_LINES = 20_000;
const MAX_LOG_LINE = 4000;

export async function recordProgressOn(c: SqlConn, input: InstallProgress): Promise<void> {
  const { hostname, updatedAt, ...progress } = checkProgress(input);
  if (!(await c.query('SELECT 1 FROM machines WHERE hostname = $1', [hostname])).length) throw noMachine(hostname);
  await c.run(
    'INSERT INTO install_progress (hostname, updated_at, progress) VALUES ($1, $2, $3) ON CONFLICT (hostname) DO UPDATE SET updated_at = excluded.updated_at, progress = excluded.progress',
    [hostname, new Date(updatedAt).toISOString(), json(progress)],
  );
}

export async function progressOf(c: SqlConn, hostname: string): Promise<InstallProgress | undefined> {
  const [row] = await c.query<{ updated_at: string; progress: unknown }>(
    'SELECT updated_at, progress FROM install_progress WHERE hostname = $1',
    [hostname],
  );
  return (
    row && {
      hostname,
      ...(fromJson(row.progress) as Omit<InstallProgress, 'hostname' | 'updatedAt'>),
      updatedAt: row.updated_at,
    }
  );
}

/**
 * Adds a batch of `lines` from line number `firstSeq`, and keeps the log within its window: the
 * latest `maxLines` up to this batch when it is the newest (the usual case). A batch below the
 * latest line stored (another run whose first lines were lost, or a stale one) is kept beside it,
 * the whole log then cut to the newest `2 × maxLines` lines, so that batches sent in decreasing
 * order cannot grow it without end.
 */
export async function appendLogOn(
  c: SqlConn,
  hostname: string,
  firstSeq: number,
  lines: string[],
  maxLines = MAX_LOG_LINES,
): Promise<void> {
  const [latest] = await c.query<{ top: number | string | null }>(
    'SELECT MAX(seq) AS top FROM installer_log WHERE hostname = $1',
    [hostname],
  );
  const top = Number(latest?.top ?? -1);
  for (const [i, line] of lines.entries()) {
    await c.run(
      'INSERT INTO installer_log (hostname, seq, line) VALUES ($1, $2, $3) ON CONFLICT (hostname, seq) DO NOTHING',
      // NUL as U+FFFD: PostgreSQL's text holds no NUL, and both stores must hold the same line.
      [hostname, firstSeq + i, line.slice(0, MAX_LOG_LINE).replaceAll('\0', '\uFFFD')],
    );
  }
  const last = firstSeq + lines.length - 1;
  if (last >= top)
    await c.run('DELETE FROM installer_log WHERE hostname = $1 AND seq < $2', [hostname, last + 1 - maxLines]);
  else
    await c.run(
      'DELETE FROM installer_log WHERE hostname = $1 AND seq < (SELECT seq FROM installer_log WHERE hostname = $2 ORDER BY seq DESC LIMIT 1 OFFSET $3)',
      [hostname, hostname, 2 * maxLines - 1],
    );
}

export async function logOf(
  c: SqlConn,
  hostname: string,
  sinceSeq: number,
  limit: number,
): Promise<{ seq: number; line: string }[]> {
  const rows = await c.query<{ seq: number | string; line: string }>(
    'SELECT seq, line FROM installer_log WHERE hostname = $1 AND seq >= $2 ORDER BY seq LIMIT $3',
    [hostname, sinceSeq, limit],
  );
  return rows.map((r) => ({ seq: Number(r.seq), line: r.line }));
}
