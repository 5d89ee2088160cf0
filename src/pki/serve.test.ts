// One port for HTTP and HTTPS: both answered by the same handler, the client certificate seen
// per request, keep-alive connections ended by close() (an open browser tab must not keep a
// server or an installer from stopping), and HTTP's own timeouts in force.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { listen } from '../util/listen.ts';
import { createCa, issueCertificate } from './pki.ts';
import { clientIdentity, dualProtocolServer } from './serve.ts';

let dir: string;
let files: { ca: string; cert: string; key: string };
let operator: { cert: string; key: string };

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-serve-'));
  const ca = await createCa(path.join(dir, 'ca'), { name: 'test', days: 2 });
  const server = await issueCertificate(
    path.join(dir, 'ca'),
    { kind: 'server', name: '127.0.0.1', days: 1 },
    path.join(dir, 'server'),
  );
  operator = await issueCertificate(
    path.join(dir, 'ca'),
    { kind: 'client', name: 'alice', days: 1 },
    path.join(dir, 'alice'),
  );
  files = { ca, ...server };
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const handler: http.RequestListener = (req, res) => {
  let who: string;
  try {
    who = clientIdentity(req.socket, 'operator').name;
  } catch (err) {
    who = `refused: ${(err as Error).message.slice(0, 40)}`;
  }
  res.end(`${(req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'} ${who}`);
};

function get(url: string, opts: https.RequestOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    (url.startsWith('https') ? https : http)
      .get(url, opts, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

test('HTTP and HTTPS on one port; the operator named by the certificate, per request', async () => {
  const dual = dualProtocolServer(handler, files);
  const { port } = await listen(dual.server, 0, '127.0.0.1');
  try {
    assert.match(await get(`http://127.0.0.1:${port}/`), /^http refused: this needs HTTPS/);
    const ca = fs.readFileSync(files.ca);
    assert.match(await get(`https://127.0.0.1:${port}/`, { ca }), /^https refused: no client certificate/);
    assert.equal(
      await get(`https://127.0.0.1:${port}/`, {
        ca,
        cert: fs.readFileSync(operator.cert),
        key: fs.readFileSync(operator.key),
      }),
      'https alice',
    );
  } finally {
    await dual.close();
  }
});

test('close() ends kept-alive connections at once, and the HTTP timeouts apply', async () => {
  const dual = dualProtocolServer(handler, files);
  const { port } = await listen(dual.server, 0, '127.0.0.1');
  assert.ok(dual.plain.headersTimeout > 0 && dual.plain.requestTimeout > 0);
  const agent = new http.Agent({ keepAlive: true });
  await get(`http://127.0.0.1:${port}/`, { agent });
  const started = performance.now();
  await dual.close();
  assert.ok(performance.now() - started < 2000, 'not held by the idle keep-alive connection');
  agent.destroy();
});

test('a TLS client of a server without TLS files is cut, not answered in plain text', async () => {
  const dual = dualProtocolServer(handler);
  const { port } = await listen(dual.server, 0, '127.0.0.1');
  try {
    await assert.rejects(
      get(`https://127.0.0.1:${port}/`, { rejectUnauthorized: false }),
      /socket hang up|ECONNRESET|disconnected/,
    );
    assert.match(await get(`http://127.0.0.1:${port}/`), /^http /);
  } finally {
    await dual.close();
  }
});
