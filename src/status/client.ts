// The operator's side of an installer's port 6978: TLS with a client certificate, the RPC calls,
// and the remote shell's connection. Every machine's installer serves the same certificate (it is
// baked into the installer image, as in the seed), so besides the host's own name a certificate
// named `installer` that the CA signed is accepted as any installer's.
import type https from 'node:https';
import tls from 'node:tls';
import { INSTALLER_STATUS_PORT } from '../util/ports.ts';
import { readTlsFiles, request } from '../util/request.ts';

export interface OperatorTls {
  ca: string;
  cert: string;
  key: string;
}

/** The name in the shared installer certificate (cradle pki issue server installer). */
export const INSTALLER_CERT_NAME = 'installer';

/** `host`, `host:port` or `[v6]:port` → the https base URL of its port 6978. */
export function installerUrl(address: string): URL {
  const url = new URL(/^https?:\/\//.test(address) ? address : `https://${address}`);
  url.protocol = 'https:';
  if (!url.port) url.port = String(INSTALLER_STATUS_PORT);
  return url;
}

export function operatorTlsOptions(files: OperatorTls): https.RequestOptions {
  return {
    ...readTlsFiles(files),
    checkServerIdentity: (host, cert) => {
      const own = tls.checkServerIdentity(host, cert);
      if (!own) return undefined;
      return tls.checkServerIdentity(INSTALLER_CERT_NAME, cert) ? own : undefined;
    },
  };
}

/** One RPC call; resolves to the parsed JSON answer, or throws the server's detail. */
export async function installerRpc(
  address: string,
  files: OperatorTls,
  method: 'GET' | 'POST',
  path: string,
): Promise<unknown> {
  const url = new URL(path, installerUrl(address));
  const res = await request(url, { method, tlsOptions: operatorTlsOptions(files) });
  let body: { detail?: string } & Record<string, unknown>;
  try {
    body = JSON.parse(res.text);
  } catch {
    throw new Error(`${url.host}: HTTP ${res.status}, not JSON: ${res.text.slice(0, 200)}`);
  }
  if (res.status >= 300) throw new Error(`${url.host}: ${body.detail ?? `HTTP ${res.status}`}`);
  return body;
}
