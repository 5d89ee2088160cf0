// The lab's certificates: a CA, the boot and image servers' certificate (for the lab's server
// address), the installer image's, and an operator's for the dashboard, the RPC and the shell.
// Made once into the cache and kept, so the cached installer image that carries them stays valid.
import fs from 'node:fs';
import path from 'node:path';
import { createCa, issueCertificate, MAX_SERVER_DAYS } from '../pki/pki.ts';
import { buildDirFor, placeBuilt } from '../util/build-cache.ts';

export interface LabPki {
  ca: string;
  server: { cert: string; key: string };
  installer: { ca: string; cert: string; key: string };
  operator: { cert: string; key: string };
}

function paths(dir: string): LabPki {
  const pair = (name: string) => ({ cert: path.join(dir, name, 'cert.pem'), key: path.join(dir, name, 'key.pem') });
  const ca = path.join(dir, 'ca', 'ca.pem');
  return { ca, server: pair('server'), installer: { ca, ...pair('installer') }, operator: pair('operator') };
}

export async function labPki(dir: string, serverAddress = '10.77.0.1'): Promise<LabPki> {
  if (fs.existsSync(path.join(dir, 'complete'))) return paths(dir);
  // Made aside and renamed into place: a lab started meanwhile takes the first complete one.
  const tmp = buildDirFor(dir);
  await createCa(path.join(tmp, 'ca'), { name: 'Cradle lab CA', days: 3650 });
  const issue = (kind: 'server' | 'client' | 'installer', name: string, out: string) =>
    issueCertificate(
      path.join(tmp, 'ca'),
      { kind, name, days: kind === 'client' ? 3650 : MAX_SERVER_DAYS },
      path.join(tmp, out),
    );
  await issue('server', serverAddress, 'server');
  await issue('installer', 'installer', 'installer');
  await issue('client', 'lab-operator', 'operator');
  fs.writeFileSync(path.join(tmp, 'complete'), '');
  placeBuilt(tmp, dir, 'complete');
  return paths(dir);
}
