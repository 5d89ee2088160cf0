// `cradle lab --head-node`: a cluster from one ISO (src/lab/head-lab.ts). A QEMU head node installs
// itself from the head-node ISO, restarts into its LVM root, moves its database into PostgreSQL and
// serves; then compute nodes network-boot from it alone and install its compute node group's image.
// Live lines for the head node and each compute node, a table of each at the end.
import type { Command } from 'commander';
import { LiveView, labAccelerator, labLog, stopOnSignals } from './lab-view.ts';
import { wholeNumber } from './program.ts';

export interface HeadLabFlags {
  dir: string;
  compute: string;
  answers?: string;
  interactive?: boolean;
  dashboardPort: string;
  firmware: 'bios' | 'uefi';
  rebirth?: boolean;
  keepRunning?: boolean;
  timeout: string;
  diskGib: string;
  memoryMib: string;
  accel: 'auto' | 'kvm' | 'tcg';
}

/** The lab's options that mean nothing for a head node's cluster, and why. */
const NOT_FOR_HEAD_NODE: Record<string, string> = {
  machines: 'give --compute N: the head node births the compute nodes',
  image: "the compute nodes install the head node's compute node group (its OS kit)",
  nics: 'the head node has a public and a provisioning NIC, compute nodes one',
  encrypt: "the compute nodes take their node group's layout",
  kexec: "the compute nodes take their node group's installer flags",
  tls: 'a head node always serves with mutual TLS, its own CA',
  installerArgs: "the head node's boot server gives the installer its arguments",
};

const HEAD_LAB_DIR = '/var/tmp/cradle-head-lab';

export async function headLabAction(f: HeadLabFlags, cmd: Command): Promise<void> {
  for (const [option, why] of Object.entries(NOT_FOR_HEAD_NODE))
    if (cmd.getOptionValueSource(option) === 'cli')
      throw new Error(`--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is not for --head-node: ${why}`);
  if (f.interactive && (f.answers || f.rebirth))
    throw new Error('--interactive: the wizard writes the answers; it goes with neither --answers nor --rebirth');
  if (f.rebirth && f.answers)
    throw new Error('--rebirth starts the installed head node from its disks: its answers were given in the first run');
  const { HeadLab, HEAD_LAB_DEFAULTS } = await import('../lab/head-lab.ts');
  const { runHeadLab } = await import('../lab/head-lab-run.ts');
  const { headDone, headLiveLine, headStage, headSummaryTable, liveLine, stageOf, summaryTable } = await import(
    '../lab/report.ts'
  );
  const accel = await labAccelerator(f.accel);
  const lab = new HeadLab({
    ...HEAD_LAB_DEFAULTS,
    dir: cmd.getOptionValueSource('dir') === 'default' ? HEAD_LAB_DIR : f.dir,
    compute: wholeNumber(f.compute, '--compute', 0, 20),
    firmware: f.firmware,
    rebirth: Boolean(f.rebirth),
    interactive: Boolean(f.interactive),
    ...(f.answers ? { answers: f.answers, answersOverHttps: true } : {}),
    computeDiskGiB: wholeNumber(f.diskGib, '--disk-gib', 4, 1024),
    ...(cmd.getOptionValueSource('memoryMib') === 'cli'
      ? { computeMemoryMiB: wholeNumber(f.memoryMib, '--memory-mib', 768, 65536) }
      : {}),
    accel,
    log: labLog,
  });
  stopOnSignals(() => lab.destroy());
  const view = new LiveView();
  let reported = false;
  const run = await runHeadLab(lab, {
    timeoutSeconds: wholeNumber(f.timeout, '--timeout', 10, 86400),
    dashboardPort: wholeNumber(f.dashboardPort, '--dashboard-port', 0, 65535),
    keepRunning: Boolean(f.keepRunning),
    log: (line) => view.log(line),
    ...(f.interactive
      ? {
          attach: async (head, timeline) => {
            view.log("the head node's console is yours: answer the wizard; Ctrl-] hands it back to the live view");
            view.paused = true;
            const installed = new Promise<void>((resolve) => {
              const stopWatching = head.onData(() => {
                if (timeline.installedAt !== undefined || timeline.problem) {
                  stopWatching();
                  resolve();
                }
              });
            });
            await head.attach(process.stdin, process.stdout, { until: installed });
            view.paused = false;
            console.log();
          },
        }
      : {}),
    onTick: ({ head, compute }) =>
      view.show([
        { host: head.hostname, stage: headStage(head), line: headLiveLine(head, Date.now()) },
        ...compute.map((t) => ({ host: t.hostname, stage: stageOf(t), line: liveLine(t, Date.now()) })),
      ]),
    onDone: (r) => report(r),
  });
  if (!f.keepRunning && headDone(run.head)) report(run);
  if (run.head.servingAt === undefined || !run.compute.every((t) => t.state === 'healthy')) process.exitCode = 1;

  function report(r: Awaited<ReturnType<typeof runHeadLab>>): void {
    if (reported) return;
    reported = true;
    console.log(`\n${headSummaryTable(r.head)}\n`);
    if (r.compute.length) console.log(`${summaryTable(r.compute)}\n`);
    console.log(`console logs: ${lab.logs}; the head node's root password: ${lab.passwordFile}`);
  }
}
