// `cradle kit build|add|list|show|verify|rm`: kits (Kusu's bundles of cluster software) and the
// depot that holds them (docs/kits.md).
import fs from 'node:fs';
import { type Command, Option } from 'commander';
import { parseDbUrl } from '../inventory/open.ts';
import { formatBytes, table } from '../util/format.ts';
import { dbOption, withDb } from './db.ts';
import { registerBuildCradle } from './kit-cradle.ts';

export const depotOption = () =>
  new Option('--depot <dir>', 'the depot: the image store and the kits (env CRADLE_DEPOT)').default(
    process.env.CRADLE_DEPOT ?? '/depot',
  );

const collect = (v: string, acc: string[]) => [...acc, v];

/** `NAME:GROUP[,GROUP]:SOURCE[:OS[,OS]]`, as --component takes it. */
export function parseComponent(text: string): { name: string; nodeGroups: string[]; source: string; os?: string[] } {
  const m = /^([^:]+):([^:]+):(.+?)(?::([^:/]+))?$/.exec(text);
  if (!m)
    throw new Error(
      `--component '${text}': give NAME:GROUP[,GROUP]:SOURCE[:OS[,OS]], e.g. slurm:compute:./slurm-tree:debian-12`,
    );
  return { name: m[1], nodeGroups: m[2].split(','), source: m[3], ...(m[4] ? { os: m[4].split(',') } : {}) };
}

