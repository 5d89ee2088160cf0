// A server certificate made in memory for a server that has none (Dominator's
// -generateMissingWebcert, lib/srpc/setupserver): self-signed, DNS name `any-server`, valid 30
// years, Ed25519 when Node's TLS serves with it (else ECDSA P-256). Never written anywhere: a
// restart makes a new one, so clients pin the fingerprint the server logs.
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { webcrypto, X509Certificate } from 'node:crypto';
import tls from 'node:tls';

/** The name Dominator gives a generated certificate: it says nothing about which server it is. */
export const GENERATED_CERT_NAME = 'any-server';
const YEARS = 30;

export interface GeneratedCertificate {
  cert: string;
  key: string;
  algorithm: 'Ed25519' | 'ECDSA P-256';
  /** SHA-256 of the certificate, AB:CD:... (as `openssl x509 -fingerprint -sha256` prints it). */
  fingerprint: string;
}

const ED25519 = { name: 'Ed25519' } as const;
const P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export async function generateSelfSignedServer(name = GENERATED_CERT_NAME): Promise<GeneratedCertificate> {
  try {
    const ed = await make(name, ED25519);
    // OpenSSL builds without Ed25519 in TLS would fail here, not in the first handshake.
    tls.createSecureContext({ cert: ed.cert, key: ed.key });
    return { ...ed, algorithm: 'Ed25519' };
  } catch {
    return { ...(await make(name, P256)), algorithm: 'ECDSA P-256' };
  }
}

async function make(
  name: string,
  alg: typeof ED25519 | typeof P256,
): Promise<{ cert: string; key: string; fingerprint: string }> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as {
    publicKey: CryptoKey;
    privateKey: CryptoKey;
  };
  const serial = webcrypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f; // a positive INTEGER
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Buffer.from(serial).toString('hex'),
      name: new x509.Name([{ CN: [name] }]),
      // Freshly booted machines' clocks run behind: it starts a day early.
      notBefore: new Date(now - 86_400_000),
      notAfter: new Date(now + YEARS * 365.25 * 86_400_000),
      keys,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }], false),
      ],
    },
    webcrypto,
  );
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  const pem = `${cert.toString('pem')}\n`;
  return { cert: pem, key, fingerprint: new X509Certificate(pem).fingerprint256 };
}
