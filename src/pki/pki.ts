// Cradle's certificates: one certificate authority per site signs the servers' certificates (the
// installer's status and RPC port, the image server, the boot server) and the client certificates
// that RPC, the remote shell and the servers require. ECDSA P-256 with SHA-256, made with
// @peculiar/x509 over WebCrypto. Keys are written 0600, atomically, and never overwritten.
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { webcrypto } from 'node:crypto';
import { createFileAtomic } from '../util/atomic-file.ts';
import { encodeMethodList, PERMITTED_METHODS_OID } from './methods.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Clocks of freshly booted machines run a little behind: certificates start 5 minutes early. */
const SKEW_MS = 5 * 60_000;
/** The longest validity of a TLS server certificate that Apple's platforms accept. */
export const MAX_SERVER_DAYS = 825;

export const CA_CERT = 'ca.pem';
export const CA_KEY = 'ca-key.pem';

/**
 * server: TLS server authentication; client: TLS client authentication; installer: both, as
 * Dominator's installer serves its status port and is a client of the image and boot servers with one
 * certificate (every machine's installer shares it: it is baked into the installer image).
 */
export type CertificateKind = 'server' | 'client' | 'installer';

export interface IssueRequest {
  kind: CertificateKind;
  /** The common name: a host name for servers, who or what the client is for clients. */
  name: string;
  dns?: string[];
  ips?: string[];
  days: number;
  /** Validity end, overriding `days` (tests make expired certificates with it). */
  notAfter?: Date;
  /**
   * The RPC methods the certificate may call (`Service.Method`, methods.ts), in Dominator's
   * extension; undefined: no list, every method (what certificates issued before it could).
   */
  methods?: string[];
}

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i;

/** The extensions a certificate of this kind carries (pure; the signing step adds key identifiers). */
export function profile(req: IssueRequest): x509.Extension[] {
  const serves = req.kind !== 'client';
  const nameRule = serves ? /^[A-Za-z0-9][A-Za-z0-9.:-]*$/ : /^[A-Za-z0-9][A-Za-z0-9.@_-]*$/;
  if (!nameRule.test(req.name))
    throw new Error(
      `certificate name '${req.name}': use ${serves ? 'a host name or an IP address' : "letters, digits, '.', '-', '_' or '@'"}`,
    );
  for (const ip of req.ips ?? [])
    if (!net.isIP(ip)) throw new Error(`--ip ${ip}: give an IPv4 or IPv6 address, without a prefix length`);
  for (const d of req.dns ?? []) if (!DNS_NAME.test(d)) throw new Error(`--dns ${d}: not a DNS name`);
  const names: x509.JsonGeneralName[] = [
    ...(req.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  // A server answers to its own name too: clients check the name they connected to (an address
  // only against IP entries).
  if (serves && !names.some((n) => n.value === req.name)) {
    if (!net.isIP(req.name) && !DNS_NAME.test(req.name))
      throw new Error(`certificate name '${req.name}': a server's name must be a host name or an IP address`);
    names.unshift(net.isIP(req.name) ? { type: 'ip', value: req.name } : { type: 'dns', value: req.name });
  }
  if (req.methods && req.kind === 'server')
    throw new Error(
      '--methods: a server certificate calls no method; the list belongs on a client (or installer) certificate',
    );
  if (req.methods && !req.methods.length)
    throw new Error('--methods: name at least one method (leave --methods out for every method)');
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      [
        ...(serves ? [x509.ExtendedKeyUsage.serverAuth] : []),
        ...(req.kind !== 'server' ? [x509.ExtendedKeyUsage.clientAuth] : []),
      ],
      false,
    ),
    ...(names.length ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
    // Not critical: TLS stacks that do not know it must still accept the certificate.
    ...(req.methods
      ? [new x509.Extension(PERMITTED_METHODS_OID, false, Uint8Array.from(encodeMethodList(req.methods)))]
      : []),
  ];
}

function serial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f; // a positive INTEGER
  return Buffer.from(bytes).toString('hex');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
}

/** Writes a file that must not exist yet (atomically; a concurrent writer loses, not both). */
function writeNew(file: string, data: string, mode: number): void {
  if (!createFileAtomic(file, data, mode))
    throw new Error(`${file} already exists: certificates and keys are never overwritten`);
}