export function registerKitCommands(program: Command): void {
  const kit = program.command('kit').description('kits: OS and add-on bundles of cluster software, kept in the depot');

  kit
    .command('build')
    .description('build a kit file from image sources (directory, tar, OCI layout, docker save)')
    .requiredOption('--out <file>', 'the kit file to write')
    .requiredOption('--name <name>', 'the kit name, e.g. debian or slurm')
    .requiredOption('--version <version>', 'its version, e.g. 12.8-1')
    .addOption(
      new Option('--kind <kind>', 'os (brings an operating system) or addon')
        .choices(['os', 'addon'])
        .makeOptionMandatory(),
    )
    .option('--os <os>', 'an OS kit: the OS it brings, e.g. debian-12')
    .option('--image <source>', 'an OS kit: its operating system image source')
    .option('--arch <arch>', 'x86_64 or aarch64', 'x86_64')
    .option('--description <text>', 'what the kit is')
    .option('--component <spec>', 'NAME:GROUP[,GROUP]:SOURCE[:OS[,OS]] (repeatable)', collect, [] as string[])
    .option('--sign-cert <file>', 'sign with this certificate (issued by the site CA, cradle pki)')
    .option('--sign-key <file>', 'the key of --sign-cert')
    .action(
      async (o: {
        out: string;
        name: string;
        version: string;
        kind: 'os' | 'addon';
        os?: string;
        image?: string;
        arch: string;
        description?: string;
        component: string[];
        signCert?: string;
        signKey?: string;
      }) => {
        if (!!o.signCert !== !!o.signKey) throw new Error('--sign-cert and --sign-key go together');
        if (o.arch !== 'x86_64' && o.arch !== 'aarch64') throw new Error(`--arch ${o.arch}: give x86_64 or aarch64`);
        const { buildKit } = await import('../kit/build.ts');
        const built = await buildKit(
          {
            name: o.name,
            version: o.version,
            kind: o.kind,
            os: o.os,
            arch: o.arch,
            description: o.description,
            image: o.image,
            components: o.component.map(parseComponent),
          },
          o.out,
          { sign: o.signCert ? { cert: o.signCert, key: o.signKey! } : undefined, log: (l) => console.error(l) },
        );
        console.log(`wrote ${o.out}: kit ${built.kit.name}/${built.kit.version} ${built.digest}`);
        console.log(`  ${built.objects} objects, ${formatBytes(built.bytes)}`);
      },
    );

  registerBuildCradle(kit);

  kit
    .command('add')
    .description('add a kit file (or an http(s):// URL of one) to the depot: verified whole before anything is stored')
    .argument('<file|url>')
    .addOption(depotOption())
    .option('--trust <ca.pem>', 'accept only kits signed by a certificate this CA issued (default: DEPOT/trust.pem)')
    .option('--ca <file>', 'https:// URL: the CA its server certificate is checked against (default: the system CAs)')
    .option('--cert <file>', 'https:// URL: a client certificate to present (mutual TLS)')
    .option('--key <file>', 'the key of --cert')
    .action(async (source: string, o: { depot: string; trust?: string; ca?: string; cert?: string; key?: string }) => {
      const { Depot } = await import('../kit/depot.ts');
      const depot = new Depot(o.depot);
      const { record, added } = await depot.withSource(source, { ca: o.ca, cert: o.cert, key: o.key }, (file) =>
        depot.add(file, { trust: o.trust }),
      );
      const label = `${record.kit.name}/${record.kit.version}`;
      console.log(added ? `added kit ${label} (${record.digest})` : `kit ${label} is already in the depot`);
      for (const name of [record.images.os, ...Object.values(record.images.components)].filter(Boolean))
        console.log(`  image ${name}`);
    });

  kit
    .command('list')
    .description('the kits in the depot')
    .addOption(depotOption())
    .action(async (o: { depot: string }) => {
      const { Depot } = await import('../kit/depot.ts');
      const rows = new Depot(o.depot)
        .list()
        .map((r) => [
          r.kit.name,
          r.kit.version,
          r.kit.kind,
          r.kit.os ?? '-',
          r.kit.components.map((c) => c.name).join(',') || '-',
          r.signer ?? (r.signed ? 'unchecked' : '-'),
        ]);
      console.log(table(['NAME', 'VERSION', 'KIND', 'OS', 'COMPONENTS', 'SIGNED BY'], rows));
    });

  kit
    .command('show')
    .description('one kit: what it brings, for which OS and node groups')
    .argument('<kit>', 'NAME/VERSION, or NAME when one version is there')
    .addOption(depotOption())
    .action(async (label: string, o: { depot: string }) => {
      const { Depot } = await import('../kit/depot.ts');
      const r = new Depot(o.depot).get(label);
      const k = r.kit;
      console.log(`kit:         ${k.name}/${k.version} (${k.kind}${k.os ? `, brings ${k.os}` : ''}, ${k.arch})`);
      console.log(`identity:    ${r.digest}`);
      const signature = r.signer
        ? `signed by ${r.signer}`
        : r.signed
          ? 'signed, not checked (the depot trusts no CA)'
          : 'unsigned';
      console.log(`added:       ${r.addedAt}, ${signature}`);
      if (k.description) console.log(`description: ${k.description}`);
      if (r.images.os) console.log(`OS image:    ${r.images.os}`);
      for (const c of k.components)
        console.log(
          `component:   ${c.name} for ${c.nodeGroups.join(', ')} on ${c.os.join(', ') || k.os}: image ${r.images.components[c.name]}`,
        );
    });

  kit
    .command('verify')
    .description('re-check kits in the depot: kit.json and every object, re-hashed')
    .argument('[kit]', 'NAME/VERSION (default: every kit)')
    .addOption(depotOption())
    .action(async (label: string | undefined, o: { depot: string }) => {
      const { Depot } = await import('../kit/depot.ts');
      const problems = await new Depot(o.depot).verify(label);
      for (const p of problems) console.error(p);
      if (problems.length) throw new Error(`${problems.length} problems found`);
      console.log(`verified: ${label ?? 'every kit'} intact`);
    });

  kit
    .command('rm')
    .description('remove a kit and its images (refused while a node group uses it; objects go at the next image gc)')
    .argument('<kit>', 'NAME/VERSION')
    .addOption(depotOption())
    .addOption(dbOption())
    .action(async (label: string, o: { depot: string; db: string }) => {
      const { Depot } = await import('../kit/depot.ts');
      const depot = new Depot(o.depot);
      const { kit } = depot.get(label);
      // A database that does not exist yet has no node groups: not created just to be asked.
      const where = parseDbUrl(o.db);
      const users =
        where.kind === 'sqlite' && !fs.existsSync(where.file)
          ? []
          : await withDb(o.db, (inv) => inv.nodeGroupsUsingKit(kit.name, kit.version));
      const r = depot.remove(label, () => users.map((g) => `node group ${g}`));
      console.log(`removed kit ${r.kit.name}/${r.kit.version}`);
    });
}
