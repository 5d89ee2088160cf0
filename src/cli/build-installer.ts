// `cradle build-installer`: the installer image (kernel + initramfs, optionally an ISO).
import fs from 'node:fs';
import type { Command } from 'commander';
import { formatBytes } from '../util/format.ts';
import type { BuildReport } from '../initramfs/build.ts';
import { tlsTriple } from './program.ts';

export function sizeTable(r: BuildReport): string {
  const rows = Object.entries(r.parts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const width = Math.max(...rows.map(([k]) => k.length), 'initramfs, uncompressed'.length);
  const line = (label: string, n: number, share?: number) =>
    `  ${label.padEnd(width)}  ${formatBytes(n).padStart(10)}${share === undefined ? '' : `  ${(share * 100).toFixed(1).padStart(5)}%`}`;
  return [
    ...rows.map(([k, n]) => line(k, n, n / r.uncompressedBytes)),
    line('initramfs, uncompressed', r.uncompressedBytes),
    line(`initramfs, ${r.compression === 'zstd' ? 'zstd' : 'as written'}`, r.initrdBytes),
    line('kernel', r.kernelBytes),
  ].join('\n');
}

/** A line of Dominator's flag file: `name=value` (a leading `--` is accepted and dropped). */
export function flagLine(flag: string): string {
  const line = flag.replace(/^--?/, '');
  if (!/^[A-Za-z][A-Za-z0-9-]*(=.*)?$/.test(line))
    throw new Error(
      `--flag takes NAME=VALUE with an installer flag's name (e.g. image-server-hostname=10.0.0.1), not '${flag}'`,
    );
  return line;
}

export function registerBuildInstallerCommand(program: Command): void {
  program
    .command('build-installer')
    .description('build the installer image: kernel and initramfs to boot over the network (and an ISO)')
    .requiredOption('--out <dir>', 'where to write vmlinuz, initrd.img, build-info.json (and installer.iso)')
    .option('--kernel <file>', 'Debian kernel (vmlinuz-VERSION) whose modules to use (default: the newest in /boot)')
    .option('--compression <kind>', 'initramfs compression: zstd, or none (faster to boot under emulation)', 'zstd')
    .option(
      '--tftpdata <dir>',
      'pre-inject these configuration files (config.json, storage-layout.json, …) as /tftpdata',
    )
    .option(
      '--flag <name=value...>',
      'installer flags for /etc/installer/flags.default, e.g. --flag image-server-hostname=10.0.0.1',
    )
    .option('--iso', 'also write installer.iso (BIOS and UEFI, for USB, CD or BMC virtual media)')
    .option('--tls-ca <file>', "CA whose client certificates may use the installer's RPC and shell: /etc/ssl/CA.pem")
    .option(
      '--tls-cert <file>',
      "the installer's certificate (cradle pki issue installer installer): /etc/ssl/installer/cert.pem",
    )
    .option('--tls-key <file>', 'its key: /etc/ssl/installer/key.pem')
    .action(
      async (o: {
        out: string;
        kernel?: string;
        compression: string;
        tftpdata?: string;
        flag?: string[];
        iso?: boolean;
        tlsCa?: string;
        tlsCert?: string;
        tlsKey?: string;
      }) => {
        const tls = tlsTriple(o, 'an installer whose status page is read-only (no RPC, no remote shell)');
        for (const f of [o.tlsCa, o.tlsCert, o.tlsKey])
          if (f && !fs.existsSync(f)) throw new Error(`${f}: no such file (cradle pki, docs/pki.md)`);
        if (o.compression !== 'zstd' && o.compression !== 'none')
          throw new Error(`--compression takes zstd or none, not '${o.compression}'`);
        const { buildInstallerImage } = await import('../initramfs/build.ts');
        const started = performance.now();
        const flags = (o.flag ?? []).map(flagLine);
        const r = await buildInstallerImage({
          out: o.out,
          kernel: o.kernel,
          compression: o.compression,
          tftpdata: o.tftpdata,
          flags,
          iso: o.iso,
          tls,
        });
        console.log(
          `installer image for kernel ${r.kernelVersion}: ${r.files} files, ${r.modules.length} modules, built in ${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
        console.log(sizeTable(r));
        console.log(`wrote ${r.kernel}, ${r.initrd}${r.iso ? `, ${r.iso}` : ''}`);
      },
    );
}
