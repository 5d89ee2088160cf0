// The answer file at the boundary: YAML and JSON read alike, unknown keys and wrong types refused
// naming the key and the fix, what a zero-touch install still needs; the kernel command line's
// arguments; SHA-512 crypt checked against openssl (a real peer); the answers fetched over HTTPS
// with the server's certificate pinned, and refused when the pin or the server is wrong.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { makeTestPki, type TestPki } from '../../test/pki-fixtures.ts';
import { tmpDir } from '../../test/helpers.ts';
import { sha512Crypt } from '../util/sha512-crypt.ts';
import { AnswersError, missing, parseAnswers, parseSize } from './answers.ts';
import { setupBootArgs } from './cmdline.ts';
import { parseAnswersLocation, readAnswers } from './source.ts';

const head = fs.readFileSync(path.join(import.meta.dirname, 'testdata', 'head.yaml'), 'utf8');
const refused = (text: string, re: RegExp) =>
  assert.throws(
    () => parseAnswers(text, 'a.yaml'),
    (e) => e instanceof AnswersError && re.test(e.message),
  );

describe('the answer file', () => {
  it('YAML and the same in JSON read alike; a partial one says what the wizard would ask', () => {
    const yaml = parseAnswers(head, 'head.yaml');
    const json = parseAnswers(JSON.stringify(yaml), 'head.json');
    assert.deepEqual(json, yaml);
    assert.deepEqual(missing(yaml), []);
    assert.deepEqual(missing(parseAnswers('cradleSetup: 1\nhostname: h.example.com\n')), [
      'language',
      'keyboard',
      'timezone',
      'rootPassword',
      'network',
      'disks',
    ]);
    assert.equal(parseSize('40GB'), 40e9);
    assert.equal(parseSize('12 GiB'), 12 * 2 ** 30);
    assert.equal(parseSize('12 parsecs'), undefined);
  });

  it('refuses unknown keys, wrong types and bad values, naming the key and the fix', () => {
    refused(`${head}\nhostnme: x\n`, /'hostnme': unknown key/);
    refused(
      head.replace('role: public', 'role: public\n      mtu: 9000'),
      /'network\.interfaces\[0\]\.mtu': unknown key \(see docs\/setup\.md for the keys of network\.interfaces\[0\]\)/,
    );
    refused(head.replace('timezone: Europe/Berlin', 'timezone: Mars/Olympus'), /'timezone': expected a time zone name/);
    refused(head.replace('ipv4: 10.1.0.1/24', 'ipv4: 10.1.0.1'), /'network\.interfaces\[1\]\.ipv4'/);
    refused(head.replace('plain: correct horse battery', 'plain: short'), /at least 8 characters/);
    refused(head.replace('cradleSetup: 1', 'cradleSetup: 2'), /'cradleSetup': write 'cradleSetup: 1' at the top/);
    refused(`${head}\ndisks: { pick: biggest }\n`, /not valid YAML or JSON: .*(duplicate|unique)/i);
    refused('- just\n- a list\n', /expected keys such as 'cradleSetup: 1'/);
    refused(
      head.replace('match: { path: /dev/vd* }', 'match: { minSize: lots }'),
      /'disks\.match\.minSize': 'lots' is not a size/,
    );
  });

  it('nodes: MACs and names kept in lower case, node group compute by default; bad ones refused by key', () => {
    const a = parseAnswers(
      `${head}\nnodes:\n  - { hostname: Node01, mac: "52:54:00:AA:00:01", ip: 10.1.0.10 }\n  - { hostname: node02.cluster.example, mac: "52:54:00:aa:00:02", nodeGroup: gpu }\n`,
    );
    assert.deepEqual(a.nodes, [
      { hostname: 'node01', mac: '52:54:00:aa:00:01', ip: '10.1.0.10', nodeGroup: 'compute' },
      { hostname: 'node02.cluster.example', mac: '52:54:00:aa:00:02', nodeGroup: 'gpu' },
    ]);
    const node = (fields: string) => `${head}\nnodes:\n  - { ${fields} }\n`;
    refused(
      node('hostname: n1, mac: "52-54-00-aa-00-01"'),
      /'nodes\[0\]\.mac': expected a MAC address of six hex bytes/,
    );
    refused(node('hostname: -n1, mac: "52:54:00:aa:00:01"'), /'nodes\[0\]\.hostname': expected a host name/);
    refused(
      node('hostname: n1, mac: "52:54:00:aa:00:01", ip: 10.1.0.300'),
      /'nodes\[0\]\.ip': expected an IPv4 address/,
    );
    refused(node('hostname: n1'), /'nodes\[0\]\.mac'/);
    refused(
      node('hostname: n1, mac: "52:54:00:aa:00:01", group: gpu'),
      /'nodes\[0\]\.group': unknown key \(see docs\/setup\.md for the keys of nodes\[0\]\)/,
    );
  });

  it("operators: the CA's PEM certificate, and nothing else", () => {
    refused(`${head}\noperators: { ca: my-ca }\n`, /'operators\.ca': expected the PEM certificate of a CA/);
    refused(`${head}\noperators: { cert: x }\n`, /'operators\.cert': unknown key/);
  });

  it('the kernel command line: where the answers are, the wipe consent, canned settings', () => {
    assert.deepEqual(
      setupBootArgs('BOOT_IMAGE=/vmlinuz cradle.answers=label:CRADLE cradle.wipe=yes cradle.keyboard=de quiet'),
      { answers: 'label:CRADLE', wipe: true, dryRun: false, canned: { keyboard: 'de' } },
    );
    assert.equal(setupBootArgs('cradle.setup cradle.dry-run=yes').dryRun, true, 'a rehearsal from the boot menu');
    assert.equal(setupBootArgs('cradle.wipe=1').wipe, false, 'only an explicit yes consents');
    assert.deepEqual(parseAnswersLocation('/cradle/answers.yaml'), { kind: 'media', path: '/cradle/answers.yaml' });
    assert.throws(() => parseAnswersLocation('../etc/shadow'), /has no '\.\.'/);
    assert.throws(() => parseAnswersLocation('http://x/a.yaml', 'ab'.repeat(32)), /plain http, use https/);
    assert.throws(() => parseAnswersLocation('https://x/a.yaml', 'xyz'), /is not a SHA-256 fingerprint/);
  });

  it('SHA-512 crypt matches openssl passwd -6', () => {
    for (const [password, salt] of [
      ['Hello world!', 'saltstring'],
      ['correct horse battery', 'cradlesalt012345'],
      ['ünïcödé pässwörd with a long tail to pass one block of sixty-four bytes at least', 'Ab1./'],
    ])
      assert.equal(
        sha512Crypt(password, salt),
        execFileSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], {
          input: password,
          encoding: 'utf8',
        }).trim(),
      );
  });
});

