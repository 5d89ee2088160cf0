// TLS on Cradle's servers as a scanner (testssl.sh, sslscan) sees it, with openssl's s_client as
// the peer: TLS 1.2 and 1.3 only, on TLS 1.2 only AEAD suites with forward secrecy (no CBC, so
// nothing for LUCKY13), HSTS and the usual security headers on HTTPS replies. Real `cradle server`
// and `cradle imageserver` processes on loopback.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProcess, type Started } from './abuse/targets.ts';
import { cradleBin, curlStatus, tmpDir } from './helpers.ts';
import { makeTestPki, type TestPki } from './pki-fixtures.ts';

/** What s_client says of a handshake offering only `args`' versions and suites. */
function handshake(
  port: number,
  client: { cert: string; key: string },
  args: string[],
): { ok: boolean; cipher?: string; out: string } {
  // With a client certificate: the image server requires one in the handshake.
  const r = spawnSync(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-cert',
      client.cert,
      '-key',
      client.key,
      ...args,
    ],
    { input: '', encoding: 'utf8', timeout: 20_000 },
  );
  const out = `${r.stdout}\n${r.stderr}`;
  const cipher = /Cipher is (\S+)/.exec(out)?.[1];
  return { ok: r.status === 0 && cipher !== undefined && cipher !== '(NONE)', cipher, out };
}

const CBC_SUITES =
  'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA:AES128-SHA256';

describe('TLS hygiene of the servers', () => {
  let work: string;
  let pki: TestPki;
  const servers: Started[] = [];
  const ports: Record<'boot' | 'image', number> = { boot: 0, image: 0 };

  before(async () => {
    work = tmpDir('cradle-tls-');
    pki = await makeTestPki(work, 'localhost');
    const tlsArgs = ['--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--tls-ca', pki.ca];
    const boot = await startProcess(
      [
        cradleBin,
        'server',
        '--db',
        `sqlite:${path.join(work, 'db')}`,
        '--roles',
        'http',
        '--address',
        '127.0.0.1',
        '--http-port',
        '0',
        ...tlsArgs,
      ],
      /HTTP boot on http:\/\/127\.0\.0\.1:(\d+)/,
    );
    servers.push(boot);
    ports.boot = Number(boot.match[1]);
    fs.mkdirSync(path.join(work, 'tree'));
    fs.writeFileSync(path.join(work, 'tree', 'f'), 'x');
    spawnSync(cradleBin, ['image', 'add', 'tls/1', path.join(work, 'tree'), '--store', path.join(work, 'store')]);
    const image = await startProcess(
      [
        cradleBin,
        'imageserver',
        '--store',
        path.join(work, 'store'),
        '--listen',
        '127.0.0.1',
        '--port',
        '0',
        ...tlsArgs,
      ],
      /on https:\/\/127\.0\.0\.1:(\d+)/,
    );
    servers.push(image);
    ports.image = Number(image.match[1]);
  });
  after(async () => {
    for (const s of servers) await s.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  for (const which of ['boot', 'image'] as const) {
    test(`${which} server: TLS 1.3, and TLS 1.2 with AEAD suites only`, () => {
      const port = ports[which];
      const tls13 = handshake(port, pki.operator, ['-tls1_3']);
      assert.ok(tls13.ok, tls13.out);
      const gcm = handshake(port, pki.operator, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
      assert.ok(gcm.ok && gcm.cipher === 'ECDHE-ECDSA-AES128-GCM-SHA256', gcm.out);
      const cbc = handshake(port, pki.operator, ['-tls1_2', '-cipher', CBC_SUITES]);
      assert.ok(!cbc.ok, `a CBC suite was accepted: ${cbc.cipher}`);
      const old = handshake(port, pki.operator, ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0']);
      assert.ok(!old.ok, `TLS 1.1 was accepted: ${old.cipher}`);
    });
  }

  test('the dashboard over HTTPS: HSTS and the security headers', async () => {
    const r = await curlStatus([
      '-D',
      '-',
      '--cacert',
      pki.ca,
      '--cert',
      pki.operator.cert,
      '--key',
      pki.operator.key,
      '--connect-to',
      `localhost:${ports.boot}:127.0.0.1:${ports.boot}`,
      `https://localhost:${ports.boot}/`,
    ]);
    assert.equal(r.status, 200, r.body);
    for (const h of [
      /^strict-transport-security: max-age=\d+/im,
      /^x-frame-options: DENY/im,
      /^x-content-type-options: nosniff/im,
      /^content-security-policy: .*frame-ancestors 'none'/im,
      /^referrer-policy: no-referrer/im,
    ])
      assert.match(r.body, h);
    const refused = await curlStatus([
      '-D',
      '-',
      '--cacert',
      pki.ca,
      '--connect-to',
      `localhost:${ports.boot}:127.0.0.1:${ports.boot}`,
      `https://localhost:${ports.boot}/`,
    ]);
    assert.equal(refused.status, 403);
    assert.match(refused.body, /^strict-transport-security:/im, 'on a refusal too');
  });
});
