// Finding kits for the Kits screen: kit.json read from the first member of each *.kit file of a
// directory, or from the start of a download; anything else reported with why, never thrown.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { writeKitFile } from '../../kit/container.ts';
import { encodeKit, kitSchema } from '../../kit/format.ts';
import { findMediaKits, lookUpKitUrl } from './kits.ts';

const M = `sha256:${'a'.repeat(64)}`;
let dir: string;
let server: http.Server;
let base: string;

async function kitFile(file: string, kit: object) {
  await writeKitFile(file, encodeKit(kitSchema.parse(kit)), undefined, (async function* () {})());
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-wizard-kits-'));
  await kitFile(path.join(dir, 'demo.kit'), {
    cradleKit: 1,
    name: 'demo',
    version: '1.0',
    kind: 'os',
    os: 'demo-1',
    arch: 'x86_64',
    image: M,
  });
  await kitFile(path.join(dir, 'cradle.kit'), {
    cradleKit: 1,
    name: 'cradle',
    version: '0.1.0',
    kind: 'addon',
    arch: 'x86_64',
    components: [{ name: 'cradle-head', nodeGroups: ['head'], os: ['demo-1'], manifest: M }],
  });
  fs.writeFileSync(path.join(dir, 'empty.kit'), '');
  fs.writeFileSync(path.join(dir, 'readme.txt'), 'not a kit, and not named like one');
  server = http
    .createServer((req, res) => {
      if (req.url === '/demo.kit') fs.createReadStream(path.join(dir, 'demo.kit')).pipe(res);
      else res.writeHead(404).end();
    })
    .listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the *.kit files of a directory, by name: each kit.json read, or why not', async () => {
  assert.deepEqual(await findMediaKits(dir), [
    { source: 'cradle.kit', name: 'cradle', version: '0.1.0', kind: 'addon' },
    { source: 'demo.kit', name: 'demo', version: '1.0', kind: 'os', os: 'demo-1' },
    {
      source: 'empty.kit',
      problem: 'not a readable kit file: the archive is empty: expected at least the end-of-archive marker',
    },
  ]);
  assert.deepEqual(await findMediaKits(undefined), []);
  assert.deepEqual(await findMediaKits(path.join(dir, 'nowhere')), [
    { source: path.join(dir, 'nowhere'), problem: 'the kits directory cannot be read: ENOENT' },
  ]);
});

test('a kit by URL: its kit.json from the start of the download; a 404 or no server is a problem', async () => {
  assert.deepEqual(await lookUpKitUrl(`${base}/demo.kit`), {
    source: `${base}/demo.kit`,
    name: 'demo',
    version: '1.0',
    kind: 'os',
    os: 'demo-1',
  });
  assert.deepEqual(await lookUpKitUrl(`${base}/gone.kit`), {
    source: `${base}/gone.kit`,
    problem: 'the server answered 404 Not Found',
  });
  const closed = http.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => closed.once('listening', r));
  const port = (closed.address() as AddressInfo).port;
  closed.close();
  const r = await lookUpKitUrl(`http://127.0.0.1:${port}/x.kit`);
  assert.match('problem' in r ? r.problem : '', /ECONNREFUSED.*is the address right/);
});
