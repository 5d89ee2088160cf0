// `cradle nodegroup add|list|show|set|rm|build`: node groups (Kusu's: the head node, compute
// nodes, ...), kept in the machine database, made of kits in the depot (docs/kits.md).
// Argument parsing and printing; the rules live in src/kit/node-group.ts and src/inventory.
import type { Command } from 'commander';
import type { Depot } from '../kit/depot.ts';
import type { SqlInventory } from '../inventory/sql-store.ts';
import { NotFoundError, type NodeGroup, type NodeGroupPatch } from '../inventory/types.ts';
import { formatBytes, table } from '../util/format.ts';
import { dbOption, readLayout, withDb } from './db.ts';
import { depotOption } from './kit.ts';

const collect = (v: string, acc: string[]) => [...acc, v];

interface GroupFlags {
  kit: string[];
  component: string[];
  layout?: string | false;
  installerFlag: string[];
  installerFlags?: false;
  description?: string;
  depot: string;
  db: string;
}

async function openDepot(dir: string): Promise<Depot> {
  const { Depot } = await import('../kit/depot.ts');
  return new Depot(dir);
}

/** The kits and components chosen by --kit and --component, checked against the depot. */
async function chooseFrom(depot: Depot, name: string, o: GroupFlags) {
  const { chooseKits } = await import('../kit/node-group.ts');
  return chooseKits(
    name,
    o.kit.map((k) => depot.get(k)),
    o.component,
    (k) => depot.get(k),
  );
}

const pinLabel = (p: { name: string; version: string }) => `${p.name}/${p.version}`;

async function mustGet(inv: SqlInventory, name: string): Promise<NodeGroup> {
  const g = await inv.getNodeGroup(name);
  if (!g) throw new NotFoundError(`no node group '${name}': see 'cradle nodegroup list'`);
  return g;
}

function summary(g: NodeGroup): string {
  const components = g.components.map((c) => `${pinLabel(c)}:${c.component}`).join(', ') || 'none';
  return `node group ${g.name}: OS kit ${pinLabel(g.osKit)}, components ${components}`;
}