/** The key (0600) then its certificate, both new; a certificate that cannot be written takes its key with it. */
async function writeKeyAndCertificate(
  dir: string,
  dirMode: number,
  files: { key: string; cert: string },
  key: CryptoKey,
  cert: x509.X509Certificate,
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode: dirMode });
  writeNew(files.key, await privateKeyPem(key), 0o600);
  try {
    writeNew(files.cert, `${cert.toString('pem')}\n`, 0o644);
  } catch (err) {
    fs.rmSync(files.key, { force: true });
    throw err;
  }
}

function refuseExisting(...files: string[]): void {
  const there = files.filter((f) => fs.existsSync(f));
  if (there.length)
    throw new Error(
      `${there.join(' and ')} already exist${there.length === 1 ? 's' : ''}: remove ${there.length === 1 ? 'it' : 'them'} first, certificates and keys are never overwritten`,
    );
}

/** A new certificate authority in `dir`: ca.pem and ca-key.pem. */
export async function createCa(dir: string, opts: { name: string; days: number }): Promise<string> {
  const cert = path.join(dir, CA_CERT);
  const key = path.join(dir, CA_KEY);
  refuseExisting(cert, key);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as {
    publicKey: CryptoKey;
    privateKey: CryptoKey;
  };
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: new x509.Name([{ CN: [opts.name] }]),
      notBefore: new Date(now - SKEW_MS),
      notAfter: new Date(now - SKEW_MS + opts.days * 86_400_000),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    },
    webcrypto,
  );
  await writeKeyAndCertificate(dir, 0o700, { key, cert }, keys.privateKey, ca);
  return cert;
}

/** A certificate signed by the CA in `caDir`, written as OUT/cert.pem and OUT/key.pem. */
export async function issueCertificate(
  caDir: string,
  req: IssueRequest,
  out: string,
): Promise<{ cert: string; key: string }> {
  const extensions = profile(req);
  const certFile = path.join(out, 'cert.pem');
  const keyFile = path.join(out, 'key.pem');
  refuseExisting(certFile, keyFile);
  let caCert: x509.X509Certificate;
  let caKey: CryptoKey;
  try {
    caCert = new x509.X509Certificate(fs.readFileSync(path.join(caDir, CA_CERT), 'utf8'));
    const pem = fs.readFileSync(path.join(caDir, CA_KEY), 'utf8');
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    caKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
  } catch (err) {
    throw new Error(
      `no usable certificate authority in ${caDir} (${CA_CERT} and ${CA_KEY}): ${(err as Error).message}; make one with 'cradle pki init --dir ${caDir}'`,
    );
  }
  const now = Date.now();
  if (!caCert.getExtension(x509.BasicConstraintsExtension)?.ca)
    throw new Error(`${path.join(caDir, CA_CERT)} is not a certificate authority`);
  if (caCert.notAfter.getTime() <= now)
    throw new Error(
      `the certificate authority in ${caDir} expired on ${caCert.notAfter.toISOString()}: make a new one`,
    );
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as {
    publicKey: CryptoKey;
    privateKey: CryptoKey;
  };
  // The validity period counts from the backdated start: a server certificate of 825 days is
  // valid 825 days in all, the most Apple's platforms accept for one (a day more and they refuse
  // it). Never valid longer than the CA that vouches for it.
  if (req.kind !== 'client' && req.days > MAX_SERVER_DAYS)
    throw new Error(
      `--days ${req.days}: a certificate that serves TLS is valid at most ${MAX_SERVER_DAYS} days (clients on Apple platforms refuse longer ones); issue a new one before it expires`,
    );
  // An end already past (tests' expired certificates) needs a start before it.
  const notBefore = new Date(
    req.notAfter ? Math.min(now - SKEW_MS, req.notAfter.getTime() - 86_400_000) : now - SKEW_MS,
  );
  const notAfter = new Date(
    Math.min(req.notAfter?.getTime() ?? notBefore.getTime() + req.days * 86_400_000, caCert.notAfter.getTime()),
  );
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: new x509.Name([{ CN: [req.name] }]),
      issuer: caCert.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: ALG,
      extensions: [
        ...extensions,
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ],
    },
    webcrypto,
  );
  // The CA's key and certificate belong together: else nothing it signs would verify.
  if (!(await cert.verify({ publicKey: caCert, signatureOnly: true }, webcrypto)))
    throw new Error(`${CA_KEY} in ${caDir} is not the key of its ${CA_CERT}`);
  await writeKeyAndCertificate(out, 0o755, { key: keyFile, cert: certFile }, keys.privateKey, cert);
  return { cert: certFile, key: keyFile };
}
