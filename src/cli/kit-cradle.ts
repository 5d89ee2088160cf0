// `cradle kit build-cradle`: the Cradle kit, built from this source tree (src/kit/cradle-kit.ts).
import type { Command } from 'commander';
import { formatBytes } from '../util/format.ts';

export function registerBuildCradle(kit: Command): void {
  kit
    .command('build-cradle')
    .description(
      'build the Cradle kit: the cradle command, its Node runtime and the installer image, for the head node',
    )
    .requiredOption('--out <file>', 'the kit file to write')
    .option('--version <version>', "its version (default: this source tree's)")
    .option('--kernel <file>', "the installer image's kernel (default: the newest /boot/vmlinuz-*)")
    .option('--sign-cert <file>', 'sign with this certificate (issued by the site CA, cradle pki)')
    .option('--sign-key <file>', 'the key of --sign-cert')
    .action(async (o: { out: string; version?: string; kernel?: string; signCert?: string; signKey?: string }) => {
      if (!!o.signCert !== !!o.signKey) throw new Error('--sign-cert and --sign-key go together');
      const { buildCradleKit } = await import('../kit/cradle-kit.ts');
      const built = await buildCradleKit({
        out: o.out,
        version: o.version,
        kernel: o.kernel,
        sign: o.signCert ? { cert: o.signCert, key: o.signKey! } : undefined,
        log: (l) => console.error(l),
      });
      console.log(`wrote ${o.out}: kit ${built.kit.name}/${built.kit.version} ${built.digest}`);
      console.log(`  ${built.objects} objects, ${formatBytes(built.bytes)}`);
    });
}
