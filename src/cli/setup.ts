// `cradle setup`: the head-node installer (Kusu's), from an answer file (docs/setup.md).
// `setup facts` prints this machine's disks and NICs; `setup validate` checks an answer file
// offline, and against a machine's facts shows what its filters select; `setup --dry-run` prints
// the whole plan. Argument parsing and printing; the rules live in src/setup.
import fs from 'node:fs';
import path from 'node:path';
import { type Command, Option } from 'commander';
import type { Answers } from '../setup/answers.ts';
import type { MachineFacts } from '../setup/facts.ts';
import type { SetupPlan } from '../setup/plan.ts';

interface SetupFlags {
  answers?: string;
  wizard?: boolean;
  saveAnswers?: string;
  kits?: string;
  answersFingerprint?: string;
  machine?: string;
  media?: string;
  dryRun?: boolean;
  kickstart?: boolean;
  network?: 'dhcp';
}

let networkUp: Promise<unknown> | undefined;

/** With --network dhcp (the ISO's init gives it): the network, once, before the first fetch. */
async function networkToFetch(o: SetupFlags): Promise<void> {
  if (o.network !== 'dhcp') return;
  networkUp ??= (async () => {
    const { Executor } = await import('../system/executor.ts');
    const { networkForFetching } = await import('../setup/live-network.ts');
    const log = (line: string) => console.log(`cradle setup: ${line}`);
    return networkForFetching({ exec: new Executor({ dryRun: false, log }), log });
  })();
  // A failure is not kept: a cable plugged in meanwhile gets its chance at the next fetch.
  await networkUp.catch((err: Error) => {
    networkUp = undefined;
    throw err;
  });
}

async function factsFor(machine: string | undefined, media: string | undefined): Promise<MachineFacts> {
  const { parseFacts, readFacts } = await import('../setup/facts.ts');
  return machine ? parseFacts(fs.readFileSync(machine, 'utf8'), machine) : readFacts({ media });
}

/**
 * The answers: the file or URL given, else where the kernel command line says, else none; canned
 * settings fill gaps. Partial answers are completed by the wizard on the terminal.
 */
async function loadAnswers(
  o: SetupFlags,
): Promise<{ answers: Partial<Answers>; from?: string; wipe: boolean; dryRun: boolean }> {
  const { parseAnswers } = await import('../setup/answers.ts');
  const { parseAnswersLocation, readAnswers } = await import('../setup/source.ts');
  const { setupBootArgs } = await import('../setup/cmdline.ts');
  const boot = setupBootArgs(fs.existsSync('/proc/cmdline') ? fs.readFileSync('/proc/cmdline', 'utf8') : '');
  const where = o.answers ?? boot.answers;
  if (!where) return { answers: { cradleSetup: 1, ...boot.canned }, wipe: boot.wipe, dryRun: boot.dryRun };
  const loc = parseAnswersLocation(where, o.answersFingerprint ?? (o.answers ? undefined : boot.fingerprint));
  if (loc.kind === 'url') await networkToFetch(o);
  const { text, from } = await readAnswers(loc, { media: o.media });
  return { answers: { ...boot.canned, ...parseAnswers(text, from) }, from, wipe: boot.wipe, dryRun: boot.dryRun };
}

/** Kusu's wizard for what the answers leave out; its confirmation is the consent to erase. */
async function askTheRest(o: SetupFlags, prefill: Partial<Answers>, facts: MachineFacts): Promise<Answers> {
  const { missing } = await import('../setup/answers.ts');
  const gaps = missing(prefill as Answers);
  if (!process.stdin.isTTY)
    throw new Error(
      `the answers leave out ${gaps.join(', ')} and there is no terminal to ask them on: add them to the answer file`,
    );
  const { runWizard } = await import('../setup/wizard/wizard.ts');
  const kitsDir = o.kits ?? (o.media ? path.join(o.media, 'kits') : undefined);
  const { lookUpKitUrl } = await import('../setup/wizard/kits.ts');
  // A kit typed in as a URL on the ISO: the network comes up for it (and stays for the install).
  const lookUpUrl = (url: string, fingerprint?: string) =>
    networkToFetch(o).then(
      () => lookUpKitUrl(url, fingerprint),
      (err: Error) => ({ source: url, problem: err.message }),
    );
  const r = await runWizard({ input: process.stdin, output: process.stdout, facts, prefill, kitsDir, lookUpUrl });
  // Kusu's exit statuses: 0 done, 1 internal error (its log kept), 2 the user quit.
  if (r.status !== 0 || !r.answers) process.exit(r.status || 1);
  return r.answers;
}

/** Where the new system is mounted while it is written. */
const TARGET = '/target';

/**
 * After the confirmation (Kusu's order): the disks are made and mounted, the new system is
 * written from the medium's kits, GRUB makes it bootable, and everything is unmounted.
 */
