// The installer image as a hybrid ISO (BIOS and UEFI, CD or USB stick, a BMC's virtual media):
// GRUB from the build host boots the same kernel and initramfs as the network does. A head-node
// ISO also carries kits (kits/*.kit) and, optionally, the answers (cradle/answers.yaml); its first
// menu entry runs `cradle setup` (Kusu's head-node installer) instead of the installer, and the
// kernel command line tells the setup where its answers are, as Kusu's boot arguments did. A
// machine's ISO (machine-iso.ts) carries its configuration files in the initramfs.
import fs from 'node:fs';
import path from 'node:path';
import { FIRST_STAGE, INSTALLER_KERNEL, installerInitrds, SECOND_STAGE } from './installer-files.ts';
import { type MachineFile, machineInitramfs } from './machine-iso.ts';
import { GRUB_SERIAL_CONSOLE } from '../storage/bootloader.ts';
import { run } from '../system/run.ts';

/** The volume label the setup finds its medium by. */
export const HEAD_NODE_ISO_LABEL = 'CRADLE_SETUP';
export const ISO_ANSWERS_PATH = '/cradle/answers.yaml';

export interface MenuEntry {
  title: string;
  kernelArgs: string;
}

/** GRUB's menu: each entry boots /vmlinuz with the image's initrds (installerInitrds), in order. */
export function isoGrubConfig(entries: MenuEntry[], initrds: string[] = [FIRST_STAGE, SECOND_STAGE]): string {
  return [
    ...GRUB_SERIAL_CONSOLE,
    'set timeout=3',
    ...entries.flatMap((e) => [
      `menuentry '${e.title}' {`,
      `\tlinux /vmlinuz ${e.kernelArgs}`.trimEnd(),
      `\tinitrd ${initrds.map((f) => `/${f}`).join(' ')}`,
      '}',
    ]),
    '',
  ].join('\n');
}

export const CONSOLE_ARGS = 'console=tty0 console=ttyS0,115200n8';

/** Writes `iso` from DIR's installer image (vmlinuz and its initrds) and what `extra` adds to its tree. */
async function writeIso(
  dir: string,
  work: string,
  iso: string,
  entries: MenuEntry[],
  extra: (tree: string) => void = () => {},
  volid?: string,
): Promise<string> {
  const tree = path.join(work, 'iso');
  fs.rmSync(tree, { recursive: true, force: true });
  fs.mkdirSync(path.join(tree, 'boot/grub'), { recursive: true });
  const initrds = installerInitrds(dir);
  for (const f of [INSTALLER_KERNEL, ...initrds]) fs.copyFileSync(path.join(dir, f), path.join(tree, f));
  fs.writeFileSync(path.join(tree, 'boot/grub/grub.cfg'), isoGrubConfig(entries, initrds));
  extra(tree);
  const tmp = `${iso}.tmp-${process.pid}`;
  try {
    // grub-mkrescue needs grub-pc-bin and grub-efi-amd64-bin for the two firmware kinds, xorriso and mtools.
    await run('grub-mkrescue', ['--quiet', '-o', tmp, tree, ...(volid ? ['--', '-volid', volid] : [])]);
    fs.renameSync(tmp, iso);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return iso;
}

/** Writes OUT/installer.iso from the installer image in OUT; returns its path. */
export function buildIso(out: string, work: string, kernelArgs = CONSOLE_ARGS): Promise<string> {
  return writeIso(out, work, path.join(out, 'installer.iso'), [{ title: 'Cradle installer', kernelArgs }]);
}

/**
 * Writes `iso` for one machine: the installer image of `dir` whose initramfs also holds the
 * machine's configuration files at /tftpdata, so its installer needs no DHCP and no TFTP.
 */
export function buildMachineIso(
  dir: string,
  work: string,
  iso: string,
  hostname: string,
  files: MachineFile[],
): Promise<string> {
  const staged = path.join(work, 'machine-image');
  fs.rmSync(staged, { recursive: true, force: true });
  fs.mkdirSync(staged, { recursive: true });
  for (const f of [INSTALLER_KERNEL, ...installerInitrds(dir).slice(1)])
    fs.copyFileSync(path.join(dir, f), path.join(staged, f));
  fs.writeFileSync(
    path.join(staged, FIRST_STAGE),
    machineInitramfs(fs.readFileSync(path.join(dir, FIRST_STAGE)), files),
  );
  return writeIso(staged, work, iso, [{ title: `Cradle installer for ${hostname}`, kernelArgs: CONSOLE_ARGS }]);
}

export interface HeadNodeIsoOptions {
  /** Kit files carried on the ISO (the Cradle kit and at least one OS kit). */
  kits: string[];
  /** An answer file carried as /cradle/answers.yaml and named on the kernel command line. */
  answers?: string;
  /** More kernel arguments for the setup entry, e.g. cradle.wipe=yes, cradle.reboot=no. */
  setupArgs?: string;
}

/**
 * The head-node ISO's menu: the setup first, then the plain installer. The setup's kernel keeps
 * to errors on the console (loglevel=3): a late driver message on ttyS0 would land in the middle
 * of the wizard's questions.
 */
export function headNodeIsoEntries(o: Pick<HeadNodeIsoOptions, 'answers' | 'setupArgs'>): MenuEntry[] {
  const setupArgs = [
    CONSOLE_ARGS,
    'loglevel=3',
    'cradle.setup',
    o.answers ? `cradle.answers=${ISO_ANSWERS_PATH}` : '',
    o.setupArgs ?? '',
  ]
    .filter(Boolean)
    .join(' ');
  return [
    { title: 'Cradle head-node setup', kernelArgs: setupArgs },
    { title: 'Cradle installer', kernelArgs: CONSOLE_ARGS },
  ];
}

/** Writes `iso`: the installer image of `dir` with kits (and answers) and a setup menu entry first. */
export function buildHeadNodeIso(dir: string, work: string, iso: string, o: HeadNodeIsoOptions): Promise<string> {
  return writeIso(
    dir,
    work,
    iso,
    headNodeIsoEntries(o),
    (tree) => {
      fs.mkdirSync(path.join(tree, 'kits'));
      for (const k of o.kits) fs.copyFileSync(k, path.join(tree, 'kits', path.basename(k)));
      if (o.answers) {
        fs.mkdirSync(path.join(tree, path.dirname(ISO_ANSWERS_PATH)), { recursive: true });
        fs.copyFileSync(o.answers, path.join(tree, ISO_ANSWERS_PATH));
      }
    },
    HEAD_NODE_ISO_LABEL,
  );
}
