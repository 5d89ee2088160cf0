// The head node, measured (QEMU under TCG on this host; with KVM every figure shrinks a lot):
//  1. power-on to the head node serving, by phase from its console (lab/head-console.ts): ISO
//     boot, setup, install, first boot, its services starting;
//  2. its compute nodes, four registered by one head install: compute1 powered on alone right
//     after it serves (N = 1), then compute2..4 at once (N = 3), each batch to its last node
//     healthy in the head node's database;
//  3. the peer: the same compute install from this host's servers (lab/lab.ts with a node group
//     built in its depot, as the head node's setup builds it, from the same two cached kits: the
//     same image, checked by its manifest, and the same layout, the boot server's default), one
//     machine with the same memory and disk. Ratios head/host: above 1 is what serving from an
//     emulated head node costs.
// One head install per run (about 40 minutes); BENCH_RUNS=N for more, figures are medians.
//
//   node_modules/.bin/node bench/head-node.ts
import fs from 'node:fs';
import path from 'node:path';
import { Depot } from '../src/kit/depot.ts';
import { nodeGroupStream } from '../src/kit/node-group.ts';
import type { HeadTimeline } from '../src/lab/head-console.ts';
import { headLabKits } from '../src/lab/head-kits.ts';
import { HEAD_LAB_DEFAULTS, HeadLab } from '../src/lab/head-lab.ts';
import { type HeadLabRun, HeadLabSession, type HeadRunOptions } from '../src/lab/head-lab-run.ts';
import { logIn, runAtConsole } from '../src/lab/head-shell.ts';
import { Lab, LAB_DEFAULTS, runLab } from '../src/lab/lab.ts';
import {
  headLiveLine,
  headStage,
  headSummaryTable,
  liveLine,
  stageOf,
  summaryTable,
  type Timeline,
} from '../src/lab/report.ts';
import { HEAD_PATHS } from '../src/setup/services.ts';
import { cacheDir } from '../src/util/build-cache.ts';
import { table } from '../src/util/format.ts';
import { type Cleanup, cradleBin, exec, runBenchmark, tempDir, writeResults } from './lib.ts';
import { mb, median, ratioLine, secs } from './measure.ts';

/** Head installs: one by default (lib's RUNS is 3, two hours of VMs here). */
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 1));
const GROUP = 'compute';
const ALONE = ['compute1'];
const TOGETHER = ['compute2', 'compute3', 'compute4'];
/** The installer unpacks the 770 MB image into a tmpfs of half the RAM: 2 GiB on both sides. */
const COMPUTE_MEMORY_MIB = 2048;
const COMPUTE_DISK_GIB = HEAD_LAB_DEFAULTS.computeDiskGiB;
const MANIFEST = /^manifest:\s+(\S+)/m;

const span = (from?: number, to?: number) => (from !== undefined && to !== undefined ? (to - from) / 1000 : NaN);
const tail = (file: string) =>
  fs.existsSync(file) ? fs.readFileSync(file, 'latin1').split('\n').slice(-40).join('\n') : `(no ${file})`;

/** Each phase of the head node's install, in seconds, from its console's timeline. */
function headPhases(t: HeadTimeline) {
  return {
    isoBoot: span(t.poweredOnAt, t.isoBootedAt),
    setup: span(t.isoBootedAt, t.setupDoneAt),
    install: span(t.setupDoneAt, t.installedAt),
    firstBoot: span(t.installedAt, t.firstBootAt),
    servicesStart: span(t.firstBootAt, t.servingAt),
    toServing: span(t.poweredOnAt, t.servingAt),
  };
}

/** One compute node's figures: stage times, the installer's own install time, bytes it fetched. */
function nodeFigures(t: Timeline) {
  const r = t.progress?.result;
  return {
    toInstaller: span(t.poweredOnAt, t.installerAt),
    install: r?.seconds ?? NaN,
    toHealthy: span(t.poweredOnAt, t.healthyAt),
    bytesFetched: r?.objects?.bytesFetched ?? NaN,
  };
}

