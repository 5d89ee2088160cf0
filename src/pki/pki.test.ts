// Certificates checked by peers: openssl verifies and prints them, and node:tls (OpenSSL) runs a
// mutual-TLS handshake on loopback with them, refusing the wrong ones.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { CA_CERT, CA_KEY, createCa, issueCertificate, MAX_SERVER_DAYS, profile } from './pki.ts';

const openssl = (...args: string[]) =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Connects with `client` (or no certificate) to a server that requires one signed by `ca`. */
async function handshake(
  server: { cert: string; key: string },
  ca: string,
  client?: { cert: string; key: string },
): Promise<{ ok: boolean; error?: string }> {
  const srv = tls.createServer(
    {
      cert: fs.readFileSync(server.cert),
      key: fs.readFileSync(server.key),
      ca: fs.readFileSync(ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (s) => s.end('hello\n'),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'boot.lab.test',
        ca: fs.readFileSync(ca),
        ...(client ? { cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) } : {}),
      });
      let data = '';
      s.on('data', (d) => (data += d));
      s.on('end', () => resolve(data === 'hello\n' ? { ok: true } : { ok: false, error: 'closed without a greeting' }));
      s.on('error', (err) => resolve({ ok: false, error: err.message }));
    });
  } finally {
    srv.close();
  }
}

