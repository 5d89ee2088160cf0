// The head node's new system, once its file systems are mounted under `target` (Kusu's order:
// the confirmation committed the disks; then the kits go to /depot, then the rest). Each step is a
// function of its own and `installHeadSystem` reads like the sequence:
//   1. the kits, verified, into TARGET/depot (at least one OS kit and the Cradle kit);
//   2. the head node's image: its OS kit's image with every component for the `head` group, built
//      in the depot as nodegroup/head and unpacked into the target from the depot's own store;
//   3. its settings: host name, hosts, time zone, locale, keymap, fstab, root's password, and its
//      network files (the installer's renderer, for ifupdown or systemd-networkd as the image has);
//   4. its machine database (SQLite, carried to PostgreSQL at first boot): the provisioning subnet
//      with its pool, the node groups (head, compute, and those the answers name), built, and the
//      compute nodes the answers register, in state birth;
//   5. its certificates: a site CA, the server's and the installer's, and the operators' CAs; its
//      services enabled, with their settings (services.ts);
//   6. the answers (password hashed: replaying them repeats the install), the kickstart, the log.
// The boot loader needs the new system's own programs (a chroot) and comes after (boot.ts).
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { storeFetcher } from '../image/store/fetcher.ts';
import { unpackImage } from '../image/unpack/unpack.ts';
import { openInventory } from '../inventory/open.ts';
import type { NodeGroup } from '../inventory/types.ts';
import { Depot, type KitRecord } from '../kit/depot.ts';
import { CRADLE_KIT_CLI } from '../kit/served.ts';
import { kitLabel } from '../kit/format.ts';
import { writeInRoot } from '../util/in-root.ts';
import { buildNodeGroup, chooseKits } from '../kit/node-group.ts';
import { enableUnit, networkFlavour, renderNetworkFiles, writeNetworkFiles } from '../netconfig/files.ts';
import { createCa, issueCertificate } from '../pki/pki.ts';
import { AnswersError } from './answers.ts';
import { kickstart } from './kickstart.ts';
import { headNetworkFiles } from './network.ts';
import { operatorsPem } from './operators.ts';
import type { SetupPlan } from './plan.ts';
import { fetchKit, type KitUrl } from './source.ts';
import { replayText } from './replay.ts';
import { HEAD_PATHS, HEAD_UNITS, headNodeEnv } from './services.ts';
import { systemFiles, withRootPassword } from './system-files.ts';

export interface NewSystemInput {
  plan: SetupPlan;
  /** The new system's root, its file systems mounted. */
  target: string;
  /** The kit files to add, the OS kit to install first among the OS kits. */
  kitFiles: string[];
  /** Kits to fetch (the answers' kits.urls), after the files. */
  kitUrls?: KitUrl[];
  log: (line: string) => void;
  /** The setup's log so far, carried into the new system. */
  logLines?: () => string[];
}

export interface NewSystem {
  kits: KitRecord[];
  headImage: string;
  nodeGroups: string[];
}

const inTarget = (target: string, p: string) => path.join(target, p);

/**
 * 1. The kits, each verified whole before anything of it is stored: the medium's, then those named
 * by URL, each downloaded into the depot's own scratch space (the new disks, not memory).
 */
