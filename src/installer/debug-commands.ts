// Dominator's small sub-commands for custom workflows and debugging: decode-base64,
// generate-random, dhcp-request, list-drives, kexec-image and load-configuration-from-tftp.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImageServerClient } from '../image/transfer/client.ts';
import type { Digest } from '../image/model/digest.ts';
import type { Entry, Manifest } from '../image/model/manifest.ts';
import { dhcpRace, type DhcpLease } from '../protocols/dhcp/client.ts';
import { writeDhcpLog } from '../protocols/dhcp/log.ts';
import { listDrives, type DriveRoots } from '../storage/drives.ts';
import { Executor } from '../system/executor.ts';
import { run } from '../system/run.ts';
import { formatBytes, table } from '../util/format.ts';
import { listEthernetInterfaces } from './interfaces.ts';
import { fetchOverTftp } from './load-configuration.ts';
import { resolveImage } from './load-image-command.ts';
import { InstallerLog } from './log.ts';
import { runsFromMemory } from './reboot.ts';
import { concatenatedInitrds, FIRST_STAGE, INSTALLER_KERNEL, SECOND_STAGE } from '../initramfs/installer-files.ts';

/** stdin (standard base64, whitespace ignored) decoded to stdout, streaming. */
export async function decodeBase64(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<void> {
  let rest = '';
  for await (const chunk of input) {
    const text = rest + String(chunk).replace(/\s+/g, '');
    const whole = text.length - (text.length % 4);
    if (whole) output.write(Buffer.from(text.slice(0, whole), 'base64'));
    rest = text.slice(whole);
  }
  if (rest) throw new Error(`base64 input ends with ${rest.length} stray characters: it is truncated`);
}

/**
 * Pseudo-random data until the reader stops (a write fails), in 1 MiB blocks: for wiping or
 * testing drives. Not for secrets: one random block is expanded by a cheap generator.
 */
export async function generateRandom(output: NodeJS.WritableStream & { writableNeedDrain?: boolean }): Promise<void> {
  const block = Buffer.allocUnsafe(1024 * 1024);
  const seed = randomBytes(16);
  let s0 = seed.readBigUInt64LE(0) | 1n;
  let s1 = seed.readBigUInt64LE(8);
  const mask = (1n << 64n) - 1n;
  let stopped = false;
  output.on('error', () => (stopped = true));
  while (!stopped) {
    for (let i = 0; i < block.length; i += 8) {
      // xorshift128+
      let x = s0;
      const y = s1;
      s0 = y;
      x = (x ^ (x << 23n)) & mask;
      s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
      block.writeBigUInt64LE((s1 + y) & mask, i);
    }
    if (!output.write(block))
      await new Promise((r) => {
        output.once('drain', r);
        output.once('error', r);
      });
  }
}

/** Dominator's list-drives: the usable drives' names, boot drive first. */
export function listDriveNames(roots: DriveRoots): string[] {
  return listDrives(roots).drives.map((d) => d.name);
}

export function listDrivesTable(roots: DriveRoots): string {
  const { drives, skipped } = listDrives(roots);
  const rows = drives.map((d, i) => [
    d.name,
    formatBytes(d.sizeBytes),
    d.model || '-',
    d.serial || '-',
    d.rotational ? 'hdd' : 'ssd',
    d.busPath,
    i === 0 ? 'boot' : '',
  ]);
  return [
    table(['NAME', 'SIZE', 'MODEL', 'SERIAL', 'KIND', 'BUS', ''], rows),
    ...skipped.map((s) => `skipped ${s}`),
  ].join('\n');
}

/** dhcp-request: the race on every interface as they are (none is raised), logged, nothing configured. */
export async function dhcpRequestCommand(sysfs: string, logDir: string, timeoutMs: number): Promise<DhcpLease> {
  const ifaces = listEthernetInterfaces(sysfs).map((i) => ({ name: i.name, mac: i.mac }));
  if (!ifaces.length) throw new Error(`no Ethernet interface in ${sysfs}/class/net`);
  const lease = await dhcpRace(ifaces, { timeoutMs, log: (l) => console.error(l) });
  console.error(`logged in ${writeDhcpLog(path.join(logDir, 'dhcp'), lease)}`);
  return lease;
}

/** Follows symlinks inside a manifest to the file entry they name. */
type FileEntry = Extract<Entry, { type: 'file' }>;

function resolveFile(manifest: Manifest, wanted: string): FileEntry | undefined {
  const byPath = new Map(manifest.entries.map((e) => [e.path, e]));
  let p = wanted;
  for (let hops = 0; hops < 16; hops++) {
    const e = byPath.get(p);
    if (!e) return undefined;
    if (e.type === 'file') return e;
    if (e.type !== 'symlink') return undefined;
    p = path.posix.normalize(
      e.target.startsWith('/') ? e.target.slice(1) : path.posix.join(path.posix.dirname(p), e.target),
    );
  }
  return undefined;
}

/**
 * kexec-image: boot another installer image's /vmlinuz and /initrd.img straight away, with its
 * /stage2.img after it when it has one (kexec takes one initrd: the two are concatenated).
 */
export async function kexecImage(
  client: ImageServerClient,
  name: string,
  opts: { tftpServer?: string; exec: boolean },
): Promise<string> {
  const record = await resolveImage(client, name);
  const manifest = await client.getManifest(record.manifest as Digest);
  const kernel = resolveFile(manifest, INSTALLER_KERNEL);
  if (!kernel?.digest) throw new Error(`image ${record.name} has no /vmlinuz (a file, or a symlink to one)`);
  const initrds = [FIRST_STAGE, SECOND_STAGE]
    .map((f) => resolveFile(manifest, f))
    .filter((e): e is FileEntry & { digest: string } => !!e?.digest);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-kexec-'));
  const wanted = [kernel, ...initrds];
  const contents = new Map<string, Uint8Array>();
  await client.fetchObjects(
    wanted.map((e) => ({ digest: e.digest as Digest, size: e.size })),
    (digest, content) => void contents.set(digest, content),
  );
  fs.writeFileSync(path.join(dir, INSTALLER_KERNEL), contents.get(kernel.digest)!);
  const initrd = initrds.length ? path.join(dir, FIRST_STAGE) : undefined;
  if (initrd) fs.writeFileSync(initrd, concatenatedInitrds(initrds.map((e) => contents.get(e.digest)!)));
  const append = [
    'console=tty0',
    'console=ttyS0,115200n8',
    ...(opts.tftpServer ? [`tftpserver=${opts.tftpServer}`] : []),
  ].join(' ');
  const args = [
    '--load',
    path.join(dir, INSTALLER_KERNEL),
    `--append=${append}`,
    ...(initrd ? [`--initrd=${initrd}`] : []),
  ];
  if (opts.exec && !runsFromMemory('/proc')) {
    throw new Error(
      'this system runs from a disk: kexec would drop it without a shutdown; pass --no-exec to only load the kernel, then run `systemctl kexec`',
    );
  }
  await run('sync', []);
  await run('kexec', args);
  if (opts.exec) await run('kexec', ['--exec']);
  return `loaded ${record.name}: kexec ${args.join(' ')}`;
}

/**
 * load-configuration-from-tftp: the configuration files from the installer's TFTP server into its
 * TFTP directory, as the daemon fetches them (and random-seed into /dev/urandom). The directory
 * must exist already, as in Dominator's installer: a typo must not make a stray directory. Each
 * file fetched is logged to stderr.
 */
export async function loadConfigurationFromTftp(o: { tftpServer?: string; tftpDirectory: string }): Promise<void> {
  if (!o.tftpServer)
    throw new Error(
      "no TFTP server: pass the installer's --tftp-server-hostname HOST[:PORT] (before the sub-command name: cradle installer --tftp-server-hostname HOST load-configuration-from-tftp)",
    );
  if (!fs.statSync(o.tftpDirectory, { throwIfNoEntry: false })?.isDirectory())
    throw new Error(
      `the TFTP directory ${o.tftpDirectory} does not exist: make it (mkdir -p ${o.tftpDirectory}) or pass the installer's --tftp-directory DIR`,
    );
  const log = new InstallerLog({ stderr: true });
  const exec = new Executor({ dryRun: false, log: (l) => log.info(l) });
  await fetchOverTftp({ exec, log }, o.tftpServer, o.tftpDirectory);
}
