// Dominator's config.json into the machine database and back out as the boot server serves it,
// on both stores (JSONB reorders keys and PostgreSQL's booleans are not SQLite's): every field of
// Dominator's types survives, and what the database cannot keep is refused, not dropped.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { backends, inventoriesOn } from '../../test/support/db-backends.ts';
import { machineTo } from './dominator-config.ts';
import { importBatch, parseSeedJson } from './import.ts';
import { MIGRATIONS, migrate } from './migrations.ts';
import { parseDbUrl } from './open.ts';
import type { SqlDb } from './sql-rows.ts';
import type { Inventory } from './types.ts';

const read = (file: string) => fs.readFileSync(path.join(import.meta.dirname, file), 'utf8');
const threeNics = read('testdata/config-3-nics.json');
const readme = read('../netconfig/testdata/dominator-readme-config.json');

/** config.json as the boot server serves it (boot/config-files.ts), parsed. */
async function served(inv: Inventory, hostname: string): Promise<unknown> {
  const m = await inv.getMachine(hostname);
  assert.ok(m, `machine ${hostname} is in the database`);
  return JSON.parse(JSON.stringify(machineTo(m, await inv.listSubnets())));
}

async function rawDb(url: string): Promise<SqlDb> {
  const where = parseDbUrl(url);
  if (where.kind === 'postgres') return new (await import('./postgres.ts')).PostgresDb(where.url);
  return new (await import('./sqlite.ts')).SqliteDb(where.file);
}

