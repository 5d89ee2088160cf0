// Node groups in the machine database, on both stores: the migration that adds them to a database
// with machines in it, their rules (names, kit pins, layouts, installer flags), machines belonging
// to one, and the refusals an operator meets (an unknown group, removing a group with machines).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../test/support/db-backends.ts';
import { MIGRATIONS, migrate } from './migrations.ts';
import { openInventory, parseDbUrl } from './open.ts';
import type { SqlDb } from './sql-rows.ts';
import type { SqlInventory } from './sql-store.ts';
import { ConflictError, NotFoundError, type NewNodeGroup } from './types.ts';
import { ValidationError } from './validate.ts';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const debian = { name: 'debian', version: '12.8-1', digest: digest('a') };
const slurm = { name: 'slurm', version: '24.05', digest: digest('b') };
const compute: NewNodeGroup = {
  name: 'compute',
  description: 'the compute nodes',
  osKit: debian,
  components: [{ ...slurm, component: 'slurmd' }],
  installerFlags: ['failure-wait=60'],
};
const layout = {
  BootDriveLayout: [{ FileSystemType: 'ext4', MountPoint: '/', MinimumFreeBytes: 1073741824 }],
  ExtraMountPointsBasename: '/data/',
  UseKexec: true,
};

async function rawDb(url: string): Promise<SqlDb> {
  const where = parseDbUrl(url);
  if (where.kind === 'postgres') return new (await import('./postgres.ts')).PostgresDb(where.url);
  return new (await import('./sqlite.ts')).SqliteDb(where.file);
}

