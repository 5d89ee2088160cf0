// The installer's port 6978 as startStatusServer serves it from the installer's options, on
// loopback: each RPC method as far as the caller's certificate permits it (Dominator's method list
// in the certificate; none: every method), the identity CA's certificates reading only
// (-identityCAfile), and, with no installer certificate, HTTPS with a generated self-signed one
// (-generateMissingWebcert) whose logged fingerprint is the one served.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { DEFAULT_OPTIONS, type InstallerOptions } from '../src/installer/context.ts';
import { newContext } from '../src/installer/daemon.ts';
import { InstallerLog } from '../src/installer/log.ts';
import { RebootGate } from '../src/installer/reboot.ts';
import { createCa, issueCertificate } from '../src/pki/pki.ts';
import { type StatusServer, startStatusServer } from '../src/status/server.ts';
import { tmpDir } from './helpers.ts';

interface Pair {
  cert: string;
  key: string;
}

interface Answer {
  status: number;
  body: string;
  fingerprint?: string;
  keyType?: string;
  names?: string;
}

/** One HTTPS request to the port, as `as` (or no certificate), trusting `ca` for the name `servername`. */
function call(
  port: number,
  o: { method?: string; path: string; as?: Pair; ca: string; servername: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? 'GET',
        path: o.path,
        servername: o.servername,
        ca: fs.readFileSync(o.ca),
        ...(o.as ? { cert: fs.readFileSync(o.as.cert), key: fs.readFileSync(o.as.key) } : {}),
        agent: false,
      },
      (res) => {
        const peer = (res.socket as tls.TLSSocket).getPeerX509Certificate();
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            fingerprint: peer?.fingerprint256,
            keyType: peer?.publicKey.asymmetricKeyType,
            names: peer?.subjectAltName,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The shell's WebSocket as `as`: opened (then closed at once), or the refusal's status and body. */
function shell(port: number, as: Pair, ca: string): Promise<{ status?: number; body: string }> {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/api/v1/shell`, {
    ca: fs.readFileSync(ca),
    cert: fs.readFileSync(as.cert),
    key: fs.readFileSync(as.key),
    servername: 'installer',
  } as WebSocket.ClientOptions);
  return new Promise((resolve) => {
    ws.on('unexpected-response', (_q, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('message', (data, binary) => {
      if (binary) return;
      const msg = JSON.parse(String(data));
      if (msg.type === 'session') {
        ws.send(JSON.stringify({ type: 'close' }));
        resolve({ status: 101, body: 'opened' });
      }
    });
    ws.on('error', (e) => resolve({ body: e.message }));
  }).finally(() => setTimeout(() => ws.terminate(), 200)) as Promise<{ status?: number; body: string }>;
}

/** startStatusServer on a free loopback port, with a view attached as the daemon would. */
async function serve(
  tls: InstallerOptions['tls'],
  status: { identityCa?: string; generateMissingCert?: boolean },
): Promise<{ server: StatusServer; port: number; log: InstallerLog }> {
  const opts: InstallerOptions = {
    ...DEFAULT_OPTIONS,
    dryRun: true,
    tls,
    status: {
      port: 0,
      address: '127.0.0.1',
      shellCommand: ['/bin/sh', '-i'],
      shellKeepSeconds: 5,
      generateMissingCert: false,
      ...status,
    },
  };
  const log = new InstallerLog({ stderr: false });
  const server = await startStatusServer(opts, log, new RebootGate((l) => log.info(l)));
  assert.ok(server, log.lines.join('\n'));
  server.attach(newContext(opts, log));
  const port = Number(/status page on http:\/\/127\.0\.0\.1:(\d+)\//.exec(log.lines.join('\n'))?.[1]);
  return { server, port, log };
}

describe('installer status port: methods per certificate, identity CA, generated certificate', () => {
  let work: string;
  let ca: string;
  let identityCa: string;
  let installer: Pair;
  const people: Record<string, Pair> = {};
  const servers: StatusServer[] = [];

  before(async () => {
    work = tmpDir('cradle-status-access-');
    ca = await createCa(path.join(work, 'ca'), { name: 'Site CA', days: 30 });
    identityCa = await createCa(path.join(work, 'idca'), { name: 'People CA', days: 30 });
    installer = await issueCertificate(
      path.join(work, 'ca'),
      { kind: 'installer', name: 'installer', days: 7 },
      path.join(work, 'installer'),
    );
    const issue = async (name: string, dir: string, methods?: string[]) =>
      (people[name] = await issueCertificate(
        path.join(work, dir),
        { kind: 'client', name, days: 7, methods },
        path.join(work, name),
      ));
    await issue('alice', 'ca'); // no list: every method, as certificates issued before the list
    await issue('bob', 'ca', ['Installer.Status', 'Installer.Logs']);
    await issue('carol', 'ca', ['Installer.Shell']);
    await issue('dave', 'ca', ['Installer.*']);
    await issue('frank', 'idca'); // the identity CA's: reading only
    await issue('grace', 'idca', ['*.*']); // a list does not lift that
  });

  after(async () => {
    for (const s of servers) await s.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const routes: [string, string, string][] = [
    ['GET', '/api/v1/status', 'Installer.Status'],
    ['GET', '/api/v1/logs', 'Installer.Logs'],
    ['POST', '/api/v1/reboot/block', 'Installer.BlockReboot'],
    ['POST', '/api/v1/reboot/unblock', 'Installer.UnblockReboot'],
    ['POST', '/api/v1/reboot/now', 'Installer.RebootNow'],
    ['POST', '/api/v1/retry', 'Installer.Retry'],
  ];

  test('each RPC method and the shell as far as the certificate permits; refusals name the method and the command', async () => {
    const { server, port, log } = await serve({ ca, cert: installer.cert, key: installer.key }, { identityCa });
    servers.push(server);
    assert.match(log.lines.join('\n'), /status and logs for those of the identity CA/);
    const expect: Record<string, string[]> = {
      alice: routes.map((r) => r[2]),
      bob: ['Installer.Status', 'Installer.Logs'],
      carol: [],
      dave: routes.map((r) => r[2]),
      frank: ['Installer.Status', 'Installer.Logs'],
      grace: ['Installer.Status', 'Installer.Logs'],
    };
    for (const [who, permitted] of Object.entries(expect)) {
      for (const [method, route, name] of routes) {
        const r = await call(port, { method, path: route, as: people[who], ca, servername: 'installer' });
        if (permitted.includes(name)) {
          // Allowed: the method itself answers (a 409 when the installer is in no state for it).
          assert.ok(r.status !== 403, `${who} ${method} ${route}: ${r.status} ${r.body}`);
          continue;
        }
        assert.equal(r.status, 403, `${who} ${method} ${route}: ${r.status} ${r.body}`);
        const detail = JSON.parse(r.body).detail;
        assert.match(detail, new RegExp(`${name.replace('.', '\\.')} is refused to '${who}'`));
        assert.match(detail, new RegExp(`cradle pki issue client ${who} --methods ${name.replace('.', '\\.')}`));
        if (who === 'frank' || who === 'grace') assert.match(detail, /the identity CA's/);
      }
    }
    assert.doesNotMatch(log.lines.join('\n'), /held by (bob|carol|frank|grace)/, 'no refused call acted');
    assert.match(log.lines.join('\n'), /held by alice/);

    // The shell: carol's certificate names it, bob's does not, frank's is the identity CA's.
    assert.equal((await shell(port, people.carol, ca)).status, 101);
    assert.equal((await shell(port, people.alice, ca)).status, 101);
    for (const who of ['bob', 'frank', 'grace']) {
      const r = await shell(port, people[who], ca);
      assert.equal(r.status, 403, `${who}: ${r.body}`);
      assert.match(JSON.parse(r.body).detail, new RegExp(`Installer\\.Shell is refused to '${who}'`));
    }
    // The installer's own certificate stays refused as an operator's, list or not.
    const own = await call(port, { path: '/api/v1/status', as: installer, ca, servername: 'installer' });
    assert.equal(own.status, 403);
    assert.match(JSON.parse(own.body).detail, /not an operator's/);
  });

  test('a shell with ?logs=1 gets the whole log kept in memory, however long, then each new line; one without gets neither', async () => {
    const { server, port, log } = await serve({ ca, cert: installer.cert, key: installer.key }, {});
    servers.push(server);
    // Some 250 KiB of log: more than a detached session's replay keeps (64 KiB).
    for (let i = 0; i < 3000; i++) log.info(`line ${i} ${'x'.repeat(70)}`);
    const open = (query: string) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/api/v1/shell?${query}`, {
        ca: fs.readFileSync(ca),
        cert: fs.readFileSync(people.alice.cert),
        key: fs.readFileSync(people.alice.key),
        servername: 'installer',
      } as WebSocket.ClientOptions);
      let text = '';
      ws.on('message', (d, binary) => binary && (text += String(d)));
      const until = async (re: RegExp) => {
        for (const end = Date.now() + 15_000; !re.test(text) && Date.now() < end; )
          await new Promise((r) => setTimeout(r, 20));
        assert.match(text, re);
      };
      return { ws, until, text: () => text };
    };
    const spray = open('logs=1');
    const quiet = open('');
    try {
      await spray.until(/Starting shell on: /);
      await quiet.until(/Starting shell on: /);
      const history = spray.text().slice(0, spray.text().indexOf('Starting shell on: '));
      assert.match(history, /^Logs so far:\r\n/);
      assert.match(history, /\] line 0 x+\r\n/, 'the first line kept is there, not only the tail');
      assert.match(history, /\] line 2999 x+\r\n/);
      assert.doesNotMatch(quiet.text(), /\] line 0 x/, 'without logs=1, the last 20 lines');
      log.info('written after both connected');
      await spray.until(/\] written after both connected\r\n/);
      // The quiet shell echoes a command sent after the line: the line would have come before it.
      quiet.ws.send(Buffer.from('echo quiet-$((40+2))\n'));
      await quiet.until(/quiet-42/);
      assert.doesNotMatch(quiet.text(), /written after both connected/);
    } finally {
      for (const sh of [spray, quiet]) sh.ws.terminate();
    }
  });

  test('no installer certificate, -generateMissingWebcert: HTTPS with an Ed25519 any-server certificate, its fingerprint logged; the CA still grants the RPC', async () => {
    const { server, port, log } = await serve({ ca }, { generateMissingCert: true, identityCa });
    servers.push(server);
    const text = log.lines.join('\n');
    const logged =
      /generated self-signed (Ed25519|ECDSA P-256) certificate for any-server \(in memory only\), sha256 ([0-9A-F:]{95})/.exec(
        text,
      );
    assert.ok(logged, text);
    // The client trusts the generated certificate itself (pinned), by its name any-server.
    const pinned = path.join(work, 'generated.pem');
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200, 'plain HTTP still serves the page');
    // Fetch the served certificate to pin it: a connection that does not verify, then one that does.
    const peer = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, agent: false },
        (res) => {
          const c = (res.socket as tls.TLSSocket).getPeerX509Certificate();
          res.resume();
          resolve(c?.toString() ?? '');
        },
      );
      req.on('error', reject);
      req.end();
    });
    fs.writeFileSync(pinned, peer);
    const r = await call(port, { path: '/api/v1/status', as: people.alice, ca: pinned, servername: 'any-server' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.fingerprint, logged[2], 'the fingerprint logged is the one served');
    assert.equal(r.keyType, logged[1] === 'Ed25519' ? 'ed25519' : 'ec');
    assert.equal(logged[1], 'Ed25519', "Node 26's TLS serves Ed25519");
    assert.equal(r.names, 'DNS:any-server');
    const id = await call(port, { path: '/api/v1/logs', as: people.frank, ca: pinned, servername: 'any-server' });
    assert.equal(id.status, 200, 'the identity CA reads');
    assert.equal(
      (
        await call(port, {
          method: 'POST',
          path: '/api/v1/retry',
          as: people.frank,
          ca: pinned,
          servername: 'any-server',
        })
      ).status,
      403,
    );
  });

  test('a generated certificate and no CA at all: the page over HTTPS, every RPC 403 saying there is no CA', async () => {
    const { server, port, log } = await serve({}, { generateMissingCert: true });
    servers.push(server);
    assert.match(log.lines.join('\n'), /no CA for client certificates, so no RPC or shell/);
    const fp = /sha256 ([0-9A-F:]{95})/.exec(log.lines.join('\n'))![1];
    const req = (p: string) =>
      new Promise<{ status: number; body: string; fp?: string }>((resolve, reject) => {
        const q = https.request(
          { host: '127.0.0.1', port, path: p, rejectUnauthorized: false, agent: false },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                body,
                fp: (res.socket as tls.TLSSocket).getPeerX509Certificate()?.fingerprint256,
              }),
            );
          },
        );
        q.on('error', reject);
        q.end();
      });
    const page = await req('/');
    assert.equal(page.status, 200);
    assert.equal(page.fp, fp);
    const rpc = await req('/api/v1/status');
    assert.equal(rpc.status, 403);
    assert.match(JSON.parse(rpc.body).detail, /no CA for client certificates/);
  });

  test('neither a certificate nor -generateMissingWebcert: plain HTTP only, as before', async () => {
    const { server, port, log } = await serve({ ca }, {});
    servers.push(server);
    assert.match(log.lines.join('\n'), /read-only: no .*installer certificate and key/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
    await assert.rejects(call(port, { path: '/', ca, servername: 'installer' }));
  });
});
