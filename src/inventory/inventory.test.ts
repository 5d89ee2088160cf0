// One suite, run against both stores: SQLite in a temporary file and PostgreSQL on a throwaway
// server of its own (test/support/pg-cluster.ts). Each test gets a fresh database. The PostgreSQL half is
// skipped, saying why, only where Debian's postgresql package is not installed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { importBatch, parseImportFile, parseMachinesCsv, parseSeedJson } from './import.ts';
import { SCHEMA_VERSION } from './migrations.ts';
import { appendLogOn } from './sql-install-log.ts';
import { openInventory, parseDbUrl } from './open.ts';
import { backends, inventoriesOn, labSubnet as lab } from '../../test/support/db-backends.ts';
import { ConflictError, InventoryError, NotFoundError, type Subnet } from './types.ts';
import { ValidationError } from './validate.ts';

const seedConfig = fs.readFileSync(path.join(import.meta.dirname, '../netconfig/testdata/seed-config.json'), 'utf8');
const t0 = new Date('2026-11-22T12:00:00.000Z');
const mac = (n: number) =>
  `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;

for (const b of backends) {
  describe(`machine database on ${b.name}`, { skip: b.skip }, () => {
    const dbs = inventoriesOn(b);
    const { fresh, again } = dbs;
    before(async (t) => {
      await b.setup();
      if (b.pg && 'diagnostic' in t)
        t.diagnostic(`PostgreSQL test server (initdb and start) up in ${b.pg.startupMs.toFixed(0)} ms`);
    });

    it('adds, finds, lists, updates and removes machines', async () => {
      const inv = await fresh();
      await inv.addSubnet(lab);
      const m = await inv.addMachine({
        hostname: 'node1',
        macs: ['DE-AD-BE-EF-00-01', '0:1:2:3:4:5'],
        ip: '10.1.0.11',
        tags: { RequiredImage: 'debian/1' },
      });
      assert.deepEqual(m.macs, ['de:ad:be:ef:00:01', '00:01:02:03:04:05']);
      assert.equal(m.subnetId, 'Lab', 'the subnet is found from the address');
      assert.equal(m.state, 'unknown');
      await inv.addMachine({
        hostname: 'node2',
        macs: ['deadbeef0002'],
        subnetId: 'Lab',
        tags: {},
        state: 'birth',
        ipmi: { ip: '10.9.0.2' },
        storageLayout: { BootDriveLayout: [{ MountPoint: '/', MinimumFreeBytes: 1 << 30 }] },
      });
      assert.deepEqual(await inv.getMachine('node1'), m);
      assert.equal((await inv.findMachineByMac('DE:AD:BE:EF:00:02'))?.hostname, 'node2');
      assert.equal(await inv.findMachineByMac('not-a-mac'), undefined);
      assert.deepEqual(
        (await inv.listMachines()).map((x) => x.hostname),
        ['node1', 'node2'],
      );
      assert.deepEqual(
        (await inv.listMachines({ state: 'birth' })).map((x) => x.hostname),
        ['node2'],
      );
      assert.deepEqual(
        (await inv.listMachines({ tag: ['RequiredImage', 'debian/1'] })).map((x) => [x.hostname, x.macs.length]),
        [['node1', 2]],
      );
      const u = await inv.updateMachine('node1', {
        macs: ['de:ad:be:ef:00:03'],
        ip: undefined,
        tags: { Rack: 'r2' },
        firmware: 'uefi',
      });
      assert.deepEqual(
        [u.macs, u.ip, u.subnetId, u.tags, u.firmware],
        [['de:ad:be:ef:00:03'], undefined, 'Lab', { Rack: 'r2' }, 'uefi'],
      );
      assert.equal(await inv.findMachineByMac('de:ad:be:ef:00:01'), undefined, 'the old MAC is gone');
      await inv.removeMachine('node1');
      assert.equal(await inv.getMachine('node1'), undefined);
      await assert.rejects(
        inv.removeMachine('node1'),
        (e) => e instanceof NotFoundError && /no machine named 'node1'/.test(e.message),
      );
    });

    it('refuses duplicates with ConflictError and unknown names with NotFoundError', async () => {
      const inv = await fresh();
      await inv.addSubnet(lab);
      await inv.addMachine({ hostname: 'a', macs: [mac(1)], ip: '10.1.0.5', tags: {} });
      await assert.rejects(
        inv.addMachine({ hostname: 'a', macs: [mac(2)], tags: {} }),
        (e) => e instanceof ConflictError && /machine 'a' already exists/.test(e.message),
      );
      await assert.rejects(
        inv.addMachine({ hostname: 'b', macs: [mac(1)], tags: {} }),
        (e) => e instanceof ConflictError && /MAC 02:00:00:00:00:01 already belongs to machine 'a'/.test(e.message),
      );
      await assert.rejects(
        inv.addMachine({ hostname: 'b', macs: [mac(2)], ip: '10.1.0.5', tags: {} }),
        (e) => e instanceof ConflictError && /10\.1\.0\.5 is already machine 'a''s/.test(e.message),
      );
      await assert.rejects(inv.addSubnet(lab), ConflictError);
      await assert.rejects(inv.updateMachine('zz', { tags: {} }), NotFoundError);
      await assert.rejects(inv.setState('zz', 'birth', 'x'), NotFoundError);
      await assert.rejects(inv.history('zz'), NotFoundError);
      await assert.rejects(
        inv.addMachine({ hostname: 'b', macs: [mac(2)], subnetId: 'Nope', tags: {} }),
        (e) => e instanceof NotFoundError && /no subnet 'Nope'/.test(e.message),
      );
      assert.equal((await inv.listMachines()).length, 1, 'nothing half-added');
    });

    it('validates at the boundary, naming the field and the fix', async () => {
      const inv = await fresh();
      await inv.addSubnet(lab);
      const bad: [object, RegExp][] = [
        [
          { hostname: 'Node_1', macs: [mac(1)], tags: {} },
          /field 'hostname' is invalid: 'Node_1' is not a host name: use lower-case labels/,
        ],
        [{ hostname: 'n', macs: ['12:34'], tags: {} }, /field 'macs\.0' is invalid: '12:34' is not a MAC address/],
        [{ hostname: 'n', macs: [], tags: {} }, /field 'macs' is invalid: a machine needs at least one MAC/],
        [{ hostname: 'n', macs: [mac(1), mac(1).toUpperCase()], tags: {} }, /listed twice/],
        [
          { hostname: 'n', macs: [mac(1)], ip: '10.1.0.300', tags: {} },
          /field 'ip' is invalid: expected a dotted IPv4/,
        ],
        [
          { hostname: 'n', macs: [mac(1)], ip: '10.2.0.5', subnetId: 'Lab', tags: {} },
          /10\.2\.0\.5 is outside subnet 'Lab' \(10\.1\.0\.0\/24\)/,
        ],
        [{ hostname: 'n', macs: [mac(1)], ip: '10.1.0.1', tags: {} }, /is subnet 'Lab''s gateway/],
        [{ hostname: 'n', macs: [mac(1)], ip: '172.16.0.5', tags: {} }, /no subnet contains 172\.16\.0\.5/],
        [
          { hostname: 'n', macs: [mac(1)], tags: {}, state: 'dead' },
          /'dead' is not a machine state: use one of unknown, birth/,
        ],
      ];
      for (const [m, message] of bad)
        await assert.rejects(
          inv.addMachine(m as never),
          (e) => e instanceof ValidationError && message.test(e.message),
        );
      const subnets: [Partial<Subnet>, RegExp][] = [
        [
          { pool: { start: '10.1.0.200', end: '10.1.1.5' } },
          /field 'pool\.end' is invalid: 10\.1\.1\.5 is outside the subnet 10\.1\.0\.0\/24/,
        ],
        [{ pool: { start: '10.1.0.1', end: '10.1.0.9' } }, /contains the gateway 10\.1\.0\.1/],
        [{ pool: { start: '10.1.0.9', end: '10.1.0.2' } }, /runs backwards/],
        [{ pool: { start: '10.1.0.200', end: '10.1.0.255' } }, /broadcast address/],
        [{ mask: '255.0.255.0' }, /field 'mask' is invalid: '255\.0\.255\.0' is not a netmask/],
      ];
      for (const [s, message] of subnets)
        await assert.rejects(
          inv.addSubnet({ ...lab, id: 'X', ...s }),
          (e) => e instanceof ValidationError && message.test(e.message),
        );
      await assert.rejects(inv.listMachines({ state: 'gone' as never }), ValidationError);
    });

    it('records state changes with from, to, time and reason; a no-op is not recorded', async () => {
      const inv = await fresh();
      const m = await inv.addMachine({ hostname: 'n1', macs: [mac(1)], tags: {} });
      const b = await inv.setState('n1', 'birth', 'new rack');
      assert.equal(b.state, 'birth');
      assert.ok(b.stateChangedAt >= m.stateChangedAt);
      await inv.setState('n1', 'birth', 'again');
      await inv.setState('n1', 'installing', 'installer started');
      const h = await inv.history('n1');
      assert.deepEqual(
        h.map((c) => [c.from, c.to, c.reason]),
        [
          ['unknown', 'birth', 'new rack'],
          ['birth', 'installing', 'installer started'],
        ],
      );
      assert.ok(h.every((c) => c.hostname === 'n1' && !Number.isNaN(Date.parse(c.at))));
      assert.equal((await inv.getMachine('n1'))?.stateChangedAt, h[1].at);
    });

    it('keeps subnets and refuses to remove one that machines use', async () => {
      const inv = await fresh();
      const s = await inv.addSubnet({ ...lab, domainName: 'lab.example.com', manage: true, vlanId: 12 });
      assert.deepEqual(await inv.getSubnet('Lab'), s);
      await inv.addSubnet({ id: 'Other', gateway: '10.2.0.1', mask: '255.255.0.0', dnsServers: [], manage: false });
      assert.deepEqual(
        (await inv.listSubnets()).map((x) => x.id),
        ['Lab', 'Other'],
      );
      await inv.addMachine({ hostname: 'n1', macs: [mac(1)], ip: '10.1.0.7', tags: {} });
      await assert.rejects(
        inv.removeSubnet('Lab'),
        (e) => e instanceof ConflictError && /still used by 1 machine\(s\) \(n1\)/.test(e.message),
      );
      await inv.removeMachine('n1');
      await inv.removeSubnet('Lab');
      await assert.rejects(inv.removeSubnet('Lab'), NotFoundError);
    });

    it('allocates pool leases: renewed, skipping static addresses, reused once expired', async () => {
      const inv = await fresh();
      await inv.addSubnet({ ...lab, pool: { start: '10.1.0.100', end: '10.1.0.103' } });
      await inv.addSubnet({ ...lab, id: 'NoPool', gateway: '10.3.0.1', pool: undefined });
      await inv.addMachine({ hostname: 'static', macs: [mac(99)], ip: '10.1.0.101', tags: {} });
      const a = await inv.allocateLease(mac(1), 'Lab', 60, t0);
      assert.deepEqual(a, { mac: mac(1), ip: '10.1.0.100', subnetId: 'Lab', expiresAt: '2026-11-22T12:01:00.000Z' });
      const b = await inv.allocateLease(mac(2), 'Lab', 60, t0, 'guest2');
      assert.equal(b?.ip, '10.1.0.102', 'the static 10.1.0.101 is skipped');
      assert.equal(
        (await inv.allocateLease(mac(1), 'Lab', 120, t0))?.expiresAt,
        '2026-11-22T12:02:00.000Z',
        'renewed, same address',
      );
      assert.equal((await inv.allocateLease(mac(3), 'Lab', 60, t0))?.ip, '10.1.0.103');
      assert.equal(await inv.allocateLease(mac(4), 'Lab', 60, t0), undefined, 'pool exhausted');
      assert.equal(await inv.allocateLease(mac(4), 'NoPool', 60, t0), undefined, 'no pool');
      const later = new Date(t0.getTime() + 90_000); // mac(2) and mac(3) have expired, mac(1) not
      assert.equal((await inv.allocateLease(mac(4), 'Lab', 60, later))?.ip, '10.1.0.102');
      assert.equal(await inv.getLease(mac(2)), undefined, 'the expired lease was taken over');
      assert.deepEqual(
        (await inv.listLeases()).map((l) => [l.mac, l.ip]),
        [
          [mac(1), '10.1.0.100'],
          [mac(4), '10.1.0.102'],
          [mac(3), '10.1.0.103'],
        ],
      );
      // Static addresses are checked against leases by the wall clock: these t0 leases are long over.
      assert.equal((await inv.allocateLease(mac(7), 'Lab', 3600, new Date()))?.ip, '10.1.0.100');
      await assert.rejects(
        inv.addMachine({ hostname: 'clash', macs: [mac(50)], ip: '10.1.0.100', tags: {} }),
        (e) => e instanceof ConflictError && /leased to 02:00:00:00:00:07 until/.test(e.message),
      );
      await inv.addMachine({ hostname: 'takes-own', macs: [mac(7)], ip: '10.1.0.100', tags: {} }); // its own lease gives way
      assert.equal(await inv.getLease(mac(7)), undefined);
      await inv.releaseLease(mac(4));
      assert.equal(await inv.getLease(mac(4)), undefined);
      await assert.rejects(inv.allocateLease(mac(5), 'Nope', 60, t0), NotFoundError);
    });

    it('never hands one address to two MACs when two connections allocate at once', async () => {
      const first = await fresh();
      await first.addSubnet({ ...lab, pool: { start: '10.1.0.100', end: '10.1.0.129' } });
      const second = await again();
      const n = 20;
      const results = await Promise.all(
        Array.from({ length: 2 * n }, (_, i) => (i % 2 ? second : first).allocateLease(mac(i), 'Lab', 600, t0)),
      );
      const ips = results.filter((l) => l !== undefined).map((l) => l.ip);
      assert.equal(ips.length, 30, 'every pool address handed out, the rest get none');
      assert.equal(new Set(ips).size, ips.length, 'no address twice');
      assert.equal((await first.listLeases()).length, 30);
    });

    it('keeps the newest installer progress of a machine', async () => {
      const inv = await fresh();
      await inv.addMachine({ hostname: 'n1', macs: [mac(1)], tags: {} });
      await inv.recordProgress({
        hostname: 'n1',
        phase: 'load-image',
        bytesDone: 5,
        bytesTotal: 10,
        etaSeconds: null,
        updatedAt: t0.toISOString(),
      });
      assert.deepEqual(await inv.getProgress('n1'), {
        hostname: 'n1',
        phase: 'load-image',
        bytesDone: 5,
        bytesTotal: 10,
        etaSeconds: null,
        updatedAt: t0.toISOString(),
      });
      await inv.recordProgress({
        hostname: 'n1',
        phase: 'done',
        result: { ok: true },
        updatedAt: '2026-11-22T13:00:00+01:00',
      });
      assert.deepEqual(await inv.getProgress('n1'), {
        hostname: 'n1',
        phase: 'done',
        result: { ok: true },
        updatedAt: t0.toISOString(),
      });
      await assert.rejects(
        inv.recordProgress({ hostname: 'ghost', phase: 'x', updatedAt: t0.toISOString() }),
        NotFoundError,
      );
      assert.equal(await inv.getProgress('ghost'), undefined);
    });

    it('records its schema version and refuses a database from a newer Cradle', async () => {
      const inv = await fresh();
      const versions = () =>
        inv.db
          .query<{ version: number | string }>('SELECT version FROM schema_version ORDER BY version')
          .then((r) => r.map((x) => Number(x.version)));
      assert.deepEqual(
        await versions(),
        Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
      );
      await (await again()).close(); // opening again applies nothing
      assert.equal((await versions()).length, SCHEMA_VERSION);
      await inv.db.run('INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)', [
        SCHEMA_VERSION + 1,
        'from the future',
        t0.toISOString(),
      ]);
      await assert.rejects(
        openInventory(dbs.url),
        (e) =>
          e instanceof InventoryError &&
          new RegExp(
            `schema version ${SCHEMA_VERSION + 1}, newer than this Cradle understands \\(${SCHEMA_VERSION}\\): upgrade Cradle`,
          ).test(e.message),
      );
    });

    it("keeps each machine's installer log: lines by seq, a resent batch changes nothing, a new run clears it", async () => {
      const inv = await fresh();
      await inv.addMachine({ hostname: 'n1', macs: ['de:ad:be:ef:00:01'], tags: {} });
      await inv.appendInstallerLog('n1', 0, ['[  0.001] one', '[  0.002] two']);
      await inv.appendInstallerLog('n1', 0, ['[  0.001] one', '[  0.002] two']);
      await inv.appendInstallerLog('n1', 2, ['[  0.003] three']);
      assert.deepEqual(await inv.installerLog('n1'), [
        { seq: 0, line: '[  0.001] one' },
        { seq: 1, line: '[  0.002] two' },
        { seq: 2, line: '[  0.003] three' },
      ]);
      assert.deepEqual(
        (await inv.installerLog('n1', 2)).map((l) => l.seq),
        [2],
      );
      // A batch below the latest line (a run whose first lines were lost) is kept beside it...
      await inv.appendInstallerLog('n1', 100_000, ['latest']);
      await inv.appendInstallerLog('n1', 5, ['below the latest']);
      assert.deepEqual(
        (await inv.installerLog('n1')).map((l) => l.seq),
        [5, 100_000],
      );
      // ...but batches in decreasing order cannot grow the log past twice its window (here 2 lines,
      // so 4 kept: the newest).
      await inv.clearInstallerLog('n1');
      for (const from of [90, 80, 70, 60, 50]) await appendLogOn(inv.db, 'n1', from, [`${from}`, `${from + 1}`], 2);
      assert.deepEqual(
        (await inv.installerLog('n1')).map((l) => l.seq),
        [80, 81, 90, 91],
      );
      // In order, the window ends at the newest batch.
      await appendLogOn(inv.db, 'n1', 92, ['92', '93', '94'], 2);
      assert.deepEqual(
        (await inv.installerLog('n1')).map((l) => l.seq),
        [93, 94],
      );
      await inv.clearInstallerLog('n1');
      assert.deepEqual(await inv.installerLog('n1'), []);
      await inv.appendInstallerLog('n1', 0, ['x']);
      await inv.removeMachine('n1');
      assert.deepEqual(await inv.installerLog('n1'), [], 'removed with its machine');
    });

    it('imports a Dominator config.json and CSV all-or-nothing', async () => {
      const inv = await fresh();
      const seed = await importBatch(inv, parseSeedJson(seedConfig, 'config.json'), { state: 'healthy' });
      assert.deepEqual(seed, {
        subnetsAdded: ['Dev', 'Hypervisors', 'Prod'],
        subnetsUnchanged: [],
        machines: ['hyper0'],
      });
      const hyper0 = await inv.getMachine('hyper0');
      assert.deepEqual(
        [hyper0?.ip, hyper0?.subnetId, hyper0?.state, hyper0?.ipmi, hyper0?.tags.Type],
        [
          '192.168.1.2',
          'Hypervisors',
          'healthy',
          { hostname: 'hyper0-ipmi', ip: '192.168.0.2', mac: 'de:ad:be:ef:00:00' },
          'SuperMicro Ultra',
        ],
      );
      const csv =
        'hostname,mac,ip,subnet,ipmi_ip,tags\nhyper1,de:ad:be:ef:01:01 de:ad:be:ef:01:02,192.168.1.3,Hypervisors,,"RequiredImage=hv/1;Note=a, b"\nhyper2,de:ad:be:ef:02:01,,,,\n';
      assert.deepEqual((await importBatch(inv, parseImportFile(csv, 'fleet.csv'))).machines, ['hyper1', 'hyper2']);
      assert.deepEqual((await inv.getMachine('hyper1'))?.tags, { RequiredImage: 'hv/1', Note: 'a, b' });
      // Dominator's subnets again: identical, so kept. Then a file whose third machine clashes.
      const bad = 'hostname,mac\nnew1,de:ad:be:ef:03:01\nnew2,de:ad:be:ef:03:02\nnew3,de:ad:be:ef:01:02\n';
      await assert.rejects(
        importBatch(inv, parseMachinesCsv(bad, 'bad.csv')),
        (e) =>
          e instanceof ConflictError &&
          /^bad\.csv line 4: MAC de:ad:be:ef:01:02 already belongs to machine 'hyper1'/.test(e.message),
      );
      assert.equal(await inv.getMachine('new1'), undefined, 'nothing of a failed import stays');
      const changed = seedConfig
        .replace('"hyper0"', '"hyper9"')
        .replace('de:ad:be:ef:00:01', 'de:ad:be:ef:09:01')
        .replace('192.168.1.2"', '192.168.1.9"')
        .replace('"dev.company.com"', '"dev2.company.com"');
      await assert.rejects(
        importBatch(inv, parseSeedJson(changed, 'c2.json')),
        /c2\.json: subnet 'Dev': differs from subnet 'Dev' in the database/,
      );
      assert.equal(await inv.getMachine('hyper9'), undefined);
    });

    it('opens the same database by every spelling of its location', async () => {
      const inv = await fresh();
      await inv.addMachine({ hostname: 'n1', macs: [mac(1)], tags: {} });
      const other = b.pg ? b.pg.socketUrl(new URL(dbs.url).pathname.slice(1)) : dbs.url.replace(/^sqlite:/, '');
      const inv2 = await dbs.at(other);
      assert.equal((await inv2.getMachine('n1'))?.hostname, 'n1');
    });
  });
}

describe('database locations and import parsing', () => {
  it('parses --db values', () => {
    assert.deepEqual(parseDbUrl('/var/lib/cradle/inventory.db'), {
      kind: 'sqlite',
      file: '/var/lib/cradle/inventory.db',
    });
    assert.deepEqual(parseDbUrl('sqlite:///srv/x.db'), { kind: 'sqlite', file: '/srv/x.db' });
    assert.deepEqual(parseDbUrl('sqlite:x.db'), { kind: 'sqlite', file: 'x.db' });
    assert.equal(parseDbUrl('postgresql://u@h/db').kind, 'postgres');
    assert.throws(() => parseDbUrl('mysql://h/db'), /unsupported database 'mysql:\/\/…'/);
  });

  it('names an unreachable PostgreSQL server without its password', async () => {
    await assert.rejects(
      openInventory('postgres://cradle:secret@127.0.0.1:1/x'),
      (e) =>
        e instanceof InventoryError &&
        /cannot use the PostgreSQL database postgres:\/\/cradle:\*\*\*@127\.0\.0\.1:1\/x: .*ECONNREFUSED/.test(
          e.message,
        ) &&
        !/secret/.test(e.message),
    );
  });

  it('names the CSV line and column of a bad cell', () => {
    const cases: [string, RegExp][] = [
      ['hostname,mac\nok,de:ad:be:ef:00:01\nok2,zz\n', /f\.csv line 3, column 2 \(mac\): 'zz' is not a MAC address/],
      ['mac,hostname,tags\n"de:ad:be:ef:00:01",Bad!,\n', /f\.csv line 2, column 2 \(hostname\):.*not a host name/],
      ['hostname,mac,tags\nn,de:ad:be:ef:00:01,novalue\n', /f\.csv line 2, column 3 \(tags\):.*NAME=VALUE/],
      ['hostname,mac,colour\n', /f\.csv line 1, column 3: unknown column 'colour'/],
      ['hostname,ip\n', /no 'mac' column/],
      ['hostname,mac\n"multi\nline",x,y\n', /f\.csv line 2: 3 fields, but the header has 2/],
      ['hostname,mac\nn,"de:ad\n', /f\.csv line 2, column 2: a quoted field is never closed/],
    ];
    for (const [text, message] of cases) assert.throws(() => parseMachinesCsv(text, 'f.csv'), message);
  });

  it('tells JSON from CSV by extension or content', () => {
    assert.equal(parseImportFile(seedConfig, 'machines.txt').machines[0].machine.hostname, 'hyper0');
    assert.equal(
      parseImportFile('# fleet\nhostname,mac\nn1,de:ad:be:ef:00:01\n', 'list').machines[0].machine.hostname,
      'n1',
    );
    assert.throws(
      () => parseSeedJson('{"Machine": {"HostMacAddress": "nope"}}', 'c.json'),
      /c\.json: field 'Machine\.HostMacAddress' is invalid/,
    );
  });
});
