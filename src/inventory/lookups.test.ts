// Machine lookups by MAC and by address, and the cache in front of them (sql-lookup-cache.ts):
// every answer is what the database holds now. Run against both stores (test/support/db-backends.ts):
// changes through the same store are seen at once; changes by another connection (the CLI beside a
// running server) at once on SQLite, within the cache's second on PostgreSQL.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { backends, inventoriesOn, labSubnet as lab } from '../../test/support/db-backends.ts';
import { LookupCache } from './sql-lookup-cache.ts';
import type { Machine } from './types.ts';

const MAC = 'de:ad:be:ef:00:01';
const IP = '10.1.0.11';

/** Polls `probe` until it returns true; fails after `ms`. */
async function waitFor(what: string, probe: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`${what}: not seen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const b of backends) {
  describe(`machine lookups on ${b.name}`, { skip: b.skip }, () => {
    const dbs = inventoriesOn(b);
    const fresh = async () => {
      const inv = await dbs.fresh();
      await inv.addSubnet(lab);
      await inv.addMachine({ hostname: 'node1', macs: [MAC], ip: IP, tags: { rack: 'r1' }, state: 'birth' });
      return inv;
    };
    /** Another connection to the same database, as the CLI's `cradle machine …` is. */
    const other = dbs.again;
    before(() => b.setup());

    it('finds a machine by MAC and by its own address; nothing for an unknown or malformed one', async () => {
      const inv = await fresh();
      const m = await inv.getMachine('node1');
      assert.deepEqual(await inv.findMachineByMac('DE-AD-BE-EF-00-01'), m);
      assert.deepEqual(await inv.findMachineByIp(IP), m);
      assert.deepEqual(await inv.findMachineByIp(IP), m, 'again, from the cache');
      assert.equal(await inv.findMachineByIp('10.1.0.12'), undefined);
      assert.equal(await inv.findMachineByIp('not an address'), undefined);
      assert.equal(await inv.findMachineByMac('02:00:00:00:00:09'), undefined);
      // A pool lease's address is not the machine's own.
      await inv.addMachine({ hostname: 'node2', macs: ['02:00:00:00:00:02'], subnetId: 'Lab', tags: {} });
      const lease = await inv.allocateLease('02:00:00:00:00:02', 'Lab', 600, new Date());
      assert.ok(lease);
      assert.equal(await inv.findMachineByIp(lease.ip), undefined);
    });

    it('answers from the cache, with copies a caller may change', async () => {
      const inv = await fresh();
      const first = (await inv.findMachineByMac(MAC)) as Machine;
      const hits = inv.lookups.hits;
      first.tags.rack = 'changed by the caller';
      first.macs.push('02:00:00:00:00:99');
      const second = await inv.findMachineByMac(MAC);
      assert.equal(inv.lookups.hits, hits + 1, 'the second lookup is a hit');
      assert.deepEqual(second?.tags, { rack: 'r1' });
      assert.deepEqual(second?.macs, [MAC]);
    });

    it('sees every change made through the store at once', async () => {
      const inv = await fresh();
      await inv.findMachineByMac(MAC);
      await inv.findMachineByIp(IP);
      await inv.findMachineByMac('02:00:00:00:00:05'); // a remembered miss
      await inv.setState('node1', 'installing', 'test');
      assert.equal((await inv.findMachineByMac(MAC))?.state, 'installing');
      await inv.updateMachine('node1', { ip: '10.1.0.12', tags: { rack: 'r2' } });
      assert.equal(await inv.findMachineByIp(IP), undefined, 'the old address is no longer its');
      assert.deepEqual((await inv.findMachineByIp('10.1.0.12'))?.tags, { rack: 'r2' });
      await inv.addMachine({ hostname: 'node5', macs: ['02:00:00:00:00:05'], tags: {} });
      assert.equal((await inv.findMachineByMac('02:00:00:00:00:05'))?.hostname, 'node5', 'a remembered miss goes');
      await inv.transaction(async (tx) => {
        await tx.setState('node1', 'healthy', 'in a transaction');
        assert.equal((await tx.findMachineByMac(MAC))?.state, 'healthy', 'the transaction sees its own change');
      });
      assert.equal((await inv.findMachineByMac(MAC))?.state, 'healthy');
      await assert.rejects(
        inv.transaction(async (tx) => {
          await tx.setState('node1', 'failed', 'rolled back');
          throw new Error('roll back');
        }),
      );
      assert.equal((await inv.findMachineByMac(MAC))?.state, 'healthy', 'a rolled-back change is not seen');
      await inv.removeMachine('node1');
      assert.equal(await inv.findMachineByMac(MAC), undefined);
      assert.equal(await inv.findMachineByIp('10.1.0.12'), undefined);
    });

    it('keeps its answers across lease and installer-log writes, which change no machine', async () => {
      const inv = await fresh();
      await inv.addMachine({ hostname: 'node2', macs: ['02:00:00:00:00:02'], subnetId: 'Lab', tags: {} });
      await inv.findMachineByMac(MAC);
      const hits = inv.lookups.hits;
      await inv.transaction(async (tx) => {
        await tx.allocateLease('02:00:00:00:00:02', 'Lab', 600, new Date());
      });
      await inv.releaseLease('02:00:00:00:00:02');
      await inv.appendInstallerLog('node1', 1, ['a line']);
      await inv.findMachineByMac(MAC);
      assert.equal(inv.lookups.hits, hits + 1);
    });

    it(`sees a change by another connection (the CLI beside a running server)${b.pg ? ' within a second' : ' at once'}`, async () => {
      const inv = await fresh();
      assert.equal((await inv.findMachineByMac(MAC))?.state, 'birth');
      assert.equal(await inv.findMachineByMac('02:00:00:00:00:07'), undefined);
      const cli = await other();
      await cli.setState('node1', 'healthy', 'by the CLI');
      await cli.addMachine({ hostname: 'node7', macs: ['02:00:00:00:00:07'], ip: '10.1.0.17', tags: {} });
      if (!b.pg) {
        // Another connection's commit moves PRAGMA data_version, checked once per turn of the event loop.
        await new Promise((r) => setImmediate(r));
        assert.equal((await inv.findMachineByMac(MAC))?.state, 'healthy');
        assert.equal((await inv.findMachineByMac('02:00:00:00:00:07'))?.hostname, 'node7');
        return;
      }
      const t0 = Date.now();
      await waitFor('the new state', async () => (await inv.findMachineByMac(MAC))?.state === 'healthy');
      await waitFor('the new machine', async () => (await inv.findMachineByIp('10.1.0.17')) !== undefined);
      await waitFor(
        'the new machine by MAC',
        async () => (await inv.findMachineByMac('02:00:00:00:00:07')) !== undefined,
      );
      assert.ok(Date.now() - t0 < 2000, `seen after ${Date.now() - t0} ms`);
    });
  });
}

describe('the lookup cache', () => {
  const machine = (hostname: string) =>
    ({ hostname, macs: [], tags: {}, state: 'birth', stateChangedAt: '', createdAt: '' }) as Machine;

  it('does not keep what a lookup read while the cache was dropped', async () => {
    const cache = new LookupCache({ maxEntries: 10, maxMisses: 10, ttlMs: Infinity });
    let release!: (m: Machine) => void;
    const pending = cache.machineByMac('m1', () => new Promise<Machine>((r) => (release = r)));
    cache.invalidate(); // a write committed while the lookup was reading
    release(machine('old'));
    assert.equal((await pending)?.hostname, 'old', 'the caller gets what it read');
    let loads = 0;
    const fresh = await cache.machineByMac('m1', async () => {
      loads++;
      return machine('new');
    });
    assert.equal(fresh?.hostname, 'new');
    assert.equal(loads, 1, 'the read from before the change was not remembered');
  });

  it('is bounded: least recently used out first, and misses cannot push machines out', async () => {
    const cache = new LookupCache({ maxEntries: 2, maxMisses: 2, ttlMs: Infinity });
    const loads: string[] = [];
    const find = (key: string, found = true) =>
      cache.machineByMac(key, async () => {
        loads.push(key);
        return found ? machine(key) : undefined;
      });
    await find('a');
    await find('b');
    await find('a'); // a is now the most recently used
    await find('c'); // b goes
    for (let i = 0; i < 10; i++) await find(`unknown${i}`, false);
    assert.equal(cache.size, 4);
    loads.length = 0;
    await find('a');
    await find('c');
    assert.deepEqual(loads, [], 'a and c stayed through a flood of unknown MACs');
    await find('b');
    assert.deepEqual(loads, ['b']);
  });

  it('asks whether another connection wrote once per turn of the event loop, and forgets everything if so', async () => {
    let asked = 0;
    let changed = false;
    const cache = new LookupCache({
      maxEntries: 10,
      maxMisses: 10,
      ttlMs: Infinity,
      changed: () => {
        asked++;
        return changed;
      },
    });
    let loads = 0;
    const load = async () => {
      loads++;
      return machine('x');
    };
    await Promise.all([
      cache.machineByMac('x', load),
      cache.machineByMac('x', load),
      cache.machineByIp('1.2.3.4', load),
    ]);
    assert.equal(asked, 1, 'one question for lookups made in one turn');
    await new Promise((r) => setImmediate(r));
    changed = true;
    await cache.machineByMac('x', load);
    assert.equal(asked, 2);
    assert.equal(loads, 4, 'the change dropped the remembered answer');
  });

  it('keeps an answer no longer than its time to live', async () => {
    const cache = new LookupCache({ maxEntries: 10, maxMisses: 10, ttlMs: 30 });
    let loads = 0;
    const load = async () => {
      loads++;
      return machine('x');
    };
    await cache.machineByMac('x', load);
    await cache.machineByMac('x', load);
    assert.equal(loads, 1);
    await waitFor('the answer to expire', async () => {
      await cache.machineByMac('x', load);
      return loads === 2;
    });
  });
});