/** A batch powered on together: from its power-on to its last node healthy. */
const toLastHealthy = (ts: Timeline[]) =>
  span(Math.min(...ts.map((t) => t.poweredOnAt)), Math.max(...ts.map((t) => t.healthyAt ?? NaN)));

/** Median of one field over the runs. */
const med = <T>(rows: T[], f: (r: T) => number) => median(rows.map(f));

/** Prints a machine's line when its stage changes (a run is long: this shows where it is). */
function stagePrinter() {
  const seen = new Map<string, string>();
  const show = (name: string, stage: string, line: string) => {
    if (seen.get(name) === stage) return;
    seen.set(name, stage);
    console.log(`  ${line}`);
  };
  return {
    head: ({ head, compute }: HeadLabRun) => {
      show(head.hostname, headStage(head), headLiveLine(head, Date.now()));
      for (const t of compute) show(t.hostname, stageOf(t), liveLine(t, Date.now()));
    },
    host: (ts: Timeline[]) => {
      for (const t of ts) show(t.hostname, stageOf(t), liveLine(t, Date.now()));
    },
  };
}

function mustBeHealthy(ts: Timeline[], where: string, serialLog: (host: string) => string): void {
  for (const t of ts)
    if (t.state !== 'healthy')
      throw new Error(
        `${where}: ${t.hostname} ended ${t.state} (${t.problem ?? t.progress?.result?.error ?? ''}):\n${tail(serialLog(t.hostname))}`,
      );
}

/**
 * The host's depot in the peer lab's directory: the head node's two kits added, and its compute
 * group made as the head node's setup makes it (setup/new-system.ts groupFrom: the OS kit and the
 * add-on kits with a component for the group, no layout of its own), then built. Its manifest.
 */
async function hostDepot(dir: string): Promise<string> {
  const env = { ...process.env, CRADLE_DEPOT: dir, CRADLE_DB: `sqlite:${path.join(dir, 'inventory.db')}` };
  const cradle = async (...args: string[]) => (await exec(cradleBin, args, { env })).stdout;
  for (const kit of await headLabKits(cacheDir, (l) => console.log(`  ${l}`))) await cradle('kit', 'add', kit);
  const kits = new Depot(dir)
    .list()
    .filter((r) => r.kit.kind === 'os' || r.kit.components.some((c) => c.nodeGroups.includes(GROUP)));
  await cradle('nodegroup', 'add', GROUP, ...kits.flatMap((r) => ['--kit', `${r.kit.name}/${r.kit.version}`]));
  console.log(`  host depot: ${(await cradle('nodegroup', 'build', GROUP)).trim()}`);
  const shown = await cradle('image', 'show', nodeGroupStream(GROUP), '--store', path.join(dir, 'images'));
  return MANIFEST.exec(shown)![1];
}

/** The compute group's newest image on the head node, as root at its console; undefined if unread. */
async function headManifest(lab: HeadLab): Promise<string | undefined> {
  try {
    await logIn(lab.head!, lab.password);
    const shown = await runAtConsole(
      lab.head!,
      `cradle image show ${nodeGroupStream(GROUP)} --store ${HEAD_PATHS.depot}/images`,
    );
    return MANIFEST.exec(shown)?.[1];
  } catch (err) {
    console.log(`  the head node's image manifest: not read (${(err as Error).message})`);
    return undefined;
  }
}

