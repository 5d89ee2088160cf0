// `cradle lab`: Cradle's main job on one host (src/lab/lab.ts): servers in a network namespace,
// QEMU machines that PXE-boot, install an OS image and boot into it, with live progress and a
// table at the end.
import { type Command, Option } from 'commander';
import { type HeadLabFlags, headLabAction } from './lab-head.ts';
import { LiveView, labAccelerator, labLog, stopOnSignals } from './lab-view.ts';
import { wholeNumber } from './program.ts';

interface LabFlags {
  dir: string;
  machines: string;
  image: 'demo' | 'tiny';
  firmware: 'bios' | 'uefi';
  nics: string;
  encrypt?: boolean;
  kexec: boolean;
  tls: boolean;
  rebirth?: boolean;
  keepRunning?: boolean;
  timeout: string;
  diskGib: string;
  memoryMib: string;
  accel: 'auto' | 'kvm' | 'tcg';
  installerArgs?: string;
  linkMbit?: string;
}

export function registerLabCommand(program: Command): void {
  program
    .command('lab')
    .description(
      'the whole system on this host: QEMU machines network-boot, install an OS image and boot it (needs root)',
    )
    .option('--dir <dir>', 'lab state: database, image store, disks, console logs', '/var/tmp/cradle-lab')
    .option('--machines <n>', 'how many machines', '2')
    .addOption(
      new Option('--image <which>', 'OS to install: demo (Debian with systemd) or tiny (busybox, for quick runs)')
        .choices(['demo', 'tiny'])
        .default('demo'),
    )
    .addOption(new Option('--firmware <kind>', "the machines' firmware").choices(['bios', 'uefi']).default('bios'))
    .option('--nics <n>', "NICs per machine: 1, or 3 for Dominator's example (management + bonded VLAN trunk)", '1')
    .option('--encrypt', 'encrypt /home and /data (LUKS2)')
    .option('--no-kexec', 'boot the installed system through the firmware and GRUB, not kexec')
    .option(
      '--rebirth',
      'reinstall the machines of the previous run over their installed systems (the object cache at work)',
    )
    .option('--keep-running', 'leave the machines and servers running at the end (Ctrl-C stops them)')
    .option('--timeout <s>', 'give up on machines not done after this many seconds', '1200')
    .option('--disk-gib <n>', 'disk size of each machine (sparse)', '8')
    .option('--memory-mib <n>', 'memory of each machine', '1536')
    .addOption(
      new Option('--accel <kind>', 'auto: KVM only when a smoke boot proves it works')
        .choices(['auto', 'kvm', 'tcg'])
        .default('auto'),
    )
    .option(
      '--link-mbit <n>',
      'limit the link between the servers and the machines to N Mbit/s each way, shared by all machines (tc)',
    )
    .option('--installer-args <args>', 'extra kernel arguments for the installer, e.g. cradle.failure-wait=30')
    .option('--no-tls', "plain HTTP between the parts (default: mutual TLS with the lab CA, in the cache's lab-pki)")
    .option(
      '--head-node',
      'a cluster from one ISO: a head node installs itself from the head-node ISO, then births --compute N machines from its own servers',
    )
    .option('--compute <n>', 'with --head-node: compute nodes on its provisioning network', '2')
    .option(
      '--answers <file>',
      "with --head-node: the head node's answer file (default: the lab's, kept in the lab directory)",
    )
    .option('--interactive', "with --head-node: answer the wizard yourself on the head node's serial console")
    .option('--dashboard-port <port>', "with --head-node: the head node's dashboard on 127.0.0.1 at this port", '16977')
    .action(async (f: LabFlags & HeadLabFlags & { headNode?: boolean }, cmd: Command) => {
      if (process.geteuid?.() !== 0)
        throw new Error('the lab needs root: it creates a network namespace, tap devices and runs QEMU');
      if (f.headNode && f.linkMbit)
        throw new Error("--link-mbit is not for --head-node: it shapes the link to the plain lab's own servers");
      if (f.headNode) return headLabAction(f, cmd);
      for (const o of ['compute', 'answers', 'interactive', 'dashboardPort'])
        if (cmd.getOptionValueSource(o) === 'cli')
          throw new Error(`--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} goes with --head-node`);
      const { Lab, LAB_DEFAULTS, runLab } = await import('../lab/lab.ts');
      const { liveLine, stageOf, summaryTable } = await import('../lab/report.ts');
      const nics = wholeNumber(f.nics, '--nics', 1, 3);
      if (nics === 2)
        throw new Error(
          "--nics takes 1 or 3: Dominator's installer bonds the trunk only with two trunk NICs besides the management one",
        );
      const accel = await labAccelerator(f.accel);
      const lab = new Lab({
        ...LAB_DEFAULTS,
        dir: f.dir,
        machines: wholeNumber(f.machines, '--machines', 1, 32),
        image: f.image,
        firmware: f.firmware,
        nics,
        diskGiB: wholeNumber(f.diskGib, '--disk-gib', 4, 1024),
        memoryMiB: wholeNumber(f.memoryMib, '--memory-mib', 768, 65536),
        kexec: f.kexec,
        encrypt: Boolean(f.encrypt),
        tls: f.tls,
        ...(f.installerArgs ? { installerArgs: f.installerArgs } : {}),
        ...(f.linkMbit ? { linkMbit: wholeNumber(f.linkMbit, '--link-mbit', 1, 100_000) } : {}),
        log: labLog,
      });
      stopOnSignals(() => lab.destroy());
      const view = new LiveView();
      try {
        const timelines = await runLab(lab, {
          rebirth: Boolean(f.rebirth),
          timeoutSeconds: wholeNumber(f.timeout, '--timeout', 10, 86400),
          accel,
          onTick: (ts) =>
            view.show(ts.map((t) => ({ host: t.hostname, stage: stageOf(t), line: liveLine(t, Date.now()) }))),
        });
        console.log(`\n${summaryTable(timelines)}\n`);
        console.log(`console logs, server logs: ${lab.logs}`);
        if (f.keepRunning) {
          labLog('machines and servers keep running; Ctrl-C stops them');
          await new Promise(() => {});
        }
        if (!timelines.every((t) => t.state === 'healthy')) process.exitCode = 1;
      } finally {
        if (!f.keepRunning) await lab.destroy();
      }
    });
}