export async function addKits(
  depot: Depot,
  files: string[],
  urls: KitUrl[],
  log: NewSystemInput['log'],
): Promise<KitRecord[]> {
  const records: KitRecord[] = [];
  const add = async (file: string, from: string) => {
    const { record } = await depot.add(file);
    log(`kit ${kitLabel(record.kit)} (${record.kit.kind}) from ${from} in ${depot.root}`);
    records.push(record);
  };
  for (const file of files) await add(file, path.basename(file));
  for (const k of urls) {
    depot.store.init();
    const file = depot.store.tempPath('kit-download');
    try {
      const bytes = await fetchKit(k, file);
      log(`fetched ${bytes} bytes from ${k.url}${k.fingerprint ? ' (certificate pinned)' : ''}`);
      await add(file, k.url);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }
  if (!records.some((r) => r.kit.kind === 'os'))
    throw new AnswersError('no OS kit: a head node needs one (the kits screen, or kits.fromMedia), e.g. debian');
  if (!records.some((r) => r.kit.name === 'cradle'))
    throw new AnswersError(
      "no Cradle kit ('cradle'): the head node needs it to serve its cluster (cradle kit build-cradle)",
    );
  return records;
}

/** A group of the first OS kit and the add-ons with something for it. */
function groupFrom(name: string, kits: KitRecord[], depot: Depot): Omit<NodeGroup, 'createdAt' | 'updatedAt'> {
  const os = kits.find((r) => r.kit.kind === 'os') as KitRecord;
  const addons = kits.filter(
    (r) => r.kit.kind === 'addon' && r.kit.components.some((c) => c.nodeGroups.includes(name)),
  );
  return {
    name,
    description: '',
    installerFlags: [],
    ...chooseKits(name, [os, ...addons], [], (l) => depot.get(l)),
  };
}

/** 2. The head node's image, built in the depot and unpacked into the target from it. */
export async function installHeadImage(depot: Depot, kits: KitRecord[], target: string, log: NewSystemInput['log']) {
  const head = groupFrom('head', kits, depot);
  const built = await buildNodeGroup(depot, { ...head, createdAt: '', updatedAt: '' });
  const manifest = await depot.store.readManifest(built.record.manifest as never);
  const stats = await unpackImage(manifest, target, { fetcher: storeFetcher(depot.store), ownMounts: true });
  log(`image ${built.record.name}: ${stats.entries} entries, ${stats.bytesWritten} bytes into ${target}`);
  return { head, image: built.record.name };
}

/** 3. Host name, time zone, locale, keymap, fstab and root's password. */
export function writeSettings(plan: SetupPlan, target: string): void {
  const { files, links } = systemFiles(plan);
  for (const f of files) {
    fs.mkdirSync(path.dirname(inTarget(target, f.path)), { recursive: true });
    fs.writeFileSync(inTarget(target, f.path), f.content, { mode: f.mode });
  }
  for (const l of links) {
    fs.rmSync(inTarget(target, l.path), { force: true });
    fs.symlinkSync(l.target, inTarget(target, l.path));
  }
  const shadow = inTarget(target, '/etc/shadow');
  const before = fs.existsSync(shadow) ? fs.readFileSync(shadow, 'utf8') : '';
  fs.writeFileSync(shadow, withRootPassword(before, plan.rootPasswordHash), { mode: 0o640 });
}

/** 3b. The network files, for whichever of ifupdown and systemd-networkd the image carries. */
export function writeNetwork(plan: SetupPlan, target: string, log: NewSystemInput['log']): void {
  const detected = networkFlavour((p) => fs.existsSync(inTarget(target, p)));
  // As the installer does: a system whose image has neither still gets ifupdown's file.
  if (!detected) log('the head node image has neither ifupdown nor systemd-networkd: writing /etc/network/interfaces');
  const flavour = detected ?? 'ifupdown';
  writeNetworkFiles(target, renderNetworkFiles({ ...headNetworkFiles(plan.network), flavour }));
  // DNS from DHCP: ifupdown's client writes resolv.conf; networkd hands it to systemd-resolved.
  if (flavour === 'networkd' && plan.network.dns === 'dhcp') {
    if (
      ['lib/systemd/systemd-resolved', 'usr/lib/systemd/systemd-resolved'].some((p) =>
        fs.existsSync(inTarget(target, p)),
      )
    ) {
      enableUnit(target, 'systemd-resolved.service');
      fs.rmSync(inTarget(target, 'etc/resolv.conf'), { force: true });
      fs.symlinkSync('../run/systemd/resolve/stub-resolv.conf', inTarget(target, 'etc/resolv.conf'));
    } else
      log(
        'network: DNS from DHCP, but the image has no systemd-resolved to take it from systemd-networkd (Debian: systemd-resolved): /etc/resolv.conf stays as the image has it',
      );
  }
  log(`network: ${flavour} files for ${plan.network.interfaces.map((i) => `${i.nic.name} (${i.role})`).join(', ')}`);
}

/** 4. The machine database: the provisioning subnet, the node groups, each built, and the nodes. */
export async function seedDatabase(
  plan: SetupPlan,
  depot: Depot,
  kits: KitRecord[],
  target: string,
  head: ReturnType<typeof groupFrom>,
) {
  fs.mkdirSync(path.dirname(inTarget(target, HEAD_PATHS.db)), { recursive: true });
  const inv = await openInventory(`sqlite:${inTarget(target, HEAD_PATHS.db)}`);
  try {
    await inv.addSubnet(plan.network.provisioning.subnet);
    const groups = [head];
    if (plan.nodeGroups === 'default') groups.push(groupFrom('compute', kits, depot));
    else
      for (const g of plan.nodeGroups)
        groups.push({
          name: g.name,
          description: g.description ?? '',
          installerFlags: [],
          ...chooseKits(
            g.name,
            g.kits.map((k) => depot.get(k)),
            g.components ?? [],
            (l) => depot.get(l),
          ),
        });
    for (const g of groups) {
      await inv.addNodeGroup(g);
      if (g.name !== 'head') await buildNodeGroup(depot, { ...g, createdAt: '', updatedAt: '' });
    }
    // After their groups: a machine's node group must exist. One without an address gets a pool
    // lease at its first boot, kept as its address when its installer fetches its configuration.
    for (const n of plan.nodes)
      await inv.addMachine({
        hostname: n.hostname,
        macs: [n.mac],
        ...(n.ip ? { ip: n.ip } : {}),
        subnetId: plan.network.provisioning.subnet.id,
        nodeGroup: n.nodeGroup,
        tags: {},
        state: 'birth',
      });
    return groups.map((g) => g.name);
  } finally {
    await inv.close();
  }
}

/**
 * 5. A site CA, the server's certificate (host name and provisioning address), the installer's and
 * an operator's; the CAs of operators (the site's, and the answers' operators.ca). The server
 * certificate's fingerprint is logged, so operators and the lab can pin it.
 */
export async function makeCertificates(plan: SetupPlan, target: string, log: NewSystemInput['log']): Promise<void> {
  const ca = inTarget(target, HEAD_PATHS.ca);
  fs.mkdirSync(ca, { recursive: true, mode: 0o700 });
  const caCert = await createCa(ca, { name: `Cradle CA of ${plan.hostname}`, days: 3650 });
  fs.writeFileSync(
    inTarget(target, HEAD_PATHS.operatorCa),
    operatorsPem(fs.readFileSync(caCert, 'utf8'), plan.operatorCa),
    { mode: 0o644 },
  );
  const short = plan.hostname.split('.')[0];
  const server = await issueCertificate(
    ca,
    {
      kind: 'server',
      name: plan.hostname,
      dns: [plan.hostname, short],
      ips: [plan.network.provisioning.address],
      days: 825,
    },
    inTarget(target, HEAD_PATHS.serverTls),
  );
  log(`server certificate sha256 ${new X509Certificate(fs.readFileSync(server.cert)).fingerprint256}`);
  await issueCertificate(
    ca,
    { kind: 'installer', name: 'installer', days: 825 },
    inTarget(target, HEAD_PATHS.installerTls),
  );
  await issueCertificate(
    ca,
    { kind: 'client', name: `operator@${plan.hostname}`, days: 825 },
    inTarget(target, HEAD_PATHS.operatorTls),
  );
}

/** 5b. The services: their settings, and the units the Cradle kit carries, enabled. */
export function enableServices(plan: SetupPlan, target: string, groups: string[], log: NewSystemInput['log']): void {
  const defaultImage = `nodegroup/${groups.includes('compute') ? 'compute' : (groups.find((g) => g !== 'head') ?? 'head')}`;
  writeInRoot(target, HEAD_PATHS.env, headNodeEnv(plan, defaultImage));
  const unitDir = `/${CRADLE_KIT_CLI.units}`;
  for (const unit of HEAD_UNITS) {
    if (!fs.existsSync(inTarget(target, path.join(unitDir, unit)))) {
      log(`${unitDir}/${unit} is not in the head node image: the Cradle kit's cradle component carries it`);
      continue;
    }
    enableUnit(target, unit, unitDir);
  }
  log(`services ${HEAD_UNITS.join(', ')} with ${HEAD_PATHS.env}`);
}

/** 6. What replays the install, and the log of this one. */
export function saveAnswers(plan: SetupPlan, target: string, logLines: string[]): void {
  const write = (p: string, text: string, mode: number) => {
    fs.mkdirSync(path.dirname(inTarget(target, p)), { recursive: true });
    fs.writeFileSync(inTarget(target, p), text, { mode });
  };
  write(HEAD_PATHS.answers, replayText(plan.answers), 0o600);
  write(HEAD_PATHS.kickstart, kickstart(plan), 0o600);
  write(HEAD_PATHS.log, `${logLines.join('\n')}\n`, 0o600);
}

export async function installHeadSystem(i: NewSystemInput): Promise<NewSystem> {
  const depot = new Depot(inTarget(i.target, HEAD_PATHS.depot));
  const kits = await addKits(depot, i.kitFiles, i.kitUrls ?? [], i.log);
  const { head, image } = await installHeadImage(depot, kits, i.target, i.log);
  writeSettings(i.plan, i.target);
  writeNetwork(i.plan, i.target, i.log);
  const nodeGroups = await seedDatabase(i.plan, depot, kits, i.target, head);
  i.log(`node groups ${nodeGroups.join(', ')} in ${HEAD_PATHS.db}`);
  if (i.plan.nodes.length)
    i.log(
      `compute nodes ${i.plan.nodes.map((n) => `${n.hostname} (${n.ip ?? 'pool'})`).join(', ')} registered in state birth`,
    );
  await makeCertificates(i.plan, i.target, i.log);
  i.log(
    `site CA and certificates in ${HEAD_PATHS.ca}, ${path.dirname(HEAD_PATHS.serverTls)}; operators' CAs in ${HEAD_PATHS.operatorCa}${i.plan.operatorCa ? ' (the site CA and operators.ca)' : ' (the site CA)'}`,
  );
  enableServices(i.plan, i.target, nodeGroups, i.log);
  saveAnswers(i.plan, i.target, i.logLines?.() ?? []);
  return { kits, headImage: image, nodeGroups };
}