for (const b of backends) {
  describe(`node groups on ${b.name}`, { skip: b.skip }, () => {
    const open: SqlInventory[] = [];
    before(() => b.setup());
    after(async () => {
      for (const inv of open) await inv.close().catch(() => {});
      await b.teardown();
    });
    const fresh = async () => {
      const inv = await openInventory(await b.fresh());
      open.push(inv);
      return inv;
    };

    it('the migration adds node groups to a database that already has machines, which keep their data', async () => {
      const url = await b.fresh();
      const db = await rawDb(url);
      try {
        await migrate(db, MIGRATIONS.slice(0, 2));
        await db.run(
          `INSERT INTO machines (hostname, state, state_changed_at, created_at) VALUES ('old1', 'healthy', $1, $1)`,
          [new Date().toISOString()],
        );
        await db.run(`INSERT INTO machine_macs (mac, hostname, position) VALUES ('02:00:00:00:00:01', 'old1', 0)`);
      } finally {
        await db.close();
      }
      const inv = await openInventory(url);
      open.push(inv);
      const old = await inv.getMachine('old1');
      assert.equal(old?.state, 'healthy');
      assert.deepEqual(old?.macs, ['02:00:00:00:00:01']);
      assert.equal(old?.nodeGroup, undefined);
      await inv.addNodeGroup(compute);
      assert.equal((await inv.updateMachine('old1', { nodeGroup: 'compute' })).nodeGroup, 'compute');
    });

    it('keeps a group whole: kits pinned by digest, components in order, layout and installer flags', async () => {
      const inv = await fresh();
      const added = await inv.addNodeGroup({ ...compute, storageLayout: layout });
      assert.equal(added.name, 'compute');
      assert.deepEqual(added.osKit, debian);
      assert.deepEqual(added.components, [{ ...slurm, component: 'slurmd' }]);
      assert.deepEqual(added.storageLayout, layout);
      assert.deepEqual(added.installerFlags, ['failure-wait=60']);
      assert.deepEqual(await inv.getNodeGroup('compute'), added);
      await inv.addNodeGroup({ name: 'head', osKit: debian, components: [] });
      assert.deepEqual(
        (await inv.listNodeGroups()).map((g) => g.name),
        ['compute', 'head'],
      );
      const changed = await inv.updateNodeGroup('compute', {
        components: [
          { ...slurm, component: 'munge' },
          { ...slurm, component: 'slurmd' },
        ],
        storageLayout: undefined,
      });
      assert.deepEqual(
        changed.components.map((c) => c.component),
        ['munge', 'slurmd'],
      );
      assert.equal(changed.storageLayout, undefined, 'a layout set to undefined is cleared');
      assert.deepEqual(changed.installerFlags, ['failure-wait=60'], 'fields not in the patch stay');
      assert.deepEqual(await inv.nodeGroupsUsingKit('slurm', '24.05'), ['compute']);
      assert.deepEqual(await inv.nodeGroupsUsingKit('debian', '12.8-1'), ['compute', 'head']);
      assert.deepEqual(await inv.nodeGroupsUsingKit('debian', '13.0-1'), []);
    });

    it('refuses bad groups, naming the field and the fix', async () => {
      const inv = await fresh();
      const refused = async (g: NewNodeGroup, re: RegExp) =>
        assert.rejects(inv.addNodeGroup(g), (e) => e instanceof ValidationError && re.test(e.message));
      await refused({ ...compute, name: 'Compute Nodes' }, /field 'name' is invalid: a node group name is 1-64/);
      await refused(
        { ...compute, osKit: { ...debian, digest: 'md5:x' } },
        /field 'osKit.digest' is invalid: expected the kit's digest/,
      );
      await refused(
        { ...compute, installerFlags: ['failure-wait=60 quiet'] },
        /field 'installerFlags.0' is invalid: an installer flag is NAME or NAME=VALUE without spaces/,
      );
      await refused(
        { ...compute, components: [compute.components[0], compute.components[0]] },
        /field 'components' is invalid: a component is listed twice/,
      );
      await refused(
        { ...compute, storageLayout: { BootDriveLayout: [{ FileSystemType: 'ntfs', MountPoint: '/' }] } },
        /field 'storageLayout.*is invalid/,
      );
      await inv.addNodeGroup(compute);
      await assert.rejects(
        inv.addNodeGroup(compute),
        (e) => e instanceof ConflictError && /already exists/.test(e.message),
      );
      await assert.rejects(
        inv.updateNodeGroup('compute', { name: 'other' } as never),
        (e) => e instanceof ValidationError && /field 'name' cannot be changed/.test(e.message),
      );
      await assert.rejects(inv.updateNodeGroup('ghost', {}), NotFoundError);
      assert.equal((await inv.listNodeGroups()).length, 1, 'nothing half-written');
    });

    it('machines belong to a group that exists; a group with machines is not removed', async () => {
      const inv = await fresh();
      await assert.rejects(
        inv.addMachine({ hostname: 'n1', macs: ['02:00:00:00:00:01'], tags: {}, nodeGroup: 'compute' }),
        (e) => e instanceof NotFoundError && /no node group 'compute'.*cradle nodegroup add/.test(e.message),
      );
      assert.equal(await inv.getMachine('n1'), undefined);
      await inv.addNodeGroup(compute);
      await inv.addNodeGroup({ name: 'gpu', osKit: debian, components: [] });
      for (const [i, name] of ['n1', 'n2'].entries())
        await inv.addMachine({ hostname: name, macs: [`02:00:00:00:00:0${i + 1}`], tags: {}, nodeGroup: 'compute' });
      await inv.addMachine({ hostname: 'g1', macs: ['02:00:00:00:01:01'], tags: {}, nodeGroup: 'gpu' });
      assert.deepEqual(
        (await inv.listMachines({ nodeGroup: 'compute' })).map((m) => m.hostname),
        ['n1', 'n2'],
      );
      await assert.rejects(
        inv.removeNodeGroup('compute'),
        (e) => e instanceof ConflictError && /node group 'compute' still has 2 machine\(s\) \(n1, n2\)/.test(e.message),
      );
      await inv.updateMachine('n1', { nodeGroup: 'gpu' });
      await inv.removeMachine('n2');
      await inv.removeNodeGroup('compute');
      assert.equal(await inv.getNodeGroup('compute'), undefined);
      assert.deepEqual(await inv.nodeGroupsUsingKit('slurm', '24.05'), [], 'its components went with it');
      await assert.rejects(inv.removeNodeGroup('compute'), NotFoundError);
      assert.equal((await inv.getMachine('n1'))?.nodeGroup, 'gpu');
    });
  });
}
