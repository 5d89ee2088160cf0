// An installer's port 6978 under hostile input (see harness.ts): a real installer process whose
// install failed at once (it refuses a real install on a system that runs from a disk), so it
// waits, serving its status page, RPC and shell, in a mount namespace of its own, on loopback.
import fs from 'node:fs';
import { failingInstaller, isRoot, tmpDir } from '../helpers.ts';
import { makeTestPki } from '../pki-fixtures.ts';
import { abuseSuite } from './harness.ts';
import { loopbackTarget, startProcess } from './targets.ts';

abuseSuite(
  "an installer's port 6978",
  async () => {
    const work = tmpDir('cradle-abuse-installer-');
    const pki = await makeTestPki(work, 'boot');
    // --failure-wait: the installer waits after its failure for as long as the attacks take.
    const s = await startProcess(
      failingInstaller(work, { failureWait: 3600, status: true }, [
        '--tls-ca',
        pki.ca,
        '--tls-cert',
        pki.installer.cert,
        '--tls-key',
        pki.installer.key,
      ]),
      /status page on http:\/\/127\.0\.0\.1:(\d+)\/[\s\S]*FAILED after/,
      { CRADLE_NO_FLAG_FILES: '1' },
    );
    return loopbackTarget(s, Number(s.match[1]), {
      normalPath: '/logs',
      // No route reads a body; these are the ones that take a POST.
      bodies: [
        { method: 'POST', path: '/api/v1/reboot/block', limit: 4096 },
        { method: 'POST', path: '/api/v1/retry', limit: 4096 },
      ],
      prefixes: ['/api/v1/', '/logs/'],
      cleanup: () => fs.rmSync(work, { recursive: true, force: true }),
    });
  },
  { skip: !isRoot() && 'needs root (mount namespace)' },
);