async function installOnDisks(plan: SetupPlan, o: SetupFlags): Promise<void> {
  const { Executor } = await import('../system/executor.ts');
  const { applyHeadStorage, headStorageCommands } = await import('../setup/storage.ts');
  const { installHeadSystem } = await import('../setup/new-system.ts');
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(`${new Date().toISOString()} ${line}`);
    console.log(`cradle setup: ${line}`);
  };
  const kitsDir = o.kits ?? (o.media ? path.join(o.media, 'kits') : undefined);
  if (!kitsDir || !fs.existsSync(kitsDir))
    throw new Error('no kits to install from: give --kits DIR (the head-node ISO carries them in kits/)');
  // The kits the answers choose, by name or name/version; an unreadable file is named, not skipped.
  const { findMediaKits } = await import('../setup/wizard/kits.ts');
  const { isFound } = await import('../setup/wizard/model.ts');
  const wanted = plan.kits.fromMedia;
  const kitFiles: string[] = [];
  for (const k of await findMediaKits(kitsDir)) {
    if (!isFound(k)) throw new Error(`${path.join(kitsDir, k.source)}: ${k.problem}`);
    if (wanted === 'all' || wanted.includes(k.name) || wanted.includes(`${k.name}/${k.version}`))
      kitFiles.push(path.join(kitsDir, k.source));
  }
  log(`making the disks: ${plan.wipe.map((d) => d.path).join(', ')}`);
  await applyHeadStorage(new Executor({ dryRun: false, log }), headStorageCommands(plan.storage, TARGET));
  const exec = new Executor({ dryRun: false, log });
  const made = await installHeadSystem({
    plan,
    target: TARGET,
    kitFiles,
    kitUrls: plan.kits.urls,
    log,
    logLines: () => lines,
  });
  const { Depot } = await import('../kit/depot.ts');
  const { makeHeadBootable } = await import('../setup/boot.ts');
  const store = new Depot(path.join(TARGET, 'depot')).store;
  const manifest = await store.readManifest(store.resolve(made.headImage).manifest as never);
  await makeHeadBootable(exec, plan.storage, TARGET, manifest);
  await exec.change('umount', ['--recursive', TARGET]);
  log(`the head node ${plan.hostname} is installed: it boots from ${plan.wipe[0].path}`);
  // The ISO's init restarts the machine when the setup leaves this behind (see initramfs/init.sh).
  if (o.media) fs.writeFileSync(REBOOT_MARKER, `${plan.hostname}\n`);
}

/** Left by a finished install on the ISO: its init then restarts the machine into the head node. */
const REBOOT_MARKER = '/run/cradle/reboot';
/** The answers as used (the replay file, setup/replay.ts), kept in the ISO's live system. */
const LIVE_ANSWERS = '/run/cradle/answers.yaml';

/** Not fatal: --media on a running system by a user who may not write /run is a plan to look at. */
function keepLiveAnswers(replay: string): void {
  try {
    fs.mkdirSync(path.dirname(LIVE_ANSWERS), { recursive: true });
    fs.writeFileSync(LIVE_ANSWERS, replay, { mode: 0o600 });
  } catch (err) {
    console.log(`cradle setup: the answers as used are not kept in ${LIVE_ANSWERS}: ${(err as Error).message}`);
  }
}

