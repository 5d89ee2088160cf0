// What `--dry-run` prints: the whole plan, from facts read without changing anything. Each drive
// to be wiped with what it holds now, every partition and file system with its encryption, where
// the image's objects would come from, which root each storage program runs from, and every command
// a real run would execute.
import { describeContents } from '../storage/contents.ts';
import { describeDrive } from '../storage/drives.ts';
import { renderCrypttab, renderFstab } from '../storage/fstab.ts';
import { findProgram, manifestLstat, toolPrograms } from '../storage/tools-root.ts';
import { formatBytes } from '../util/format.ts';
import type { Images, InstallPlan } from './plan-install.ts';

export interface CacheMeasure {
  objects: number;
  bytes: number;
  totalObjects: number;
  totalBytes: number;
  /** Where cached objects were looked for. */
  sources: string[];
}

/** What a dry run found: the images, the plan, where objects would come from. */
export interface DryRunFacts {
  images?: Pick<Images, 'image' | 'tools'>;
  plan?: InstallPlan;
  useKexec: boolean;
  cache?: CacheMeasure;
}

/** The plan as a dry run prints it, with `skipped`: the commands and changes a real run would make. */
export function renderDryRun(facts: DryRunFacts, skipped: string[]): string {
  const out: string[] = ['Dry run: nothing was changed. A real run would do this:', ''];
  const { images, cache } = facts;
  if (images)
    out.push(`Image: ${images.image.record.name}${images.tools ? ` (tools image ${images.tools.record.name})` : ''}`);
  const plan = facts.plan?.storage;
  if (plan && facts.plan) {
    out.push(
      `Firmware: ${plan.firmware === 'uefi' ? 'UEFI' : 'BIOS'}; partition tables: GPT`,
      '',
      'Drives to be WIPED:',
    );
    for (const d of facts.plan.drives) {
      const contents = facts.plan.contents.get(d.path);
      out.push(`  ${describeDrive(d)}`, `      holds now: ${contents ? describeContents(contents) : 'unknown'}`);
    }
    for (const drive of plan.drives) {
      out.push('', `Partitions of ${drive.device}:`);
      for (const p of drive.partitions) {
        const f = plan.fileSystems.find((x) => x.partition.endsWith(`${p.number}`) && x.drive === drive.device);
        const what = f
          ? `${f.type} ${f.mountPoint} label '${f.label}' UUID ${f.uuid}${f.luks ? `, encrypted (LUKS2 ${f.luks.name})` : ''}${p.contentBytes ? `, ${formatBytes(p.contentBytes)} of the image` : ''}${f.mountWhileInstalling ? '' : ', made while the image installs'}`
          : 'BIOS boot partition (GRUB core)';
        out.push(`  #${p.number} ${formatBytes(p.sizeBytes).padStart(10)}  ${what}`);
      }
    }
    const boot = facts.plan.boot;
    out.push(
      '',
      `Boot: ${facts.useKexec ? 'kexec into ' : 'GRUB, '}${boot.kernel}${boot.initrd ? ` with ${boot.initrd}` : ''}`,
    );
    out.push('', ...describeTools(facts));
    const made = plan.fileSystems.map((f) => ({
      mountPoint: f.mountPoint,
      type: f.type,
      uuid: f.uuid,
      discard: false,
      ...(f.luks ? { luks: { uuid: f.luks.uuid, name: f.luks.name } } : {}),
    }));
    out.push('', '/etc/fstab:', ...indent(renderFstab(made)));
    if (plan.encrypt)
      out.push('/etc/crypttab (key: 512 random bits in /etc/crypt.key):', ...indent(renderCrypttab(made)));
  }
  if (cache) {
    const net = { objects: cache.totalObjects - cache.objects, bytes: cache.totalBytes - cache.bytes };
    out.push(
      `Objects: ${cache.totalObjects} (${formatBytes(cache.totalBytes)}):`,
      `  ${cache.objects} (${formatBytes(cache.bytes)}) from the local cache${cache.sources.length ? ` (${cache.sources.join(', ')})` : ''}`,
      `  ${net.objects} (${formatBytes(net.bytes)}) from the image server`,
    );
  }
  if (skipped.length) out.push('', 'Commands and changes:', ...skipped.map((s) => `  ${s}`));
  return `${out.join('\n')}\n`;
}

/**
 * Which root the storage programs run from: the tools image's (or, without one, the target
 * image's) programs chrooted in it at --tmp-root, each the installer's own where it lacks one.
 */
export function describeTools(facts: DryRunFacts, dirs?: string[]): string[] {
  const { images, plan: install } = facts;
  if (!images || !install) return [];
  const image = images.tools ?? images.image;
  const what = images.tools ? `the tools image ${image.record.name}` : `the image ${image.record.name}`;
  const lstat = manifestLstat(image.manifest);
  const programs = toolPrograms(install.storage);
  const lacking = programs.filter((p) => !findProgram(lstat, p, dirs));
  const from = programs.filter((p) => !lacking.includes(p));
  return [
    `Programs: partitioning, encryption and file systems run chrooted in ${what}, unpacked in memory at --tmp-root:`,
    `  from it: ${from.join(', ') || 'none'}`,
    ...(lacking.length ? [`  the installer's own (${what} lacks them): ${lacking.join(', ')}`] : []),
    `  the installer's own: ${['blkdiscard', 'mount', ...(facts.useKexec ? ['kexec --load'] : [])].join(', ')}${install.grubInstall ? "; grub-install: the installed system's, chrooted in it" : ''}`,
  ];
}

function indent(text: string): string[] {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`);
}
