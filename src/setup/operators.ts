// Operators from a site's own PKI (the answers' `operators.ca`): the head node's boot server accepts
// the client certificates of that CA for the machine API and the dashboard, never as the
// installer's (pki/serve.ts clientIdentity). Checked when the install is planned, so a wrong file
// is named before any disk is touched; written as /etc/cradle/ca/operators.pem beside the site CA
// and given to `cradle server --operator-ca` (services.ts).
import { pemCertificates } from '../pki/serve.ts';
import { AnswersError } from './answers.ts';

/** The operator CA's certificates as PEM, each checked to be a CA in date; throws naming the key. */
export function planOperatorCa(pem: string, now = new Date()): string {
  let certs: ReturnType<typeof pemCertificates>;
  try {
    certs = pemCertificates(pem);
  } catch (err) {
    throw new AnswersError(
      `the operators:\n  'operators.ca': a certificate in it cannot be read (${(err as Error).message}): paste the CA's PEM file whole`,
    );
  }
  const problems: string[] = [];
  for (const [i, c] of certs.entries()) {
    const which = certs.length > 1 ? `certificate ${i + 1} (${c.subject.replace(/\n/g, ', ')})` : c.subject;
    if (!c.ca)
      problems.push(
        `'operators.ca': ${which} is not a CA: give the certificate of the CA that issues the operators' certificates`,
      );
    if (Date.parse(c.validTo) <= now.getTime()) problems.push(`'operators.ca': ${which} expired on ${c.validTo}`);
  }
  if (!certs.length) problems.push("'operators.ca': no PEM certificate in it");
  if (problems.length) throw new AnswersError(`the operators:\n  ${problems.join('\n  ')}`);
  return certs
    .map((c) => c.toString().trimEnd())
    .join('\n')
    .concat('\n');
}

/** operators.pem: every CA whose client certificates are operators': the site's, then the given one. */
export function operatorsPem(siteCa: string, operatorCa?: string): string {
  return `${siteCa.trimEnd()}\n${operatorCa ?? ''}`;
}

/** For the plan's description: the operator CAs by subject. */
export function describeOperatorCa(pem: string): string {
  return pemCertificates(pem)
    .map((c) => c.subject.replace(/\n/g, ', '))
    .join('; ');
}
