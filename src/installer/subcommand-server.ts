// Where `cradle installer`'s sub-commands (list-images, load-image, kexec-image) find the image
// server and with which identity, as Dominator's installer does: the server its configuration names
// (<tftpDirectory>/imageserver, HOST[:PORT], port 6971 when none), unless a flag or the
// environment names another; the installer's own certificates (/etc/ssl) when they exist.
import fs from 'node:fs';
import path from 'node:path';
import type { ClientTls } from '../image/transfer/client.ts';
import { SEED_TLS } from './context.ts';

export interface ImageServerSources {
  /** The sub-command's --imageserver. */
  flag?: string;
  /** CRADLE_IMAGESERVER. */
  env?: string;
  /** The installer's own --image-server-hostname (Dominator's -imageServerHostname). */
  installerFlag?: string;
  /** The installer's --tftp-directory: its `imageserver` file is the default. */
  tftpDirectory: string;
}

/** The image server's address and what named it (for messages). */
export function subcommandImageServer(s: ImageServerSources): { address: string; from: string } {
  if (s.flag) return { address: s.flag, from: '--imageserver' };
  if (s.env) return { address: s.env, from: 'CRADLE_IMAGESERVER' };
  if (s.installerFlag) return { address: s.installerFlag, from: '--image-server-hostname' };
  const file = path.join(s.tftpDirectory, 'imageserver');
  const fix =
    "pass --imageserver HOST[:PORT] (or set CRADLE_IMAGESERVER), or fetch this machine's configuration first: cradle installer --tftp-server-hostname HOST load-configuration-from-tftp";
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new Error(`no image server: ${file} does not exist; ${fix}`);
  }
  const address = text.trim();
  if (!address) throw new Error(`no image server: ${file} is empty (it should hold HOST[:PORT]); ${fix}`);
  if (/\s/.test(address)) throw new Error(`${file} should hold one HOST[:PORT], not '${address}'; ${fix}`);
  return { address, from: file };
}

/**
 * The client identity: files named on the command line (which must exist), else Dominator's
 * /etc/ssl/CA.pem and /etc/ssl/installer/{cert,key}.pem where they exist. The key goes with the
 * certificate.
 */
export function subcommandTls(given: ClientTls, seed: Required<ClientTls> = SEED_TLS): ClientTls {
  const pick = (file: string | undefined, seedFile: string, flag: string) => {
    if (file && !fs.existsSync(file))
      throw new Error(`${flag} ${file}: no such file (make one with 'cradle pki', docs/pki.md)`);
    return file ?? (fs.existsSync(seedFile) ? seedFile : undefined);
  };
  const tls = {
    ca: pick(given.ca, seed.ca, '--tls-ca'),
    cert: pick(given.cert, seed.cert, '--tls-cert'),
    key: pick(given.key, seed.key, '--tls-key'),
  };
  if (!!tls.cert !== !!tls.key)
    throw new Error(
      `the installer certificate and key go together: found only ${tls.cert ?? tls.key} (pass --tls-cert and --tls-key)`,
    );
  return tls;
}
