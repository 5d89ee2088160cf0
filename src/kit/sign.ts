// A kit's signature: the signer's certificate (issued by the site's CA, `cradle pki`) and its
// signature over kit.json, which names every object of the kit by digest, so the signature covers
// all of it. A depot with a trust file refuses kits that are unsigned or signed by anyone else.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { parseJsonWith } from '../util/parse-json.ts';
import { KitError } from './format.ts';

const signatureSchema = z.strictObject({
  certificate: z.string().max(16384),
  signature: z.string().regex(/^[A-Za-z0-9+/=]+$/, 'base64'),
});

/** kit.sig for `kitJson`, signed with the key of `certFile`. */
export function signKit(kitJson: Buffer, certFile: string, keyFile: string): Buffer {
  const certificate = fs.readFileSync(certFile, 'utf8');
  const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
  if (!new crypto.X509Certificate(certificate).checkPrivateKey(key))
    throw new KitError(`${keyFile} is not the key of ${certFile}`);
  const signature = crypto.sign('sha256', kitJson, key).toString('base64');
  return Buffer.from(`${JSON.stringify({ certificate, signature }, null, 2)}\n`);
}

/**
 * Checks kit.sig against the CA in `trustFile`; returns who signed. Throws, saying why, for a
 * missing signature, a certificate the CA did not issue or out of date, or a signature that does
 * not match kit.json.
 */
export function verifyKitSignature(kitJson: Buffer, sig: Buffer | undefined, trustFile: string, label: string): string {
  if (!sig) throw new KitError(`kit ${label} is not signed, and this depot trusts only kits signed by ${trustFile}`);
  const { certificate, signature } = parseJsonWith(
    sig.toString('utf8'),
    signatureSchema,
    `kit ${label}: kit.sig`,
    (m) => new KitError(m),
  );
  const ca = new crypto.X509Certificate(fs.readFileSync(trustFile));
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certificate);
  } catch (err) {
    throw new KitError(`kit ${label}: its signer's certificate is not a certificate: ${(err as Error).message}`);
  }
  const who = cert.subject.replace(/^CN=/, '');
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
    throw new KitError(`kit ${label} is signed by '${who}', whose certificate ${trustFile} did not issue: refused`);
  const now = Date.now();
  if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now)
    throw new KitError(
      `kit ${label} is signed by '${who}', whose certificate is not valid now (${cert.validFrom} to ${cert.validTo})`,
    );
  if (!crypto.verify('sha256', kitJson, cert.publicKey, Buffer.from(signature, 'base64')))
    throw new KitError(`kit ${label}: the signature of '${who}' does not match its kit.json: the kit was altered`);
  return who;
}
