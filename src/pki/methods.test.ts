// The permitted-method list in certificates: Cradle writes it as Go's asn1.Marshal([]string) does
// (Dominator's and Keymaster's certificates), reads the ones openssl writes by hand the same way,
// matches Dominator's wildcards, and tells a certificate without a list from one with an empty one.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import {
  decodeMethodList,
  encodeMethodList,
  methodAllowed,
  parseMethodList,
  PERMITTED_METHODS_OID,
  permittedMethods,
} from './methods.ts';
import { createCa, issueCertificate, profile } from './pki.ts';

const openssl = (...args: string[]) =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const der = (file: string) => new X509Certificate(fs.readFileSync(file)).raw;

test('--methods: Service.Method entries, wildcards as parts, duplicates dropped; anything else refused naming the entry', () => {
  assert.deepEqual(parseMethodList('Installer.Shell, Installer.Status,Installer.Shell'), [
    'Installer.Shell',
    'Installer.Status',
  ]);
  assert.deepEqual(parseMethodList('Installer.*,*.*'), ['Installer.*', '*.*']);
  assert.throws(() => parseMethodList('Shell'), /--methods Shell: a method is Service\.Method/);
  assert.throws(() => parseMethodList('Installer.Sh*ll'), /--methods Installer\.Sh\*ll/);
  assert.throws(() => parseMethodList(' , '), /name at least one method/);
});

test("Dominator's matching: the method, its service's wildcard, or *.*", () => {
  assert.ok(methodAllowed(['Installer.Shell'], 'Installer.Shell'));
  assert.ok(!methodAllowed(['Installer.Status'], 'Installer.Shell'));
  assert.ok(methodAllowed(['Installer.*'], 'Installer.Retry'));
  assert.ok(!methodAllowed(['ImageServer.*'], 'Installer.Retry'));
  assert.ok(methodAllowed(['*.*'], 'Installer.Shell'));
  assert.ok(!methodAllowed([], 'Installer.Status'));
});

test("the extension's value is Go's asn1.Marshal([]string): PrintableString where it can, else UTF8String", () => {
  const hex = (s: string) => Buffer.from(s).toString('hex');
  assert.equal(Buffer.from(encodeMethodList(['Installer.Shell'])).toString('hex'), `3011130f${hex('Installer.Shell')}`);
  // '*' is not a PrintableString character.
  assert.equal(Buffer.from(encodeMethodList(['Installer.*'])).toString('hex'), `300d0c0b${hex('Installer.*')}`);
  const many = Array.from({ length: 20 }, (_, i) => `Service${i}.Method${i}`);
  assert.deepEqual(decodeMethodList(encodeMethodList(many)), many, 'long form lengths too');
  assert.throws(() => decodeMethodList(Buffer.from('0403616263', 'hex')), /not a SEQUENCE/);
});

test('a server certificate carries no method list', () => {
  assert.throws(
    () => profile({ kind: 'server', name: 'boot1', days: 1, methods: ['Installer.Shell'] }),
    /server certificate calls no method/,
  );
});

describe('certificates with and without the list', () => {
  let dir: string;
  let caDir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-methods-'));
    caDir = path.join(dir, 'ca');
    await createCa(caDir, { name: 'Methods CA', days: 30 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("cradle's: the list is read back; openssl shows Dominator's OID, not critical, and verifies the chain", async () => {
    const limited = await issueCertificate(
      caDir,
      { kind: 'client', name: 'bob', days: 7, methods: ['Installer.Status', 'Installer.*'] },
      path.join(dir, 'bob'),
    );
    const full = await issueCertificate(caDir, { kind: 'client', name: 'carol', days: 7 }, path.join(dir, 'carol'));
    assert.deepEqual(permittedMethods(der(limited.cert)), ['Installer.Status', 'Installer.*']);
    assert.equal(permittedMethods(der(full.cert)), undefined, 'no list: every method, as before the list');
    const text = openssl('x509', '-in', limited.cert, '-noout', '-text');
    assert.match(text, new RegExp(`${PERMITTED_METHODS_OID.replace(/\./g, '\\.')}:\\s*\\n`));
    assert.doesNotMatch(text, new RegExp(`${PERMITTED_METHODS_OID.replace(/\./g, '\\.')}: critical`));
    assert.match(
      openssl('verify', '-CAfile', path.join(caDir, 'ca.pem'), '-purpose', 'sslclient', limited.cert),
      /: OK/,
    );
  });

  test('cradle pki issue client NAME --methods: the list in the certificate; a bad entry refused naming it', () => {
    const cradle = fileURLToPath(new URL('../../bin/cradle', import.meta.url));
    const out = path.join(dir, 'cli-erin');
    const said = execFileSync(
      cradle,
      ['pki', 'issue', 'client', 'erin', '--methods', 'Installer.Shell,Installer.Status', '--dir', caDir, '--out', out],
      { encoding: 'utf8' },
    );
    assert.match(said, /may call Installer\.Shell, Installer\.Status/);
    assert.deepEqual(permittedMethods(der(path.join(out, 'cert.pem'))), ['Installer.Shell', 'Installer.Status']);
    const bad = spawnSync(
      cradle,
      ['pki', 'issue', 'client', 'erin', '--methods', 'Shell', '--dir', caDir, '--out', path.join(dir, 'cli-bad')],
      { encoding: 'utf8' },
    );
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--methods Shell: a method is Service\.Method/);
    assert.ok(!fs.existsSync(path.join(dir, 'cli-bad', 'key.pem')), 'nothing written');
  });

  test('one that openssl made, as another PKI would: PrintableString and UTF8String entries, critical or not', () => {
    for (const critical of [false, true]) {
      const conf = path.join(dir, `ext-${critical}.cnf`);
      fs.writeFileSync(
        conf,
        [
          '[req]',
          'distinguished_name = dn',
          '[dn]',
          '[ext]',
          `${PERMITTED_METHODS_OID} = ${critical ? 'critical,' : ''}ASN1:SEQUENCE:methods`,
          '[methods]',
          'm1 = PRINTABLESTRING:Installer.Shell',
          'm2 = UTF8String:Installer.*',
          'm3 = UTF8String:not-a-method',
        ].join('\n'),
      );
      const key = path.join(dir, `k-${critical}.pem`);
      const cert = path.join(dir, `c-${critical}.pem`);
      openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key);
      openssl(
        'req',
        '-x509',
        '-new',
        '-key',
        key,
        '-subj',
        '/CN=dave',
        '-days',
        '1',
        '-config',
        conf,
        '-extensions',
        'ext',
        '-out',
        cert,
      );
      // Entries that are not Service.Method are skipped, as Dominator's getPermittedMethods does.
      assert.deepEqual(permittedMethods(der(cert)), ['Installer.Shell', 'Installer.*'], `critical: ${critical}`);
    }
  });
});
