// The status port's TLS, from the installer's options: its certificate files (Dominator's
// /etc/ssl/installer/{cert,key}.pem) with the installer's CA and the identity CA as the clients'
// CAs; or, when it has no certificate and -generateMissingWebcert asks for it, a self-signed one
// made in memory now, its fingerprint logged for clients to pin. Neither: plain HTTP, read-only.
import type { ClientTls } from '../image/transfer/client.ts';
import type { StatusOptions } from '../installer/context.ts';
import type { InstallerLog } from '../installer/log.ts';
import { readPem } from '../util/request.ts';

export interface StatusTls {
  /** The installer's certificate and key (PEM): its files', or made in memory (pki/self-signed.ts). */
  cert: Buffer | string;
  key: Buffer | string;
  /** The installer's CA file: its client certificates call the methods they name (every one, naming none). */
  ca?: string;
  /** The identity CA file (Dominator's -identityCAfile): its certificates may read, never act. */
  identityCa?: string;
}

export async function statusTls(
  files: ClientTls,
  status: Pick<StatusOptions, 'identityCa' | 'generateMissingCert'>,
  log: InstallerLog,
): Promise<{ tls?: StatusTls; summary: string }> {
  const { ca, cert, key } = files;
  const { identityCa } = status;
  const clients = [
    ca && `RPC and shell for clients of ${ca}`,
    identityCa && `status and logs for those of the identity CA ${identityCa}`,
  ]
    .filter(Boolean)
    .join('; ');
  if (cert && key) {
    if (!ca && !identityCa)
      return { summary: `read-only: a certificate (${cert}) but no CA for client certificates, so no RPC or shell` };
    return {
      tls: { cert: readPem(cert, 'the server certificate'), key: readPem(key, 'the server key'), ca, identityCa },
      summary: `https too; ${clients}`,
    };
  }
  if (!status.generateMissingCert)
    return { summary: `read-only: no ${ca ?? 'CA'}, installer certificate and key, so no RPC or shell` };
  const { generateSelfSignedServer, GENERATED_CERT_NAME } = await import('../pki/self-signed.ts');
  const made = await generateSelfSignedServer();
  log.info(
    `no installer certificate: serving a generated self-signed ${made.algorithm} certificate for ${GENERATED_CERT_NAME} (in memory only), sha256 ${made.fingerprint}`,
  );
  return {
    tls: { cert: made.cert, key: made.key, ca, identityCa },
    summary: `https too, with the generated certificate sha256 ${made.fingerprint}; ${clients || 'no CA for client certificates, so no RPC or shell'}`,
  };
}
