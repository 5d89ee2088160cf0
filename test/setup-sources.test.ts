// Where a head node's answers and kits come from over the network, against a real HTTPS server on
// 127.0.0.1 with a certificate of its own CA, pinned by its SHA-256 fingerprint as a site would
// (cradle.answers-fingerprint, kits.urls[].fingerprint): fetched when the pin matches; refused,
// naming the cause, before any request is sent when it does not, and for a server that is not
// there or answers 404. Kits by URL are checked before the confirmation, so before any disk.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { fetchAnswers, probeKitUrls } from '../src/setup/source.ts';
import { cradleBin, cradleFails, tmpDir } from './helpers.ts';
import { type HttpsFiles, serveHttpsFiles } from './support/https-files.ts';

const run = promisify(execFile);
const testdata = path.resolve(import.meta.dirname, '../src/setup/testdata');
const headText = fs.readFileSync(path.join(testdata, 'head.yaml'), 'utf8');
const twoDisks = path.join(testdata, 'two-disks.json');
const WRONG = `${'AB:'.repeat(31)}AB`;

describe('answers and kits fetched over HTTPS, pinned', () => {
  let web: HttpsFiles;
  const work = tmpDir('cradle-setup-sources-');
  before(async () => {
    web = await serveHttpsFiles({ '/answers.yaml': headText, '/extra.kit': 'not really a kit' });
  });
  after(async () => {
    await web?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** head.yaml with kits named by URL. */
  const withKitUrl = (name: string, url: string, fingerprint?: string) => {
    const file = path.join(work, name);
    const pin = fingerprint ? `, fingerprint: "${fingerprint}"` : '';
    fs.writeFileSync(file, `${headText}kits:\n  fromMedia: all\n  urls: [{ url: "${url}"${pin} }]\n`);
    return file;
  };
  const setup = (...args: string[]) => run(cradleBin, ['setup', '--machine', twoDisks, ...args], { encoding: 'utf8' });

  test('answers from an https:// URL whose certificate has the pinned fingerprint', async () => {
    const { stdout } = await setup(
      '--answers',
      `${web.url}/answers.yaml`,
      '--answers-fingerprint',
      web.fingerprint,
      '--dry-run',
    );
    assert.match(stdout, /^answers from https:\/\/127\.0\.0\.1:\d+\/answers\.yaml/);
    assert.match(stdout, /dry run: nothing was touched/);
    assert.ok(web.requests.includes('/answers.yaml'));
  });

  test('a pinned fetch closes its connection once read: nothing keeps the setup waiting', {
    timeout: 60_000,
  }, async () => {
    const accepted = web.accepted();
    assert.equal(await fetchAnswers(`${web.url}/answers.yaml`, web.fingerprint), headText);
    // The request goes over the connection whose certificate was checked, not a second one.
    assert.equal(web.accepted() - accepted, 1, 'one TLS connection for one pinned GET');
    await probeKitUrls([{ url: `${web.url}/extra.kit`, fingerprint: web.fingerprint }]);
    // Waited for, not timed: a connection the client kept would keep this at 1 until the timeout.
    while ((await web.connections()) > 0) await new Promise((r) => setTimeout(r, 50));
  });

  test('a fingerprint that does not match: refused before a request is sent', async () => {
    const before = web.requests.length;
    await cradleFails(
      [
        'setup',
        '--answers',
        `${web.url}/answers.yaml`,
        '--answers-fingerprint',
        WRONG,
        '--machine',
        twoDisks,
        '--dry-run',
      ],
      /the answers at https:\/\/127\.0\.0\.1:\d+\/answers\.yaml: the server's certificate has fingerprint [0-9a-f]{64}, not the pinned (ab){32}: nothing was read/,
    );
    assert.equal(web.requests.length, before, 'no request reached the server');
  });

  test('an answers URL that is not there, or a server that is not: refused naming it', async () => {
    await cradleFails(
      ['setup', '--answers', `${web.url}/nope.yaml`, '--answers-fingerprint', web.fingerprint, '--machine', twoDisks],
      /the answers at https:\/\/127\.0\.0\.1:\d+\/nope\.yaml: the server answered 404 Not Found/,
    );
    await cradleFails(
      ['setup', '--answers', 'https://127.0.0.1:1/answers.yaml', '--machine', twoDisks],
      /the answers at https:\/\/127\.0\.0\.1:1\/answers\.yaml: .*ECONNREFUSED.*\(is the address right, the server up, the network configured\?\)/,
    );
  });

  test('kits by URL: checked before the confirmation, a wrong pin or a 404 refused there', async () => {
    const good = withKitUrl('good.yaml', `${web.url}/extra.kit`, web.fingerprint);
    const { stdout } = await setup('--answers', good);
    assert.match(stdout, /kits by URL answer: https:\/\/127\.0\.0\.1:\d+\/extra\.kit/);
    assert.match(stdout, /stopped at the confirmation/);

    const dry = await setup('--answers', good, '--dry-run');
    assert.match(dry.stdout, /nothing was touched; the kits by URL were not fetched/);

    await cradleFails(
      ['setup', '--machine', twoDisks, '--answers', withKitUrl('pin.yaml', `${web.url}/extra.kit`, WRONG)],
      /the kit at https:\/\/127\.0\.0\.1:\d+\/extra\.kit: the server's certificate has fingerprint .* not the pinned/,
    );
    await cradleFails(
      ['setup', '--machine', twoDisks, '--answers', withKitUrl('404.yaml', `${web.url}/gone.kit`, web.fingerprint)],
      /the kit at https:\/\/127\.0\.0\.1:\d+\/gone\.kit: the server answered 404 Not Found/,
    );
  });
});
