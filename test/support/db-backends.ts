// The machine database's two stores for tests that run one suite against both: SQLite in a
// temporary file and PostgreSQL on a throwaway server of its own (pg-cluster.ts). `fresh()` gives
// the URL of a new, empty database. The PostgreSQL half is skipped, saying why, only where
// Debian's postgresql package is not installed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { openInventory } from '../../src/inventory/open.ts';
import type { SqlInventory } from '../../src/inventory/sql-store.ts';
import type { Subnet } from '../../src/inventory/types.ts';
import { findPgBin, startPgCluster, type PgCluster } from './pg-cluster.ts';

export interface Backend {
  name: string;
  skip?: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** The URL of a new, empty database. */
  fresh(): Promise<string>;
  pg?: PgCluster;
}

let dbCount = 0;
const sqliteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-inv-'));
after(() => fs.rmSync(sqliteDir, { recursive: true, force: true }));

const pgBin = findPgBin();
export const backends: Backend[] = [
  {
    name: 'SQLite',
    setup: async () => {},
    teardown: async () => {},
    fresh: async () => `sqlite:${path.join(sqliteDir, `db${++dbCount}.sqlite`)}`,
  },
  {
    name: 'PostgreSQL',
    skip: pgBin
      ? undefined
      : 'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): install the Debian package postgresql',
    async setup() {
      this.pg = await startPgCluster(pgBin as string);
    },
    async teardown() {
      this.pg?.stop();
    },
    async fresh() {
      return (this.pg as PgCluster).createDatabase(`t${++dbCount}`);
    },
  },
];

/**
 * The inventories a suite opens on `b`, every one closed and `b` torn down after the suite (call it
 * inside the suite's describe): `fresh()` opens a new, empty database, `again()` another connection
 * to the last one (as the CLI's `cradle machine …` is while the server runs), `at(url)` any.
 */
export function inventoriesOn(b: Backend) {
  const open: SqlInventory[] = [];
  let last = '';
  after(async () => {
    for (const inv of open) await inv.close().catch(() => {});
    await b.teardown();
  });
  const at = async (url: string) => {
    const inv = await openInventory(url);
    open.push(inv);
    return inv;
  };
  return {
    at,
    fresh: async () => at((last = await b.fresh())),
    again: () => at(last),
    /** The URL of the last database `fresh()` made. */
    get url() {
      return last;
    },
  };
}

/** A subnet with a small pool, for suites that need one. */
export const labSubnet: Subnet = {
  id: 'Lab',
  gateway: '10.1.0.1',
  mask: '255.255.255.0',
  dnsServers: ['10.1.0.1'],
  manage: false,
  pool: { start: '10.1.0.100', end: '10.1.0.119' },
};