describe('pki', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-pki-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a CA, a server and a client certificate that openssl verifies, with the right uses and names', async () => {
    const ca = path.join(dir, 'ca');
    await createCa(ca, { name: 'Cradle test CA', days: 30 });
    assert.equal(fs.statSync(path.join(ca, CA_KEY)).mode & 0o777, 0o600);
    const server = await issueCertificate(
      ca,
      { kind: 'server', name: 'boot.lab.test', dns: ['boot.lab.test'], ips: ['10.77.0.1'], days: 30 },
      path.join(dir, 'server'),
    );
    const client = await issueCertificate(
      ca,
      { kind: 'client', name: 'operator@lab', days: 30 },
      path.join(dir, 'client'),
    );
    const caFile = path.join(ca, CA_CERT);
    assert.match(openssl('verify', '-CAfile', caFile, '-purpose', 'sslserver', server.cert), /: OK/);
    assert.match(openssl('verify', '-CAfile', caFile, '-purpose', 'sslclient', client.cert), /: OK/);
    assert.throws(
      () => openssl('verify', '-CAfile', caFile, '-purpose', 'sslserver', client.cert),
      'a client certificate is not a server certificate',
    );
    const text = openssl('x509', '-in', server.cert, '-noout', '-text');
    assert.match(text, /Subject: CN ?= ?boot\.lab\.test/);
    assert.match(text, /DNS:boot\.lab\.test, IP Address:10\.77\.0\.1/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /CA:FALSE/);
    assert.match(openssl('x509', '-in', caFile, '-noout', '-text'), /CA:TRUE, pathlen:0/);
    assert.equal(fs.statSync(client.key).mode & 0o777, 0o600);
    // The key matches its certificate.
    assert.equal(
      openssl('pkey', '-in', server.key, '-pubout'),
      openssl('x509', '-in', server.cert, '-noout', '-pubkey'),
    );
    // The installer's one certificate serves its status port and is a client of the servers.
    const installer = await issueCertificate(
      ca,
      { kind: 'installer', name: 'installer', days: 30 },
      path.join(dir, 'installer'),
    );
    assert.match(openssl('verify', '-CAfile', caFile, '-purpose', 'sslserver', installer.cert), /: OK/);
    assert.match(openssl('verify', '-CAfile', caFile, '-purpose', 'sslclient', installer.cert), /: OK/);
    assert.match(openssl('x509', '-in', installer.cert, '-noout', '-text'), /DNS:installer/);
  });

  test("mutual TLS: the CA's client certificate is accepted; none, an expired one and another CA's are refused", async () => {
    const ca = path.join(dir, 'ca');
    const caFile = path.join(ca, CA_CERT);
    const server = { cert: path.join(dir, 'server/cert.pem'), key: path.join(dir, 'server/key.pem') };
    const good = { cert: path.join(dir, 'client/cert.pem'), key: path.join(dir, 'client/key.pem') };
    assert.deepEqual(await handshake(server, caFile, good), { ok: true });
    const none = await handshake(server, caFile);
    assert.equal(none.ok, false, 'no certificate');
    const expired = await issueCertificate(
      ca,
      { kind: 'client', name: 'old', days: 1, notAfter: new Date(Date.now() - 86_400_000) },
      path.join(dir, 'expired'),
    );
    assert.equal((await handshake(server, caFile, expired)).ok, false, 'expired');
    const other = path.join(dir, 'other-ca');
    await createCa(other, { name: 'Someone else', days: 30 });
    const stranger = await issueCertificate(
      other,
      { kind: 'client', name: 'stranger', days: 30 },
      path.join(dir, 'stranger'),
    );
    assert.equal((await handshake(server, caFile, stranger)).ok, false, 'signed by another CA');
    // A server certificate presented as a client certificate is refused too (wrong extended key usage).
    assert.equal((await handshake(server, caFile, server)).ok, false, 'a server certificate as a client');
  });

  test('nothing is overwritten; bad names and a missing CA are clear errors', async () => {
    await assert.rejects(
      createCa(path.join(dir, 'ca'), { name: 'again', days: 1 }),
      /already exist.*never overwritten/,
    );
    await assert.rejects(
      issueCertificate(path.join(dir, 'ca'), { kind: 'client', name: 'x', days: 1 }, path.join(dir, 'client')),
      /already exist/,
    );
    await assert.rejects(
      issueCertificate(path.join(dir, 'nowhere'), { kind: 'client', name: 'x', days: 1 }, path.join(dir, 'x')),
      /no usable certificate authority.*cradle pki init/,
    );
    assert.throws(() => profile({ kind: 'server', name: 'bad name', days: 1 }), /certificate name 'bad name'/);
    assert.throws(
      () => profile({ kind: 'server', name: 'boot', ips: ['10.0.0.0/24'], days: 1 }),
      /--ip 10\.0\.0\.0\/24: give an IPv4 or IPv6 address/,
    );
    assert.throws(
      () => profile({ kind: 'server', name: 'boot', dns: ['bad_name'], days: 1 }),
      /--dns bad_name: not a DNS name/,
    );
    // A CA whose key is not its certificate's (a half-done re-init) signs nothing.
    const mixed = path.join(dir, 'mixed');
    await createCa(mixed, { name: 'first', days: 1 });
    const second = path.join(dir, 'second');
    await createCa(second, { name: 'second', days: 1 });
    fs.copyFileSync(path.join(second, CA_KEY), path.join(mixed, CA_KEY));
    await assert.rejects(
      issueCertificate(mixed, { kind: 'client', name: 'x', days: 1 }, path.join(dir, 'mixed-out')),
      /is not the key of its ca\.pem/,
    );
    assert.equal(fs.existsSync(path.join(dir, 'mixed-out', 'key.pem')), false, 'no key left behind');
  });

  test('a server answers to its own name: a host name as DNS, an address as IP, besides --dns and --ip', async () => {
    const ca = path.join(dir, 'ca');
    const byName = await issueCertificate(
      ca,
      { kind: 'server', name: 'boot1.example', ips: ['10.0.0.1'], days: 30 },
      path.join(dir, 'byname'),
    );
    assert.match(
      openssl('x509', '-in', byName.cert, '-noout', '-ext', 'subjectAltName'),
      /DNS:boot1\.example, IP Address:10\.0\.0\.1/,
    );
    const byIp = await issueCertificate(ca, { kind: 'server', name: '10.77.0.1', days: 30 }, path.join(dir, 'byip'));
    assert.match(openssl('x509', '-in', byIp.cert, '-noout', '-ext', 'subjectAltName'), /IP Address:10\.77\.0\.1/);
    assert.doesNotMatch(openssl('x509', '-in', byIp.cert, '-noout', '-ext', 'subjectAltName'), /DNS:/);
    // Never valid longer than its CA (30 days here).
    const long = await issueCertificate(ca, { kind: 'client', name: 'long', days: 3650 }, path.join(dir, 'long'));
    const end = Date.parse(openssl('x509', '-in', long.cert, '-noout', '-enddate').split('=')[1]);
    assert.ok(end <= Date.now() + 31 * 86_400_000, "capped at the CA's end");
  });

  test('a server certificate of the default 825 days is valid 825 days in all, the skew margin included; longer is refused', async () => {
    const ca = path.join(dir, 'long-ca');
    await createCa(ca, { name: 'Cradle long CA', days: 3650 });
    const server = await issueCertificate(
      ca,
      { kind: 'server', name: 'boot.lab.test', days: MAX_SERVER_DAYS },
      path.join(dir, 'server-825'),
    );
    const date = (which: string) =>
      Date.parse(openssl('x509', '-in', server.cert, '-noout', `-${which}`).split('=')[1]);
    assert.equal(
      (date('enddate') - date('startdate')) / 86_400_000,
      825,
      'Apple platforms refuse a TLS server certificate valid longer than 825 days',
    );
    const early = Date.now() - date('startdate');
    assert.ok(
      early > 0 && early <= 6 * 60_000,
      `valid from 5 minutes ago (for clocks a little behind), not ${early / 60_000} minutes`,
    );
    await assert.rejects(
      issueCertificate(ca, { kind: 'installer', name: 'installer', days: 826 }, path.join(dir, 'installer-826')),
      /at most 825 days/,
    );
    // Client certificates are not TLS servers: no such limit.
    await issueCertificate(ca, { kind: 'client', name: 'operator', days: 1000 }, path.join(dir, 'client-1000'));
  });
});