export function registerNodeGroupCommands(program: Command): void {
  const ng = program
    .command('nodegroup')
    .description("node groups: what a kind of machine installs (an OS kit's image with components) and how");

  const groupOptions = (cmd: Command) =>
    cmd
      .option(
        '--kit <kit>',
        'a kit for the group: one OS kit, and add-on kits (NAME[/VERSION], repeatable)',
        collect,
        [],
      )
      .option(
        '--component <kit:component>',
        'choose components (repeatable; default: every component of the --kit kits meant for this group)',
        collect,
        [],
      )
      .option('--layout <file>', "storage-layout.json for the group's machines")
      .option('--installer-flag <flag>', 'an installer flag for its machines, NAME[=VALUE] (repeatable)', collect, [])
      .option('--description <text>', 'what the group is')
      .addOption(depotOption())
      .addOption(dbOption());

  groupOptions(ng.command('add').description('add a node group').argument('<name>')).action(
    async (name: string, o: GroupFlags) => {
      const depot = await openDepot(o.depot);
      const choice = await chooseFrom(depot, name, o);
      const g = await withDb(o.db, (inv) =>
        inv.addNodeGroup({
          name,
          description: o.description ?? '',
          ...choice,
          storageLayout: o.layout ? readLayout(o.layout) : undefined,
          installerFlags: o.installerFlag,
        }),
      );
      console.log(`added ${summary(g)}`);
      console.log(`  build its image with 'cradle nodegroup build ${name}'`);
    },
  );

  groupOptions(
    ng
      .command('set')
      .description('change a node group (--kit replaces its kits and components)')
      .argument('<name>')
      .option('--no-layout', "its machines get the boot server's default layout")
      .option('--no-installer-flags', 'drop its installer flags'),
  ).action(async (name: string, o: GroupFlags) => {
    const depot = await openDepot(o.depot);
    const g = await withDb(o.db, async (inv) => {
      const cur = await mustGet(inv, name);
      const patch: NodeGroupPatch = {};
      if (o.kit.length || o.component.length) {
        const kits = o.kit.length ? o.kit : [pinLabel(cur.osKit)];
        Object.assign(patch, await chooseFrom(depot, name, { ...o, kit: kits }));
      }
      if (o.layout !== undefined) patch.storageLayout = o.layout ? readLayout(o.layout) : undefined;
      if (o.installerFlag.length) patch.installerFlags = o.installerFlag;
      else if (o.installerFlags === false) patch.installerFlags = [];
      if (o.description !== undefined) patch.description = o.description;
      return inv.updateNodeGroup(name, patch);
    });
    console.log(`changed ${summary(g)}`);
  });

  ng.command('list')
    .description('the node groups, their kits, machines and newest image')
    .addOption(depotOption())
    .addOption(dbOption())
    .action(async (o: { depot: string; db: string }) => {
      const depot = await openDepot(o.depot);
      const { groupImages } = await import('../kit/node-group.ts');
      const rows = await withDb(o.db, async (inv) => {
        const out: string[][] = [];
        for (const g of await inv.listNodeGroups()) {
          const machines = (await inv.listMachines({ nodeGroup: g.name })).length;
          const newest = groupImages(depot.store, g.name).pop()?.name ?? '- (not built)';
          out.push([g.name, pinLabel(g.osKit), String(g.components.length), String(machines), newest]);
        }
        return out;
      });
      console.log(table(['NAME', 'OS KIT', 'COMPONENTS', 'MACHINES', 'NEWEST IMAGE'], rows));
    });

  ng.command('show')
    .description('one node group: kits, components, layout, flags, machines and images')
    .argument('<name>')
    .addOption(depotOption())
    .addOption(dbOption())
    .action(async (name: string, o: { depot: string; db: string }) => {
      const depot = await openDepot(o.depot);
      const { groupImages } = await import('../kit/node-group.ts');
      await withDb(o.db, async (inv) => {
        const g = await mustGet(inv, name);
        const machines = (await inv.listMachines({ nodeGroup: name })).map((m) => m.hostname);
        const images = groupImages(depot.store, name);
        const lines = [
          `node group:  ${g.name}${g.description ? ` (${g.description})` : ''}`,
          `OS kit:      ${pinLabel(g.osKit)} ${g.osKit.digest}`,
          ...g.components.map((c) => `component:   ${pinLabel(c)}:${c.component}`),
          `layout:      ${g.storageLayout ? 'its own storage-layout.json' : "the boot server's default"}`,
          `flags:       ${g.installerFlags.join(' ') || '-'}`,
          `machines:    ${machines.join(', ') || '-'}`,
          `images:      ${images.length ? `${images.length}, newest ${images[images.length - 1].name}` : "none yet: 'cradle nodegroup build'"}`,
          ...images.slice(-5).map((r) => `  ${r.name}  ${r.stats.files} files, ${formatBytes(r.stats.bytes)}`),
        ];
        console.log(lines.join('\n'));
      });
    });

  ng.command('rm')
    .description("remove a node group without machines, and its images (objects go at the next 'image gc')")
    .argument('<name>')
    .addOption(depotOption())
    .addOption(dbOption())
    .action(async (name: string, o: { depot: string; db: string }) => {
      const depot = await openDepot(o.depot);
      const { groupImages } = await import('../kit/node-group.ts');
      await withDb(o.db, (inv) => inv.removeNodeGroup(name));
      const images = groupImages(depot.store, name);
      for (const r of images) depot.store.removeImage(r.name);
      console.log(`removed node group ${name}${images.length ? ` and its ${images.length} image(s)` : ''}`);
    });

  ng.command('build')
    .description("compose node groups' images into the depot as nodegroup/NAME/<time>: only new objects are written")
    .argument('[names...]', 'the groups (default: every group)')
    .addOption(depotOption())
    .addOption(dbOption())
    .action(async (names: string[], o: { depot: string; db: string }) => {
      const depot = await openDepot(o.depot);
      const { buildNodeGroup } = await import('../kit/node-group.ts');
      const groups = await withDb(o.db, async (inv) =>
        names.length ? Promise.all(names.map((n) => mustGet(inv, n))) : inv.listNodeGroups(),
      );
      if (!groups.length) throw new NotFoundError("no node groups to build: add one with 'cradle nodegroup add'");
      for (const g of groups) {
        const started = performance.now();
        const built = await buildNodeGroup(depot, g);
        const s = built.record.stats;
        console.log(
          `built ${built.record.name}: ${s.files} files, ${formatBytes(s.bytes)}; ${built.objects} objects, ${built.written} new, in ${((performance.now() - started) / 1000).toFixed(2)} s`,
        );
      }
    });
}