/** One head install, then compute1 alone, then compute2..4 together. */
async function headRun(c: Cleanup, dir: string, run: number) {
  const lab = new HeadLab({
    ...HEAD_LAB_DEFAULTS,
    dir,
    compute: ALONE.length + TOGETHER.length,
    computeMemoryMiB: COMPUTE_MEMORY_MIB,
    computeDiskGiB: COMPUTE_DISK_GIB,
    accel: 'tcg',
    namespace: `cradle-bench-head-${process.pid}`,
    log: (l) => console.log(`  ${l}`),
  });
  const session = new HeadLabSession(lab);
  c.defer(`stop the head lab (run ${run})`, () => session.stop());
  const printer = stagePrinter();
  const o: HeadRunOptions = { timeoutSeconds: 2400, onTick: printer.head, log: (l) => console.log(`  ${l}`) };
  const serialLog = (h: string) => lab.computeNodes([h])[0].serialLog;
  try {
    await lab.prepare();
    session.start();
    const head = await session.waitServing(o);
    if (head.servingAt === undefined)
      throw new Error(`the head node is not serving: ${head.problem}\n${tail(lab.plan.head.serialLog)}`);
    console.log(`\nhead node, run ${run}:\n${headSummaryTable(head)}\n`);
    const batches: Timeline[][] = [];
    for (const names of [ALONE, TOGETHER]) {
      lab.powerOnComputes(names);
      const { compute } = await session.followCompute({ ...o, timeoutSeconds: 1800 }, names);
      mustBeHealthy(compute, 'from the head node', serialLog);
      console.log(`\n${names.length} compute node(s) powered on together, run ${run}:\n${summaryTable(compute)}\n`);
      batches.push(compute);
    }
    return { head, alone: batches[0], together: batches[1], manifest: await headManifest(lab) };
  } finally {
    await session.stop();
  }
}

/** One run's figures: the head node's phases, both batches, and compute1 against the peer. */
function runFigures(h: Awaited<ReturnType<typeof headRun>>, peer: Timeline) {
  return {
    head: headPhases(h.head),
    alone: { fromServing: span(h.head.servingAt, h.alone[0].healthyAt), toLastHealthy: toLastHealthy(h.alone) },
    together: { toLastHealthy: toLastHealthy(h.together), nodes: h.together.map(nodeFigures) },
    computeFromHead: nodeFigures(h.alone[0]),
    computeFromHost: nodeFigures(peer),
    headManifest: h.manifest ?? null,
  };
}
type RunFigures = ReturnType<typeof runFigures>;

/** What the summary shows, in seconds: its key in the results, its label, and where a run has it. */
const MEASURES = [
  ['headIsoBoot', 'head: ISO boot', (r) => r.head.isoBoot],
  ['headSetup', 'head: setup', (r) => r.head.setup],
  ['headInstall', 'head: install', (r) => r.head.install],
  ['headFirstBoot', 'head: first boot', (r) => r.head.firstBoot],
  ['headServicesStart', 'head: services start', (r) => r.head.servicesStart],
  ['headToServing', 'head: power-on to serving', (r) => r.head.toServing],
  ['oneFromServing', '1 compute node (compute1): serving to healthy', (r) => r.alone.fromServing],
  ['oneToHealthy', '1 compute node (compute1): power-on to healthy', (r) => r.alone.toLastHealthy],
  ['threeToLastHealthy', '3 compute nodes: power-on to last healthy', (r) => r.together.toLastHealthy],
  ['fromHostToHealthy', 'peer from the host: power-on to healthy', (r) => r.computeFromHost.toHealthy],
  ['fromHeadInstall', 'compute1 from the head: installer install', (r) => r.computeFromHead.install],
  ['fromHostInstall', 'peer from the host: installer install', (r) => r.computeFromHost.install],
] as const satisfies readonly (readonly [string, string, (r: RunFigures) => number])[];
type Measure = (typeof MEASURES)[number][0];

