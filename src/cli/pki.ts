// `cradle pki`: a certificate authority for a site, and the server and client certificates the
// installer, the image server and the boot server use for mutual TLS (docs/pki.md).
import type { Command } from 'commander';
import { wholeNumber } from './program.ts';

const collect = (v: string, acc: string[]) => [...acc, v];

const days = (value: string) => wholeNumber(value, '--days', 1, 36500, 'days');

export function registerPkiCommands(program: Command): void {
  const pki = program
    .command('pki')
    .description(
      'certificate authority and certificates for mutual TLS between installer, image server and boot server',
    );
  pki
    .command('init')
    .description(
      'create a certificate authority: DIR/ca.pem (give it to every part) and DIR/ca-key.pem (keep it private)',
    )
    .requiredOption('--dir <dir>', 'where the CA lives')
    .option('--name <name>', 'its common name', 'Cradle CA')
    .option('--days <n>', 'validity', '3650')
    .action(async (o: { dir: string; name: string; days: string }) => {
      const { createCa } = await import('../pki/pki.ts');
      console.log(`wrote ${await createCa(o.dir, { name: o.name, days: days(o.days) })} and its key`);
    });
  pki
    .command('issue')
    .description('issue a certificate signed by the CA: OUT/cert.pem and OUT/key.pem')
    .argument(
      '<kind>',
      "server (TLS server authentication), client (TLS client authentication) or installer (both: the installer image's one certificate, usually named installer)",
    )
    .argument('<name>', "common name: the server's host name, or who the client is")
    .requiredOption('--dir <dir>', 'the CA (cradle pki init)')
    .requiredOption('--out <dir>', 'where to write cert.pem and key.pem, e.g. /etc/ssl/installer')
    .option('--dns <name>', 'a DNS name the server answers to (repeatable; default: NAME)', collect, [] as string[])
    .option('--ip <address>', 'an IP address the server answers on (repeatable)', collect, [] as string[])
    .option('--days <n>', 'validity', '825')
    .option(
      '--methods <list>',
      'the RPC methods it may call, comma-separated Service.Method (Installer.Shell, Installer.Status, Installer.* ...; docs/pki.md); default: every method',
    )
    .action(
      async (
        kind: string,
        name: string,
        o: { dir: string; out: string; dns: string[]; ip: string[]; days: string; methods?: string },
      ) => {
        if (kind !== 'server' && kind !== 'client' && kind !== 'installer')
          throw new Error(`certificate kind '${kind}': use server, client or installer`);
        const { issueCertificate } = await import('../pki/pki.ts');
        const { parseMethodList } = await import('../pki/methods.ts');
        const methods = o.methods === undefined ? undefined : parseMethodList(o.methods);
        const r = await issueCertificate(
          o.dir,
          { kind, name, dns: o.dns, ips: o.ip, days: days(o.days), methods },
          o.out,
        );
        console.log(`wrote ${r.cert} and ${r.key}${methods ? ` (may call ${methods.join(', ')})` : ''}`);
      },
    );
}