export function registerSetupCommands(program: Command): void {
  const setup = program
    .command('setup')
    .description('install a head node (Kusu): from an answer file; --dry-run prints the plan and touches nothing')
    .option('--answers <where>', 'the answer file: a path, an http(s):// URL, or label:NAME (default: cradle.answers=)')
    .option('--answers-fingerprint <sha256>', "pin the answers server's certificate by its SHA-256 fingerprint")
    .option('--machine <facts.json>', "plan for the machine these facts describe ('cradle setup facts'), not this one")
    .option('--media <dir>', 'where the installation medium is mounted (its disk is never wiped)')
    .option('--dry-run', 'print the whole plan; touch nothing')
    .option('--kickstart', 'with --dry-run: print the kickstart it would save as /root/cradle-ks.cfg too')
    .option('--wizard', 'ask every screen, the answers (if any) as defaults')
    .option(
      '--save-answers <file>',
      'write the answers (the password hashed) to this file (with --media: /run/cradle/answers.yaml too)',
    )
    .option('--kits <dir>', "the kits the wizard offers (default: the medium's kits/)")
    .addOption(
      new Option(
        '--network <how>',
        'bring up a network by DHCP before fetching answers or kits by URL (the ISO)',
      ).choices(['dhcp']),
    )
    .action(async (o: SetupFlags) => {
      const loaded = await loadAnswers(o);
      const facts = await factsFor(o.machine, o.media);
      const { missing } = await import('../setup/answers.ts');
      const asked = o.wizard || missing(loaded.answers as Answers).length > 0;
      const answers = asked ? await askTheRest(o, loaded.answers, facts) : (loaded.answers as Answers);
      const { planSetup, describePlan } = await import('../setup/plan.ts');
      const plan = planSetup(answers, facts);
      // The replay file, once the answers are complete: from the medium always in the live system
      // too (stopped at the confirmation or not), for whoever looks at its shell or replays it.
      const { replayText } = await import('../setup/replay.ts');
      const replay = replayText(plan.answers);
      if (o.saveAnswers) fs.writeFileSync(o.saveAnswers, replay, { mode: 0o600 });
      if (o.media) keepLiveAnswers(replay);
      const wipe = loaded.wipe || asked;
      console.log(`answers from ${asked ? `the wizard${loaded.from ? ` and ${loaded.from}` : ''}` : loaded.from}\n`);
      process.stdout.write(describePlan(plan));
      const { describeCommands, headStorageCommands } = await import('../setup/storage.ts');
      process.stdout.write(
        `\nthe disks are then made with:\n${describeCommands(headStorageCommands(plan.storage, '/target'))}`,
      );
      if (o.kickstart) {
        const { kickstart } = await import('../setup/kickstart.ts');
        process.stdout.write(`\n${kickstart(plan)}`);
      }
      if (o.dryRun || loaded.dryRun)
        return void console.log(
          `\ndry run: nothing was touched${plan.kits.urls.length ? '; the kits by URL were not fetched' : ''}`,
        );
      // Kits by URL: reachable, their pins right, before anything is erased.
      if (plan.kits.urls.length) {
        await networkToFetch(o);
        const { probeKitUrls } = await import('../setup/source.ts');
        await probeKitUrls(plan.kits.urls);
        console.log(`\nkits by URL answer: ${plan.kits.urls.map((u) => u.url).join(', ')}`);
      }
      // Kusu's order: nothing is written before the confirmation. Unattended, the consent to
      // erase is cradle.wipe=yes on the kernel command line; without it the setup stops here.
      if (!wipe)
        return void console.log(
          '\nstopped at the confirmation: without cradle.wipe=yes on the kernel command line no disk is erased unattended; nothing was touched',
        );
      // Planned for another machine's facts: its disk names are not this machine's to erase.
      if (o.machine)
        return void console.log(
          `\nstopped at the confirmation: planned for the machine of ${o.machine} (--machine), not this one; nothing was touched`,
        );
      await installOnDisks(plan, o);
    });

  setup
    .command('validate')
    .description('check an answer file; with --machine, also what its disk and NIC filters select there')
    .argument('<file>')
    .option('--machine <facts.json>', "a machine's facts ('cradle setup facts')")
    .action(async (file: string, o: { machine?: string }) => {
      const { parseAnswers, missing } = await import('../setup/answers.ts');
      const answers = parseAnswers(fs.readFileSync(file, 'utf8'), file);
      const gaps = missing(answers);
      console.log(
        `${file}: valid${gaps.length ? `; the wizard would ask for ${gaps.join(', ')} (a zero-touch install needs them)` : ', complete'}`,
      );
      if (!o.machine) return;
      const { planSetup, describePlan } = await import('../setup/plan.ts');
      process.stdout.write(
        `\non ${o.machine}:\n${describePlan(planSetup(answers, await factsFor(o.machine, undefined)))}`,
      );
    });

  setup
    .command('facts')
    .description("this machine's firmware, disks and NICs as JSON (for 'setup validate --machine')")
    .option('--media <dir>', 'where the installation medium is mounted: its disk is marked as the boot medium')
    .action(async (o: { media?: string }) => {
      console.log(JSON.stringify(await factsFor(undefined, o.media), null, 2));
    });

  setup
    .command('first-boot')
    .description(
      "the head node's first boot (cradle-first-boot.service): its machine database into the local PostgreSQL, checked row for row",
    )
    .option('--root <dir>', "the head node's root", '/')
    .option('--pg-socket <dir>', "PostgreSQL's unix socket directory", '/run/postgresql')
    .option('--pg-port <port>', "PostgreSQL's port (default: the server's own)")
    .option('--pg-database <name>', 'the database to make and fill', 'cradle')
    .action(async (o: { root: string; pgSocket: string; pgPort?: string; pgDatabase: string }) => {
      const { firstBoot, DEBIAN_POSTGRES } = await import('../setup/first-boot.ts');
      const log = (line: string) => console.log(`cradle first boot: ${line}`);
      const { url } = await firstBoot({
        root: o.root,
        postgres: {
          ...DEBIAN_POSTGRES,
          socketDir: o.pgSocket,
          database: o.pgDatabase,
          ...(o.pgPort ? { port: Number(o.pgPort) } : {}),
        },
        log,
      });
      log(`done: the services use ${url}`);
    });
}
