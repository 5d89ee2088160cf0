// The machine database copied between stores, as a head node's first boot moves its SQLite file
// into PostgreSQL: every table row for row (JSON, booleans, times, the state history's ids), the
// copy's sequence moved past the copied ids, a rerun that finds the copy done, a destination that
// differs refused, and a copy that fails half-way leaving the destination empty.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { backends } from '../../test/support/db-backends.ts';
import { compareDatabases, copyDatabase, TABLES, tablesOf } from './copy.ts';
import { importBatch, parseSeedJson } from './import.ts';
import { openInventory } from './open.ts';
import type { SqlInventory } from './sql-store.ts';
import { InventoryError } from './types.ts';

const [sqlite, postgres] = backends;
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const THREE_NICS = path.join(import.meta.dirname, 'testdata', 'config-3-nics.json');

/** A head node's database after some use: subnets, groups, machines in every table. */
async function populate(inv: SqlInventory): Promise<void> {
  await inv.addSubnet({
    id: 'provisioning',
    gateway: '10.1.0.1',
    mask: '255.255.255.0',
    domainName: 'cluster.example',
    dnsServers: ['10.1.0.1'],
    manage: false,
    pool: { start: '10.1.0.128', end: '10.1.0.254' },
  });
  await inv.addSubnet({
    id: 'public',
    gateway: '192.0.2.1',
    mask: '255.255.255.0',
    dnsServers: [],
    manage: true,
    vlanId: 7,
  });
  await inv.addNodeGroup({
    name: 'compute',
    description: 'the compute nodes',
    osKit: { name: 'debian', version: '12', digest: digest('a') },
    components: [{ name: 'slurm', version: '24.05', digest: digest('b'), component: 'slurmd' }],
    storageLayout: {
      BootDriveLayout: [{ FileSystemType: 'ext4', MountPoint: '/', MinimumFreeBytes: 1 }],
      UseKexec: true,
    },
    installerFlags: ['failure-wait=60'],
  });
  for (let n = 1; n <= 3; n++) {
    const hostname = `node${n}`;
    await inv.addMachine({
      hostname,
      macs: [`02:00:00:00:00:0${n}`, `02:00:00:00:01:0${n}`],
      ip: `10.1.0.${10 + n}`,
      tags: { rack: 'r1', ünïcode: `ja ${n}` },
      nodeGroup: 'compute',
      ...(n === 2 ? { ipmi: { hostname: 'node2-ipmi', ip: '10.9.0.2' }, firmware: 'uefi' as const } : {}),
    });
    await inv.setState(hostname, 'birth', 'first install');
    await inv.setState(hostname, 'installing', 'installer started');
    await inv.recordProgress({
      hostname,
      phase: 'load-image',
      bytesDone: n,
      bytesTotal: 10,
      etaSeconds: null,
      updatedAt: new Date().toISOString(),
    });
    // More lines than one batch of the copy: every batch must arrive.
    await inv.appendInstallerLog(
      hostname,
      0,
      Array.from({ length: 700 }, (_, i) => `[${i}] line of ${hostname}`),
    );
    // A console line with a NUL in it (a program's garbage): PostgreSQL's text holds no NUL.
    await inv.appendInstallerLog(hostname, 700, ['binary\0garbage']);
  }
  await inv.allocateLease('02:00:00:00:09:01', 'provisioning', 600, new Date(), 'guest');
  // Every field of Dominator's config.json: secondary interfaces, owners, hardware, subnet details.
  await importBatch(inv, parseSeedJson(fs.readFileSync(THREE_NICS, 'utf8'), THREE_NICS));
}

