// `cradle server --operator-ca` on loopback, with curl as the peer: a site's own PKI (here a lab's
// CA) beside Cradle's site CA. Its client certificates read the machine API and the dashboard only
// when the server is given that CA, and never pass for the installer's: posting installer events
// with one is refused naming why, while the site's own installer certificate still reports.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openInventory } from '../src/inventory/open.ts';
import { createCa, issueCertificate } from '../src/pki/pki.ts';
import { cradleBin, curlStatus, tmpDir } from './helpers.ts';

interface Pair {
  cert: string;
  key: string;
}

/** `cradle server` with HTTP only, on a free loopback port; resolves with its HTTPS base URL. */
function startServer(args: string[], logFile: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(cradleBin, ['server', '--roles', 'http', '--address', '127.0.0.1', '--http-port', '0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('no "HTTP boot on" line within 30 s')), 30_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill();
      reject(new Error(`${err.message}; server log:\n${log}`));
    };
    child.stderr?.on('data', (b: Buffer) => {
      log += b.toString();
      fs.writeFileSync(logFile, log);
      const m = /HTTP boot on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: `https://127.0.0.1:${m[1]}` });
      }
    });
    child.once('exit', (code) => fail(new Error(`cradle server exited (${code})`)));
  });
}

describe('cradle server --operator-ca', () => {
  let work: string;
  let siteCa: string;
  let siteInstaller: Pair;
  let labOperator: Pair;
  let labInstaller: Pair;
  const servers: ChildProcess[] = [];
  let withLab: string;
  let withoutLab: string;

  const curl = (base: string, pathname: string, as: Pair, body?: string) =>
    curlStatus([
      '--cacert',
      siteCa,
      '--cert',
      as.cert,
      '--key',
      as.key,
      ...(body ? ['-X', 'POST', '-H', 'content-type: application/json', '--data', body] : []),
      `${base}${pathname}`,
    ]);
  const events = JSON.stringify({
    machine: { macs: ['de:ad:be:ef:00:01'] },
    events: [{ seq: 1, time: new Date().toISOString(), type: 'phase', phase: 'network', state: 'started' }],
  });

  before(async () => {
    work = tmpDir('cradle-operator-ca-');
    const site = path.join(work, 'site-ca');
    const lab = path.join(work, 'lab-ca');
    siteCa = await createCa(site, { name: 'Cradle CA of head', days: 30 });
    const labCa = await createCa(lab, { name: 'Lab', days: 30 });
    const server = await issueCertificate(
      site,
      { kind: 'server', name: '127.0.0.1', ips: ['127.0.0.1'], days: 7 },
      path.join(work, 'server'),
    );
    siteInstaller = await issueCertificate(
      site,
      { kind: 'installer', name: 'installer', days: 7 },
      path.join(work, 'i'),
    );
    labOperator = await issueCertificate(lab, { kind: 'client', name: 'lab', days: 7 }, path.join(work, 'lab'));
    // As the installer's, but of the lab's CA: the handshake accepts it, the events route must not.
    labInstaller = await issueCertificate(
      lab,
      { kind: 'installer', name: 'installer', days: 7 },
      path.join(work, 'li'),
    );

    const db = `sqlite:${path.join(work, 'inventory.db')}`;
    const inv = await openInventory(db);
    try {
      await inv.addSubnet({ id: 'loopback', gateway: '127.0.0.254', mask: '255.0.0.0', dnsServers: [], manage: false });
      await inv.addMachine({
        hostname: 'node1',
        macs: ['de:ad:be:ef:00:01'],
        ip: '127.0.0.1',
        tags: {},
        state: 'birth',
      });
    } finally {
      await inv.close();
    }
    const tls = ['--db', db, '--tls-cert', server.cert, '--tls-key', server.key, '--tls-ca', siteCa];
    const a = await startServer([...tls, '--operator-ca', labCa], path.join(work, 'with.log'));
    servers.push(a.child);
    const b = await startServer(tls, path.join(work, 'without.log'));
    servers.push(b.child);
    withLab = a.base;
    withoutLab = b.base;
  });

  after(async () => {
    await Promise.all(
      servers.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("the lab's operator certificate reads the API and the dashboard with --operator-ca, and not without", async () => {
    for (const p of ['/api/v1/machines', '/api/v1/machines/node1', '/']) {
      const ok = await curl(withLab, p, labOperator);
      assert.equal(ok.status, 200, `${p} with --operator-ca: ${ok.body}`);
      assert.match(ok.body, /node1/);
      const refused = await curl(withoutLab, p, labOperator);
      assert.equal(refused.status, 403, `${p} without --operator-ca: ${refused.body}`);
      assert.match(
        refused.body,
        /the client certificate of 'lab' is not accepted: it was not signed by this server's CA/,
      );
    }
    assert.match(
      fs.readFileSync(path.join(work, 'with.log'), 'utf8'),
      /also one of .*lab-ca\/ca\.pem \(operators only\)/,
    );
  });

  test("an operator CA's certificates never report as the installer; the site's installer still does", async () => {
    for (const [what, as] of [
      ["the lab CA's installer certificate", labInstaller],
      ["the lab's operator certificate", labOperator],
    ] as const) {
      const r = await curl(withLab, '/api/v1/installer/events', as, events);
      assert.equal(r.status, 403, `${what}: ${r.body}`);
      assert.match(
        r.body,
        /was not issued by this server's site CA \(--tls-ca\): an operator CA's certificates \(--operator-ca\) are accepted from operators only/,
      );
    }
    const machine = async () => JSON.parse((await curl(withLab, '/api/v1/machines/node1', labOperator)).body);
    assert.equal((await machine()).machine.state, 'birth', 'the refused events changed nothing');
    const r = await curl(withLab, '/api/v1/installer/events', siteInstaller, events);
    assert.equal(r.status, 204, r.body);
    assert.equal((await machine()).machine.state, 'installing');
  });
});
