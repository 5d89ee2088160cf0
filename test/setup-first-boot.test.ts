// The head node's first boot on this host, against a real PostgreSQL server (as the head node's
// own, reached through its unix socket): `cradle setup first-boot` makes the role and database,
// carries the SQLite database the setup left into it row for row, points the services' settings
// at it, sets the SQLite file aside and leaves its marker; run again after a kill between the move
// and the marker, it finishes without copying twice. cradle-first-boot.service runs exactly this.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { openInventory } from '../src/inventory/open.ts';
import { HEAD_PATHS, readEnv } from '../src/setup/services.ts';
import { cradleBin, cradleFails, isRoot, tmpDir } from './helpers.ts';
import { findPgBin, type PgCluster, startPgCluster } from './support/pg-cluster.ts';

const run = promisify(execFile);
const pgBin = findPgBin();
const skip =
  (!pgBin && 'PostgreSQL is not installed: install the Debian package postgresql') ||
  (!isRoot() && 'runs psql as the postgres user (runuser), which needs root');

describe("the head node's first boot", { skip }, () => {
  let pg: PgCluster;
  const root = tmpDir('cradle-first-boot-');
  const at = (p: string) => path.join(root, p);
  before(async () => {
    pg = await startPgCluster(pgBin as string);
  });
  after(() => {
    pg?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('moves the carried SQLite database into PostgreSQL, checked, and points the services at it', async () => {
    fs.mkdirSync(path.dirname(at(HEAD_PATHS.env)), { recursive: true });
    fs.writeFileSync(
      at(HEAD_PATHS.env),
      '# the settings\nCRADLE_DB=sqlite:/var/lib/cradle/inventory.db\nCRADLE_INTERFACE=ens4\n',
    );
    const inv = await openInventory(`sqlite:${at(HEAD_PATHS.db)}`);
    try {
      await inv.addSubnet({
        id: 'provisioning',
        gateway: '10.1.0.1',
        mask: '255.255.255.0',
        dnsServers: ['10.1.0.1'],
        manage: false,
        pool: { start: '10.1.0.128', end: '10.1.0.254' },
      });
      await inv.addMachine({ hostname: 'node1', macs: ['02:00:00:00:00:01'], ip: '10.1.0.11', tags: { rack: 'r1' } });
    } finally {
      await inv.close();
    }
    const args = ['setup', 'first-boot', '--root', root, '--pg-socket', pg.socketDir, '--pg-port', String(pg.port)];
    const { stdout } = await run(cradleBin, args, { encoding: 'utf8' });
    assert.match(
      stdout,
      /copied in PostgreSQL .*checked row for row: subnets 1, .*machines 1, machine_macs 1, machine_tags 1/,
    );

    const url = readEnv(fs.readFileSync(at(HEAD_PATHS.env), 'utf8')).CRADLE_DB;
    assert.equal(url, `postgresql://root@/cradle?host=${pg.socketDir}&port=${pg.port}`);
    assert.match(fs.readFileSync(at(HEAD_PATHS.env), 'utf8'), /^# the settings\n/, 'the comments are kept');
    const moved = await openInventory(url);
    try {
      assert.deepEqual(
        (await moved.listMachines()).map((m) => [m.hostname, m.ip, m.tags.rack]),
        [['node1', '10.1.0.11', 'r1']],
      );
      assert.deepEqual((await moved.getSubnet('provisioning'))?.pool, { start: '10.1.0.128', end: '10.1.0.254' });
    } finally {
      await moved.close();
    }
    assert.ok(!fs.existsSync(at(HEAD_PATHS.db)), 'no command opens the old SQLite file by default');
    assert.ok(fs.existsSync(at(`${HEAD_PATHS.db}.before-postgresql`)), 'the carried database is kept aside');
    assert.match(fs.readFileSync(at(HEAD_PATHS.firstBootDone), 'utf8'), /the machine database is in postgresql:/);

    // Killed after the move, before the marker: a rerun finishes, copying nothing twice.
    fs.rmSync(at(HEAD_PATHS.firstBootDone));
    const again = await run(cradleBin, args, { encoding: 'utf8' });
    assert.match(again.stdout, /already moved into postgresql:/);
    assert.ok(fs.existsSync(at(HEAD_PATHS.firstBootDone)));
  });

  test('cradle db copy: any two databases, checked; a rerun finds the copy made', async () => {
    const file = at('fleet.db');
    const inv = await openInventory(`sqlite:${file}`);
    try {
      await inv.addMachine({ hostname: 'web1', macs: ['02:00:00:00:01:01'], tags: {} });
    } finally {
      await inv.close();
    }
    const url = await pg.createDatabase('fleet');
    const first = await run(cradleBin, ['db', 'copy', `sqlite:${file}`, url], { encoding: 'utf8' });
    assert.match(
      first.stdout,
      /^copied sqlite:.*fleet\.db into postgres:\/\/.*, checked row for row: .*machines 1, machine_macs 1/,
    );
    const again = await run(cradleBin, ['db', 'copy', `sqlite:${file}`, url], { encoding: 'utf8' });
    assert.match(again.stdout, /already holds every row of sqlite:.*\(checked row for row\)/);
  });

  test('refuses a system that no setup installed, naming the file', async () => {
    await cradleFails(
      ['setup', 'first-boot', '--root', path.join(root, 'not-a-head-node'), '--pg-socket', pg.socketDir],
      /\/etc\/cradle\/head-node\.env is missing: this is not a head node installed by cradle setup/,
    );
  });
});
