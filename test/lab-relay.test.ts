// The host's way to the lab's head node, as root, in a network namespace this test creates: a real
// `cradle server` (HTTPS with mutual TLS) at the head node's address 10.1.0.1 inside it, the relay
// (src/lab/relay.ts) beside it on a unix socket, and from the host HeadApi with the lab operator's
// certificate and the server's pinned fingerprint, and the plain-HTTP dashboard proxy on
// 127.0.0.1 that a browser uses. The host gets no address, route or port on the lab's network.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type DashboardProxy, HeadApi, HeadPinError, startDashboardProxy } from '../src/lab/head-api.ts';
import { type LabPki, labPki } from '../src/lab/lab-pki.ts';
import { LabNetwork } from '../src/lab/network.ts';
import { relayCommand } from '../src/lab/relay.ts';
import { cradleBin, isRoot, removeWorkDir, tmpDir } from './helpers.ts';
import { until } from './support/wait.ts';

const HEAD = '10.1.0.1';
const NS = `cradle-e2e-relay-${process.pid}`;

describe('the lab head node through the relay', { skip: !isRoot() && 'needs root (network namespaces)' }, () => {
  let work: string;
  let net: LabNetwork | undefined;
  let pki: LabPki;
  let db: string;
  let socket: string;
  let api: HeadApi;
  let proxy: DashboardProxy | undefined;
  let server: ChildProcess | undefined;
  let fingerprint: string;

  const logText = (name: string) => fs.readFileSync(path.join(work, name), 'utf8');
  /** `cradle server` serving HTTP and HTTPS only, at the head node's address in the namespace. */
  const startHeadServer = async () => {
    const log = path.join(work, 'server.log');
    const from = fs.existsSync(log) ? fs.statSync(log).size : 0;
    const args = ['server', '--roles', 'http', '--db', db, '--address', HEAD, '--http-port', '6977'];
    const tls = ['--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--tls-ca', pki.ca];
    server = net!.spawn([cradleBin, ...args, ...tls], log);
    await until(
      'the head node boot server',
      () => /HTTPS on the same port/.test(logText('server.log').slice(from)),
      30_000,
    );
  };
  const stopHeadServer = async () => {
    const s = server!;
    if (s.exitCode !== null || s.signalCode !== null) return;
    const exited = new Promise((r) => s.once('exit', r));
    s.kill('SIGTERM');
    await exited;
  };

  before(async () => {
    work = tmpDir('cradle-lab-relay-');
    pki = await labPki(path.join(work, 'pki'), HEAD);
    fingerprint = new X509Certificate(fs.readFileSync(pki.server.cert)).fingerprint256;
    db = `sqlite:${path.join(work, 'inventory.db')}`;
    execFileSync(cradleBin, ['machine', 'add', 'node1', '--db', db, '--mac', 'de:ad:be:ef:00:01', '--state', 'birth']);
    net = new LabNetwork({ namespace: NS, address: '10.1.0.2', prefix: 24, bridge: 'br-prov' });
    net.create();
    // The head node's own address, held here by the namespace in the VM's place.
    execFileSync('ip', ['-n', NS, 'address', 'add', `${HEAD}/24`, 'dev', net.bridge]);
    await startHeadServer();
    socket = path.join(work, 'head.sock');
    net.spawn(relayCommand(socket, `${HEAD}:6977`), path.join(work, 'relay.log'));
    await until('the relay', () => /relaying /.test(logText('relay.log')), 30_000);
    api = new HeadApi({ socket, ...pki.operator, fingerprint, timeoutMs: 10_000 });
  });

  after(async () => {
    try {
      await proxy?.close();
      await net?.destroy();
    } finally {
      removeWorkDir(work);
    }
  });

  test('the host holds no address of the lab network', () => {
    assert.doesNotMatch(execFileSync('ip', ['-4', 'address'], { encoding: 'utf8' }), /10\.1\.0\./);
  });

  test("HeadApi reaches the machine API with the operator's certificate and the pinned server", async () => {
    assert.equal(await api.serving(), true);
    const machines = await api.machines();
    assert.deepEqual(
      machines.map((m) => [m.hostname, m.state, m.progress]),
      [['node1', 'birth', null]],
    );
    const one = await api.machine('node1');
    assert.equal(one.machine.hostname, 'node1');
    assert.deepEqual(one.machine.macs, ['de:ad:be:ef:00:01']);
    assert.equal(one.progress, null);
    assert.ok(Array.isArray(one.history));
    await assert.rejects(api.machine('nobody'), /404 unknown machine: no machine named nobody/);
    const page = await api.get('/');
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /node1/);
  });

  test("a pin that is not the head node's certificate is refused, naming both fingerprints", async () => {
    const other = new X509Certificate(fs.readFileSync(pki.operator.cert)).fingerprint256;
    const wrong = new HeadApi({ socket, ...pki.operator, fingerprint: other });
    const refused = (err: unknown) =>
      err instanceof HeadPinError && err.message.includes(fingerprint) && err.message.includes(other);
    await assert.rejects(wrong.get('/api/v1/machines'), refused);
    await assert.rejects(wrong.serving(), refused);
    assert.throws(() => new HeadApi({ socket, ...pki.operator, fingerprint: 'AB:CD' }), /64 hex digits as AB:CD/);
  });

  test('the dashboard proxy on 127.0.0.1 serves the head node to a plain fetch, and 502 while it is down', async () => {
    proxy = await startDashboardProxy(api, { port: 0 });
    assert.match(proxy.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(proxy.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(page.headers.get('strict-transport-security'), null);
    assert.match(await page.text(), /node1/);
    const script = await fetch(new URL('dashboard.js', proxy.url));
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    await script.text();
    const listing = await fetch(new URL('api/v1/machines', proxy.url));
    assert.equal(((await listing.json()) as { machines: { hostname: string }[] }).machines[0].hostname, 'node1');
    const post = await fetch(proxy.url, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    await post.text();

    await stopHeadServer();
    const down = await fetch(proxy.url);
    assert.equal(down.status, 502);
    assert.match(await down.text(), /head node is unreachable: the head node does not answer through/);
    assert.equal(await api.serving(), false);

    await startHeadServer();
    await until('the head node serving again', () => api.serving(), 30_000);
    const back = await fetch(new URL('machines/node1', proxy.url));
    assert.equal(back.status, 200);
    assert.match(await back.text(), /de:ad:be:ef:00:01/);
  });
});
