// Certificates for the TLS tests: a CA with a server and clients, and the ones that must be
// refused (expired, signed by another CA, a server certificate offered as a client's). Made with
// Cradle's own `pki` (itself tested against openssl in src/pki/pki.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import { createCa, issueCertificate } from '../src/pki/pki.ts';

export interface Pair {
  cert: string;
  key: string;
}

export interface TestPki {
  ca: string;
  server: Pair;
  /** The installer image's certificate: server and client, named `installer`. */
  installer: Pair;
  operator: Pair;
  expired: Pair;
  foreign: Pair;
  serverAsClient: Pair;
}

/** `serverName` is the server certificate's name; 127.0.0.1 is always in it. */
export async function makeTestPki(dir: string, serverName: string): Promise<TestPki> {
  const caDir = path.join(dir, 'ca');
  const ca = await createCa(caDir, { name: 'Cradle test CA', days: 30 });
  const issue = (
    kind: 'server' | 'client' | 'installer',
    name: string,
    out: string,
    extra: { notAfter?: Date; ips?: string[] } = {},
  ) => issueCertificate(caDir, { kind, name, days: 7, ...extra }, path.join(dir, out));
  const otherCa = path.join(dir, 'other-ca');
  await createCa(otherCa, { name: 'Somebody else', days: 30 });
  return {
    ca,
    server: await issue('server', serverName, 'server', { ips: ['127.0.0.1'] }),
    installer: await issue('installer', 'installer', 'installer'),
    operator: await issue('client', 'alice', 'alice'),
    expired: await issue('client', 'old', 'expired', { notAfter: new Date(Date.now() - 86_400_000) }),
    foreign: await issueCertificate(otherCa, { kind: 'client', name: 'mallory', days: 7 }, path.join(dir, 'mallory')),
    serverAsClient: await issue('server', 'imposter', 'imposter'),
  };
}

/**
 * Just a server certificate for 127.0.0.1 (and its CA under `dir`), as node:tls takes it: for
 * tests of a server's TLS behaviour that need no client certificates.
 */
export async function loopbackServerTls(dir: string): Promise<{ cert: Buffer; key: Buffer }> {
  await createCa(path.join(dir, 'ca'), { name: 'Cradle loopback test CA', days: 2 });
  const pair = await issueCertificate(
    path.join(dir, 'ca'),
    { kind: 'server', name: '127.0.0.1', ips: ['127.0.0.1'], days: 2 },
    path.join(dir, 'server'),
  );
  return { cert: fs.readFileSync(pair.cert), key: fs.readFileSync(pair.key) };
}
