// The head node's first boot (`cradle setup first-boot`, run once by cradle-first-boot.service),
// as Kusu moved its database into MySQL when its master node first came up: the machine database
// the setup carried in (SQLite) is copied into the local PostgreSQL and checked row for row, the
// services' settings are pointed at it, and a marker says it is done. Every step can run again:
// a kill half-way leaves PostgreSQL empty (one transaction) or complete, and the SQLite file is
// only set aside once the settings name PostgreSQL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CopyReport, copyDatabase, describeRows } from '../inventory/copy.ts';
import { openInventory } from '../inventory/open.ts';
import { run } from '../system/run.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { HEAD_PATHS, readEnv, withEnv } from './services.ts';

export interface FirstBootOptions {
  /** The new system's root: '/' on the head node, a directory in tests. */
  root: string;
  postgres: {
    /** The server's unix socket directory (Debian: /run/postgresql). */
    socketDir: string;
    port?: number;
    database: string;
    /** The role the services connect as: the user they run as (peer authentication). */
    role: string;
    /** How to run a program as the server's superuser (Debian: runuser -u postgres --). */
    asSuperuser: string[];
  };
  /** How long to wait for the server to accept connections. */
  waitMs?: number;
  log: (line: string) => void;
}

export const DEBIAN_POSTGRES = {
  socketDir: '/run/postgresql',
  database: 'cradle',
  role: os.userInfo().username,
  asSuperuser: ['runuser', '-u', 'postgres', '--'],
};

export interface FirstBootResult {
  url: string;
  copy: CopyReport;
}

const at = (root: string, p: string) => path.join(root, p);

/** The URL the services use: the local server through its socket, peer-authenticated. */
export function postgresUrl(o: FirstBootOptions['postgres']): string {
  const port = o.port ? `&port=${o.port}` : '';
  return `postgresql://${o.role}@/${o.database}?host=${o.socketDir}${port}`;
}

/** Waits until the server accepts connections (it starts beside this unit, and slowly on a small machine). */
async function waitForPostgres(o: FirstBootOptions): Promise<void> {
  const { socketDir, port } = o.postgres;
  const args = ['-h', socketDir, ...(port ? ['-p', String(port)] : []), '-d', 'postgres'];
  const deadline = Date.now() + (o.waitMs ?? 300_000);
  for (let said = false; ; ) {
    const ok = await run('pg_isready', args).then(
      () => true,
      (err: Error) => {
        if (/is not installed or not on PATH/.test(err.message))
          throw new Error(
            "no pg_isready: the head node's OS kit has no PostgreSQL client (Debian: postgresql, postgresql-client)",
          );
        return false;
      },
    );
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(
        `PostgreSQL does not accept connections on ${socketDir}: see 'systemctl status postgresql' (Debian's postgresql package must be in the OS kit)`,
      );
    if (!said) o.log(`waiting for PostgreSQL on ${socketDir}`);
    said = true;
    await sleep(1000);
  }
}

/** The role and its database, made by the server's superuser if they are not there yet. */
async function ensureRoleAndDatabase(o: FirstBootOptions): Promise<void> {
  const { socketDir, port, role, database, asSuperuser } = o.postgres;
  // The names go in as psql variables, quoted by the server (%I, :'v'), never pasted into SQL.
  const sql = [
    "SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')",
    '\\gexec',
    "SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')",
    '\\gexec',
    '',
  ].join('\n');
  const [program, ...prefix] = [...asSuperuser, 'psql'];
  await run(
    program,
    [
      ...prefix,
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-v',
      `role=${role}`,
      '-v',
      `db=${database}`,
      '-h',
      socketDir,
      ...(port ? ['-p', String(port)] : []),
      '-U',
      'postgres',
      '-d',
      'postgres',
    ],
    { input: sql },
  );
}

export async function firstBoot(o: FirstBootOptions): Promise<FirstBootResult> {
  const envFile = at(o.root, HEAD_PATHS.env);
  if (!fs.existsSync(envFile))
    throw new Error(`${HEAD_PATHS.env} is missing: this is not a head node installed by cradle setup`);
  const env = fs.readFileSync(envFile, 'utf8');
  const url = postgresUrl(o.postgres);
  const sqlite = at(o.root, HEAD_PATHS.db);
  const setAside = `${sqlite}.before-postgresql`;
  await waitForPostgres(o);
  await ensureRoleAndDatabase(o);
  const done = () =>
    writeFileAtomic(
      at(o.root, HEAD_PATHS.firstBootDone),
      `${new Date().toISOString()} the machine database is in ${url}; the SQLite file the setup carried is ${HEAD_PATHS.db}.before-postgresql\n`,
    );
  if (!fs.existsSync(sqlite)) {
    // Killed after the move and before the marker: finish, having nothing more to copy.
    if (fs.existsSync(setAside) && readEnv(env).CRADLE_DB === url) {
      o.log(`the machine database was already moved into ${url}`);
      done();
      return { url, copy: { rows: {}, alreadyCopied: true } };
    }
    throw new Error(`${HEAD_PATHS.db} is missing: there is no machine database to carry into PostgreSQL`);
  }
  const from = await openInventory(`sqlite:${sqlite}`);
  let copy: CopyReport;
  try {
    const to = await openInventory(url);
    try {
      copy = await copyDatabase(from.db, to.db);
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
  o.log(
    `machine database ${copy.alreadyCopied ? 'already' : 'copied'} in PostgreSQL (${url}), checked row for row: ${describeRows(copy.rows)}`,
  );
  writeFileAtomic(envFile, withEnv(env, 'CRADLE_DB', url));
  // Set aside, not removed: the install's own record stays, and no command opens it by default.
  fs.renameSync(sqlite, setAside);
  for (const side of ['-wal', '-shm']) fs.rmSync(`${sqlite}${side}`, { force: true });
  done();
  return { url, copy };
}
