// The image server (`cradle imageserver`) under hostile input: see harness.ts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cradleBin, tmpDir } from '../helpers.ts';
import { abuseSuite } from './harness.ts';
import { loopbackTarget, startProcess } from './targets.ts';

abuseSuite('image server', async () => {
  const work = tmpDir('cradle-abuse-store-');
  const store = path.join(work, 'store');
  fs.mkdirSync(path.join(work, 'tree/etc'), { recursive: true });
  fs.writeFileSync(path.join(work, 'tree/etc/hostname'), 'abused\n');
  execFileSync(cradleBin, ['image', 'add', 'abuse/1', path.join(work, 'tree'), '--store', store]);
  const s = await startProcess(
    [cradleBin, 'imageserver', '--store', store, '--listen', '127.0.0.1', '--port', '0'],
    /on http:\/\/127\.0\.0\.1:(\d+)/,
  );
  return loopbackTarget(s, Number(s.match[1]), {
    normalPath: '/v1/images',
    bodies: [{ method: 'POST', path: '/v1/objects/batch', limit: 8 * 1024 * 1024 }],
    prefixes: ['/v1/objects/', '/v1/manifests/', '/v1/images/'],
    cleanup: () => fs.rmSync(work, { recursive: true, force: true }),
  });
});