for (const b of backends) {
  describe(`Dominator's config.json through the machine database on ${b.name}`, { skip: b.skip }, () => {
    const dbs = inventoriesOn(b);
    const fresh = async (url?: string) => (url ? dbs.at(url) : dbs.fresh());
    before(() => b.setup());

    it('a machine with three NICs comes back as the document it was imported from', async () => {
      const inv = await fresh();
      await importBatch(inv, parseSeedJson(threeNics, 'config-3-nics.json'));
      const m = await inv.getMachine('hyper3');
      assert.deepEqual(m?.macs, ['de:ad:be:ef:03:01', 'de:ad:be:ef:03:02', 'de:ad:be:ef:03:03']);
      assert.deepEqual(m?.hardware, {
        architecture: 'amd64',
        memoryMiB: 262144,
        cpus: 64,
        totalVolumeBytes: 3840755982336,
      });
      assert.deepEqual((await inv.getSubnet('Dev'))?.pool, { start: '192.168.100.10', end: '192.168.100.99' });
      // The pool never hands out an address on a machine's other interfaces.
      await inv.updateMachine('hyper3', {
        secondaryNetworkEntries: [...(m?.secondaryNetworkEntries ?? []), { ip: '192.168.100.10', subnetId: 'Dev' }],
      });
      const lease = await inv.allocateLease('02:00:00:00:00:99', 'Dev', 60, new Date());
      assert.equal(lease?.ip, '192.168.100.11');
      await inv.releaseLease('02:00:00:00:00:99');
      await inv.updateMachine('hyper3', { secondaryNetworkEntries: m?.secondaryNetworkEntries });
      assert.deepEqual(await served(inv, 'hyper3'), JSON.parse(threeNics));
      // Its subnets, every field, compare equal to themselves: a second machine's file keeps them.
      const clash = threeNics
        .replaceAll('hyper3', 'hyper4')
        .replaceAll(':03:', ':04:')
        .replace('127.0.0.2', '127.0.0.4');
      await assert.rejects(
        importBatch(inv, parseSeedJson(clash, 'clash.json')),
        /^ConflictError: clash\.json: machine 'hyper4': address 192\.168\.1\.3 is already on an interface of machine 'hyper3': pick another$/,
      );
      const sibling = clash.replace('192.168.1.3', '192.168.1.4').replace('192.168.120.3', '192.168.120.4');
      assert.deepEqual((await importBatch(inv, parseSeedJson(sibling, 'sibling.json'))).subnetsUnchanged, [
        'Dev',
        'Hypervisors',
        'Ipmi',
        'Loopback',
        'Prod',
      ]);
      // And the served document imports into another database as the same machine.
      const again = await fresh();
      await importBatch(again, parseSeedJson(JSON.stringify(await served(inv, 'hyper3')), 'served.json'));
      assert.deepEqual(await served(again, 'hyper3'), JSON.parse(threeNics));
    });

    it("Dominator's README example comes back unchanged: a subnet matched from the address stays unnamed", async () => {
      const inv = await fresh();
      await importBatch(inv, parseSeedJson(readme, 'config.json'));
      const m = await inv.getMachine('hyper0');
      assert.equal(m?.subnetId, 'Hypervisors');
      assert.equal(m?.subnetMatched, true);
      assert.deepEqual(await served(inv, 'hyper0'), JSON.parse(readme));
      // A new address is matched afresh; naming the subnet makes it part of the document.
      await inv.updateMachine('hyper0', { ip: '192.168.100.7' });
      assert.equal((await inv.getMachine('hyper0'))?.subnetId, 'Dev');
      await inv.updateMachine('hyper0', { subnetId: 'Dev' });
      const named = (await served(inv, 'hyper0')) as { Machine: Record<string, unknown> };
      assert.equal(named.Machine.SubnetId, 'Dev');
    });

    it('a document Go wrote, with its empty values, is served back without them', async () => {
      const inv = await fresh();
      const doc = JSON.parse(readme);
      const goWritten = {
        Location: '',
        Machine: { ...doc.Machine, SubnetId: '', GatewaySubnetId: '', IPMI: {}, OwnerGroups: null, Tags: null },
        Subnets: doc.Subnets.map((s: Record<string, unknown>) => ({
          VlanId: 0,
          Manage: false,
          ...s,
          FirstDynamicIP: '',
        })),
      };
      await importBatch(inv, parseSeedJson(JSON.stringify(goWritten), 'go.json'));
      const { IPMI: _ipmi, Tags: _tags, ...machine } = doc.Machine;
      assert.deepEqual(await served(inv, 'hyper0'), { ...doc, Machine: machine });
    });

    it('refuses what it could not keep or an installer could not use: unknown fields, an error, no primary MAC, half a range, missing subnets', async () => {
      const inv = await fresh();
      const config = JSON.parse(readme);
      const cases: [unknown, RegExp][] = [
        [
          { ...config, Machine: { ...config.Machine, HostMacAdress: 'x' } },
          /c\.json: field 'Machine\.HostMacAdress' is not one of Dominator's config\.json fields, so the machine database would not keep it/,
        ],
        [{ ...config, Error: 'unknown machine' }, /c\.json: field 'Error' says the server that wrote it failed/],
        [
          { ...config, Machine: { ...config.Machine, HostMacAddress: '' } },
          /c\.json: field 'Machine\.HostMacAddress' is missing/,
        ],
        [
          { ...config, Subnets: [{ ...config.Subnets[0], FirstDynamicIP: '192.168.100.10' }] },
          /c\.json: subnet 'Dev' has only one of FirstDynamicIP and LastDynamicIP/,
        ],
      ];
      for (const [doc, message] of cases) assert.throws(() => parseSeedJson(JSON.stringify(doc), 'c.json'), message);
      await inv.addSubnet({ id: 'Lab', gateway: '10.1.0.1', mask: '255.255.255.0', dnsServers: [], manage: false });
      await assert.rejects(
        inv.addMachine({
          hostname: 'n1',
          macs: ['02:00:00:00:00:01'],
          tags: {},
          secondaryNetworkEntries: [{ mac: '02:00:00:00:00:02', ip: '10.1.0.5' }],
        }),
        /field 'secondaryNetworkEntries\.0\.mac' is invalid: 02:00:00:00:00:02 is not one of the machine's MACs/,
      );
      // Subnets an installer would look for and not find: refused now rather than at install time.
      const n1 = { hostname: 'n1', macs: ['02:00:00:00:00:01'], tags: {} };
      await assert.rejects(
        inv.addMachine({ ...n1, gatewaySubnetId: 'Gone' }),
        /machine 'n1': gatewaySubnetId names no subnet 'Gone'/,
      );
      await assert.rejects(
        inv.addMachine({ ...n1, secondaryNetworkEntries: [{ ip: '10.2.0.5' }] }),
        /machine 'n1': secondary network entry 1 \(10\.2\.0\.5\) has address 10\.2\.0\.5, in no subnet/,
      );
      await assert.rejects(
        inv.addMachine({ ...n1, secondaryNetworkEntries: [{ ip: '10.2.0.5', subnetId: 'Lab' }] }),
        /has address 10\.2\.0\.5, outside its subnet 'Lab' \(10\.1\.0\.0\/24\)/,
      );
      await inv.addMachine({ ...n1, secondaryNetworkEntries: [{ ip: '10.1.0.5', subnetId: 'Lab' }] });
      await assert.rejects(inv.removeSubnet('Lab'), /subnet 'Lab' is still used by 1 machine\(s\) \(n1\)/);
    });

    it('the migration gives older machines and subnets the new fields, empty', async () => {
      const url = await b.fresh();
      const db = await rawDb(url);
      try {
        await migrate(db, MIGRATIONS.slice(0, 3));
        await db.run(
          "INSERT INTO subnets (id, gateway, mask, dns_servers, manage) VALUES ('Old', '10.2.0.1', '255.255.255.0', '[]', $1)",
          [db.dialect === 'postgres' ? false : 0],
        );
        await db.run(
          "INSERT INTO machines (hostname, ip, subnet_id, state, state_changed_at, created_at) VALUES ('old1', '10.2.0.5', 'Old', 'healthy', $1, $1)",
          [new Date().toISOString()],
        );
        await db.run("INSERT INTO machine_macs (mac, hostname, position) VALUES ('02:00:00:00:00:01', 'old1', 0)");
      } finally {
        await db.close();
      }
      const inv = await fresh(url);
      assert.deepEqual(await served(inv, 'old1'), {
        Machine: { Hostname: 'old1', HostIpAddress: '10.2.0.5', HostMacAddress: '02:00:00:00:00:01', SubnetId: 'Old' },
        Subnets: [{ Id: 'Old', IpGateway: '10.2.0.1', IpMask: '255.255.255.0', DomainNameServers: [] }],
      });
    });
  });
}