describe('answers over HTTPS', () => {
  let work: string;
  let pki: TestPki;
  let server: https.Server;
  let base: string;
  let fingerprint: string;
  before(async () => {
    work = tmpDir('cradle-answers-');
    pki = await makeTestPki(work, 'localhost');
    server = https.createServer(
      { cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) },
      (req, res) => (req.url === '/head.yaml' ? res.end(head) : res.writeHead(404).end()),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fingerprint = new X509Certificate(fs.readFileSync(pki.server.cert)).fingerprint256;
  });
  after(() => {
    server.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('a pinned certificate is trusted without a CA; another fingerprint, a missing file or a dead server is refused', async () => {
    const got = await readAnswers(parseAnswersLocation(`${base}/head.yaml`, fingerprint));
    assert.equal(got.text, head);
    await assert.rejects(
      readAnswers(parseAnswersLocation(`${base}/head.yaml`, 'ab'.repeat(32))),
      /has fingerprint [0-9a-f]{64}, not the pinned abab[0-9a-f]*: nothing was read/,
    );
    await assert.rejects(readAnswers(parseAnswersLocation(`${base}/nosuch.yaml`, fingerprint)), /answered 404/);
    await assert.rejects(
      readAnswers(parseAnswersLocation(`${base}/head.yaml`)),
      /self[- ]signed|unable to verify|certificate/i,
    );
    await assert.rejects(
      readAnswers(parseAnswersLocation('https://127.0.0.1:1/head.yaml')),
      /ECONNREFUSED.*is the address right/,
    );
  });
});