describe('the machine database copied from SQLite into PostgreSQL', { skip: postgres.skip }, () => {
  const open: SqlInventory[] = [];
  const fresh = async (b = postgres) => {
    const inv = await openInventory(await b.fresh());
    open.push(inv);
    return inv;
  };
  before(() => postgres.setup());
  after(async () => {
    for (const inv of open) await inv.close().catch(() => {});
    await postgres.teardown();
  });

  it('knows every table of the schema, on both stores', async () => {
    const names = TABLES.map((t) => t.name).sort();
    assert.deepEqual(await tablesOf((await fresh(sqlite)).db), names);
    assert.deepEqual(await tablesOf((await fresh()).db), names);
  });

  it('copies every row, checks it, and the copy serves the same machines', async () => {
    const from = await fresh(sqlite);
    await populate(from);
    const to = await fresh();
    const report = await copyDatabase(from.db, to.db);
    assert.equal(report.alreadyCopied, false);
    assert.equal(report.rows.installer_log, 2103);
    assert.equal(report.rows.state_history, 6);
    assert.equal(report.rows.machine_macs, 9);
    assert.equal(report.rows.leases, 1);

    for (const read of [
      (i: SqlInventory) => i.listMachines(),
      (i: SqlInventory) => i.listSubnets(),
      (i: SqlInventory) => i.listNodeGroups(),
      (i: SqlInventory) => i.listLeases(),
      (i: SqlInventory) => i.history('node2'),
      (i: SqlInventory) => i.getProgress('node3'),
      (i: SqlInventory) => i.installerLog('node1', 0, 5000),
    ])
      assert.deepEqual(await read(to), await read(from));

    // The identity sequence moved past the copied ids: the next change gets a new one, no clash.
    await to.setState('node1', 'healthy', 'installed');
    assert.equal((await to.history('node1')).length, 3);

    const again = await copyDatabase(from.db, to.db).catch((e: Error) => e);
    assert.ok(again instanceof InventoryError, 'a destination that changed since is refused');
    assert.match(
      again.message,
      /the destination is not empty .* differs from the source: machines \(hostname=node1\): state is "installing" in the source, "healthy" in the copy/,
    );
  });

  it('a rerun after a completed copy writes nothing; a difference is named by table, key and column', async () => {
    const from = await fresh(sqlite);
    await populate(from);
    const to = await fresh();
    await copyDatabase(from.db, to.db);
    const rerun = await copyDatabase(from.db, to.db);
    assert.equal(rerun.alreadyCopied, true);
    await to.db.run("UPDATE machine_tags SET value = 'r2' WHERE hostname = 'node2' AND key = 'rack'");
    await assert.rejects(
      compareDatabases(from.db, to.db),
      /machine_tags \(hostname=node2, key=rack\): value is "r1" in the source, "r2" in the copy/,
    );
  });

  it('a copy that fails half-way leaves the destination empty, and runs again', async () => {
    const from = await fresh(sqlite);
    await populate(from);
    const to = await fresh();
    // The last table refuses its rows: everything before it must be rolled back with it.
    await to.db.run(
      "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
    );
    await to.db.run('CREATE TRIGGER refuse BEFORE INSERT ON installer_log FOR EACH ROW EXECUTE FUNCTION refuse()');
    await assert.rejects(copyDatabase(from.db, to.db), /disk full/);
    for (const t of TABLES)
      assert.equal(Number((await to.db.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${t.name}`))[0].n), 0, t.name);
    await to.db.run('DROP TRIGGER refuse ON installer_log');
    assert.equal((await copyDatabase(from.db, to.db)).rows.machines, 4);
  });

  it("keys in byte order on both stores, whatever PostgreSQL's locale sorts first", async () => {
    // A database whose collation puts 'rack' before 'RequiredImage' and 'dba' before 'db-x',
    // where SQLite (and the C locale) put them the other way round.
    const base = await postgres.fresh();
    const admin = new pg.Client({ connectionString: base.replace(/\/[^/?]+(\?.*)?$/, '/postgres') });
    await admin.connect();
    try {
      await admin.query(
        "CREATE DATABASE icu_en TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
      );
    } finally {
      await admin.end();
    }
    const to = await openInventory(base.replace(/\/[^/?]+(\?.*)?$/, '/icu_en'));
    open.push(to);
    const ordered = await to.db.query<{ before: boolean }>("SELECT 'rack' < 'RequiredImage' AS before");
    assert.equal(ordered[0].before, true, 'this database sorts by its locale, not by bytes');
    const from = await fresh(sqlite);
    for (const [n, hostname] of ['db-x', 'dba', 'db0'].entries())
      await from.addMachine({
        hostname,
        macs: [`02:00:00:00:07:0${n}`],
        tags: { RequiredImage: 'debian', rack: 'r1', 'a-b': '1', ab: '2' },
      });
    assert.equal((await copyDatabase(from.db, to.db)).rows.machine_tags, 12);
    const back = await fresh(sqlite);
    assert.equal((await copyDatabase(to.db, back.db)).rows.machines, 3);
  });

  it('copies back from PostgreSQL into SQLite the same way', async () => {
    const pg = await fresh();
    await populate(pg);
    const back = await fresh(sqlite);
    const report = await copyDatabase(pg.db, back.db);
    assert.equal(report.rows.machines, 4);
    assert.deepEqual(await back.listMachines(), await pg.listMachines());
  });
});