await runBenchmark('head-node', async (c) => {
  const work = tempDir(c, 'head-node');
  console.log('host depot: the head node kits, its compute group built as its setup builds it');
  const hostDir = path.join(work, 'host');
  fs.mkdirSync(hostDir);
  const hostManifest = await hostDepot(hostDir);
  const host = new Lab({
    ...LAB_DEFAULTS,
    dir: hostDir,
    machines: 1,
    nodeGroup: GROUP,
    firmware: HEAD_LAB_DEFAULTS.firmware,
    memoryMiB: COMPUTE_MEMORY_MIB,
    diskGiB: COMPUTE_DISK_GIB,
    namespace: `cradle-bench-host-${process.pid}`,
    log: (l) => console.log(`  ${l}`),
  });
  c.defer('stop the host lab', () => host.destroy());

  const runs: RunFigures[] = [];
  for (let i = 1; i <= RUNS; i++) {
    console.log(`\nrun ${i}/${RUNS}: the peer, one compute install from this host's servers`);
    const [peer] = await runLab(host, {
      rebirth: false,
      timeoutSeconds: 1800,
      accel: 'tcg',
      onTick: stagePrinter().host,
    });
    await host.destroy();
    mustBeHealthy([peer], "from the host's servers", () => host.machines[0].serialLog);
    console.log(`\n${summaryTable([peer])}`);
    console.log(`\nrun ${i}/${RUNS}: the head node from its ISO, then its compute nodes`);
    const h = await headRun(c, path.join(work, 'head'), i);
    if (h.manifest && h.manifest !== hostManifest)
      throw new Error(
        `not the same image: the head node's ${nodeGroupStream(GROUP)} is ${h.manifest}, the host's ${hostManifest}: the comparison would not hold`,
      );
    runs.push(runFigures(h, peer));
  }

  const m = Object.fromEntries(MEASURES.map(([key, , f]) => [key, med(runs, f)])) as Record<Measure, number>;
  const bytes = (f: (r: RunFigures) => ReturnType<typeof nodeFigures>) => med(runs, (r) => f(r).bytesFetched);
  const fetched = { fromHead: bytes((r) => r.computeFromHead), fromHost: bytes((r) => r.computeFromHost) };
  const sameManifest = runs.every((r) => r.headManifest === hostManifest);
  console.log(`\nsummary (median of ${RUNS} head install${RUNS > 1 ? 's' : ''}):`);
  console.log(
    table(
      ['measure', 'median', 'each run (s)'],
      MEASURES.map(([key, label, f]) => [label, secs(m[key]), runs.map((r) => f(r).toFixed(1)).join(' ')]),
    ),
  );
  console.log(
    `image: ${sameManifest ? `the same manifest on both sides, ${hostManifest}` : `the host's ${hostManifest}; the head node's not read in every run: compare the bytes fetched`}`,
  );
  console.log(`bytes fetched: from the head node ${mb(fetched.fromHead)}, from the host ${mb(fetched.fromHost)}`);
  const ratio = (name: string, ours: [string, Measure], peer: [string, Measure], better: string) =>
    console.log(
      ratioLine(
        name,
        { label: ours[0], value: secs(m[ours[1]]), n: m[ours[1]] },
        { label: peer[0], value: secs(m[peer[1]]), n: m[peer[1]] },
        better,
      ),
    );
  const costs = 'above 1 is what serving from the emulated head node costs';
  ratio(
    'head node: 3 compute nodes at once vs 1, power-on to the last healthy',
    ['3 nodes', 'threeToLastHealthy'],
    ['1 node', 'oneToHealthy'],
    'lower is better; 3.00x would be one at a time',
  );
  ratio(
    'compute install, head node vs host servers: power-on to healthy',
    ['head node', 'oneToHealthy'],
    ['host', 'fromHostToHealthy'],
    costs,
  );
  ratio(
    'compute install, head node vs host servers: installer install',
    ['head node', 'fromHeadInstall'],
    ['host', 'fromHostInstall'],
    costs,
  );
  const results = writeResults('head-node', {
    runs: RUNS,
    medians: m,
    bytesFetched: fetched,
    image: { hostManifest, sameManifest },
    notes: [
      "the head node's boot server gives the installer its default kernel arguments (console=tty0 console=ttyS0,115200n8); the host lab's adds quiet",
    ],
    perRun: runs,
  });
  console.log(`results: ${results}`);
});
