// HeadApi and the dashboard proxy against an HTTPS server on a unix socket (as the relay presents
// the head node), without root: the pin, the operator's certificate, the bounds and deadlines, and
// what the proxy forwards, refuses and answers when the head node is away. The real boot server
// behind a real relay in a namespace is test/lab-relay.test.ts.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../../test/pki-fixtures.ts';
import { HeadApi, HeadPinError, HeadUnreachableError, startDashboardProxy } from './head-api.ts';

describe('HeadApi and the dashboard proxy', () => {
  let dir: string;
  let pki: TestPki;
  let socket: string;
  let server: https.Server;
  let fingerprint: string;
  const stalled = new Set<() => void>();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-head-api-'));
    pki = await makeTestPki(dir, 'head');
    fingerprint = new X509Certificate(fs.readFileSync(pki.server.cert)).fingerprint256;
    socket = path.join(dir, 'head.sock');
    server = https.createServer(
      {
        cert: fs.readFileSync(pki.server.cert),
        key: fs.readFileSync(pki.server.key),
        ca: fs.readFileSync(pki.ca),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        if (!(req.socket as tls.TLSSocket).authorized) {
          res.writeHead(403, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ error: 'client certificate refused', detail: 'not ours' }));
        }
        if (req.url === '/api/v1/machines') {
          res.writeHead(200, { 'content-type': 'application/json', 'strict-transport-security': 'max-age=1' });
          return void res.end(JSON.stringify({ machines: [{ hostname: 'node1', progress: null }] }));
        }
        if (req.url === '/big') return void res.end(Buffer.alloc(2 * 1024 * 1024));
        if (req.url === '/stall') return void stalled.add(() => res.end('late'));
        if (req.url?.startsWith('/fragments/machines/node1/log?since=')) {
          res.writeHead(200, {
            'content-type': 'text/plain',
            'x-next-seq': '7',
            'strict-transport-security': 'max-age=1',
          });
          return void res.end(`since ${req.url.split('=')[1]} accept ${req.headers.accept}\n`);
        }
        res.writeHead(404);
        res.end('no such page');
      },
    );
    server.listen(socket);
    await once(server, 'listening');
  });
  after(async () => {
    for (const answer of stalled) answer();
    server.closeAllConnections();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const api = (o: Partial<ConstructorParameters<typeof HeadApi>[0]> = {}) =>
    new HeadApi({ socket, ...pki.operator, fingerprint, ...o });

  test("the machine API with the operator's certificate; another CA's certificate gets the server's refusal", async () => {
    assert.deepEqual(await api().machines(), [{ hostname: 'node1', progress: null }]);
    assert.equal(await api().serving(), true);
    await assert.rejects(
      api(pki.foreign).machines(),
      /GET \/api\/v1\/machines on the head node: 403 client certificate refused: not ours/,
    );
    assert.equal(await api(pki.foreign).serving(), false);
  });

  test('the pin is checked before anything is sent, in any form X509Certificate or openssl writes it', async () => {
    const bare = fingerprint.replace(/:/g, '').toLowerCase();
    assert.equal((await api({ fingerprint: `sha256:${bare}` }).get('/api/v1/machines')).status, 200);
    const other = new X509Certificate(fs.readFileSync(pki.operator.cert)).fingerprint256;
    await assert.rejects(
      api({ fingerprint: other }).get('/api/v1/machines'),
      (e) => e instanceof HeadPinError && e.message.includes(other) && e.message.includes(fingerprint),
    );
    assert.throws(() => api({ fingerprint: 'nope' }), /64 hex digits as AB:CD/);
    assert.throws(() => api({ cert: path.join(dir, 'missing.pem') }), /missing\.pem: ENOENT/);
    assert.throws(() => api({ servername: '10.1.0.1' }), /SNI takes a host name/);
  });

  test('bodies are bounded, answers have a deadline, a missing relay says so', async () => {
    await assert.rejects(api({ maxBodyBytes: 1024 * 1024 }).get('/big'), /answer to \/big is over 1048576 bytes/);
    await assert.rejects(
      api({ timeoutMs: 300 }).get('/stall'),
      (e) => e instanceof HeadUnreachableError && /did not answer \/stall in 0\.3 s/.test(e.message),
    );
    const away = api({ socket: path.join(dir, 'no-relay.sock') });
    await assert.rejects(away.get('/'), /no relay listens on .*no-relay\.sock \(ENOENT\)/);
    assert.equal(await away.serving(), false);
    await assert.rejects(api().machine('No Such/Name'), /machine name 'No Such\/Name'/);
  });

  test('the proxy forwards reads with their query and headers, refuses writes, and answers 502 for a head node away', async () => {
    const proxy = await startDashboardProxy(api(), { port: 0 });
    const gone = await startDashboardProxy(api({ socket: path.join(dir, 'no-relay.sock') }), { port: 0 });
    try {
      const log = await fetch(new URL('fragments/machines/node1/log?since=3', proxy.url), {
        headers: { accept: 'text/plain' },
      });
      assert.equal(log.status, 200);
      assert.equal(log.headers.get('x-next-seq'), '7');
      assert.equal(log.headers.get('strict-transport-security'), null);
      assert.equal(await log.text(), 'since 3 accept text/plain\n');
      const head = await fetch(new URL('api/v1/machines', proxy.url), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-type'), 'application/json');
      const missing = await fetch(new URL('nowhere', proxy.url));
      assert.equal(missing.status, 404);
      await missing.text();
      for (const method of ['POST', 'DELETE']) {
        const refused = await fetch(proxy.url, { method, body: '{}' });
        assert.equal(refused.status, 405);
        assert.equal(refused.headers.get('allow'), 'GET, HEAD');
        await refused.text();
      }
      // A page whose name resolves to 127.0.0.1 (DNS rebinding) sends its own name as Host.
      const port = new URL(proxy.url).port;
      const asHost = (host: string) =>
        new Promise<{ status?: number; body: string }>((resolve, reject) => {
          const r = http.get(`${proxy.url}api/v1/machines`, { headers: { host } }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, body }));
          });
          r.on('error', reject);
        });
      for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.evil.example:${port}`]) {
        const rebound = await asHost(host);
        assert.equal(rebound.status, 403, host);
        assert.match(rebound.body, /answers only as 127\.0\.0\.1, localhost or \[::1\]/);
      }
      // By any loopback name and port (an SSH tunnel's, or none for port 80).
      for (const host of [`localhost:${port}`, 'LOCALHOST:8080', '[::1]:8080', '127.0.0.1'])
        assert.equal((await asHost(host)).status, 200, host);
      const down = await fetch(gone.url);
      assert.equal(down.status, 502);
      assert.match(await down.text(), /head node is unreachable: no relay listens on/);
      const still = await fetch(new URL('api/v1/machines', proxy.url));
      assert.equal(still.status, 200);
      await still.text();
      await assert.rejects(startDashboardProxy(api(), { port: 70000 }), /port 70000/);
      await assert.rejects(
        startDashboardProxy(api(), { port: 0, host: '0.0.0.0' as '127.0.0.1' }),
        /listens on 127\.0\.0\.1 only/,
      );
      const taken = Number(new URL(proxy.url).port);
      await assert.rejects(
        startDashboardProxy(api(), { port: taken }),
        new RegExp(`port ${taken} on 127.0.0.1 is in use`),
      );
    } finally {
      await proxy.close();
      await gone.close();
    }
  });
});
