// What `--dry-run` prints: the whole plan, from facts read without changing anything. Each drive
// to be wiped with what it holds now, every partition and file system with its encryption, where
// the image's objects would come from, and every command a real run would execute.
import { describeContents } from '../storage/contents.ts';
import { describeDrive } from '../storage/drives.ts';
import { renderCrypttab, renderFstab } from '../storage/fstab.ts';
import { formatBytes } from '../util/format.ts';
import type { InstallContext } from './context.ts';

export interface CacheMeasure {
  objects: number;
  bytes: number;
  totalObjects: number;
  totalBytes: number;
  /** Where cached objects were looked for. */
  sources: string[];
}

export function renderDryRun(ctx: InstallContext, cache: CacheMeasure | undefined): string {
  const { facts } = ctx;
  const out: string[] = ['Dry run: nothing was changed. A real run would do this:', ''];
  const image = facts.image;
  if (image) out.push(`Image: ${image.record.name}${facts.tools ? ` (tools image ${facts.tools.record.name})` : ''}`);
  const plan = facts.plan;
  if (plan) {
    out.push(
      `Firmware: ${plan.firmware === 'uefi' ? 'UEFI' : 'BIOS'}; partition tables: GPT`,
      '',
      'Drives to be WIPED:',
    );
    for (const d of facts.drives ?? []) {
      const contents = facts.contents?.get(d.path);
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
    if (facts.boot)
      out.push(
        '',
        `Boot: ${facts.config?.layout?.UseKexec ? 'kexec into ' : 'GRUB, '}${facts.boot.kernel}${facts.boot.initrd ? ` with ${facts.boot.initrd}` : ''}`,
      );
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
  if (ctx.exec.skipped.length) out.push('', 'Commands and changes:', ...ctx.exec.skipped.map((s) => `  ${s}`));
  return `${out.join('\n')}\n`;
}

function indent(text: string): string[] {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`);
}
