// The lab head node's wizard script (test/support/wizard-script.ts), rehearsed in seconds before a
// VM run of minutes plays it on the head node's serial console: the wizard runs in a PTY through
// test/support/wizard-driver.ts with the head node's facts (src/lab/testdata/head-facts.json) and
// a stand-in medium holding an OS kit and the Cradle kit, on a terminal like the head node's
// console (TERM=linux, no locale, a tty reporting 0x0). The script, Back and refusals included,
// must reach the end, and the answer file left must hold the lab's answers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pty from '@lydell/node-pty';
import { parseAnswers } from '../src/setup/answers.ts';
import { sha512Crypt } from '../src/util/sha512-crypt.ts';
import { repoRoot, tmpDir } from './helpers.ts';
import { PtySession } from './support/terminal-session.ts';
import { buildTestKit } from './support/test-kits.ts';
import { labWizardAnswers, labWizardScript } from './support/wizard-script.ts';

const node = path.join(repoRoot, 'node_modules', '.bin', 'node');
const driver = path.join(repoRoot, 'test', 'support', 'wizard-driver.ts');
const headFacts = path.join(repoRoot, 'src', 'lab', 'testdata', 'head-facts.json');
const PASSWORD = 'lab head password';

let work: string;
let kitsDir: string;

before(async () => {
  work = tmpDir('cradle-setup-wizard-lab-');
  kitsDir = path.join(work, 'kits');
  fs.mkdirSync(kitsDir);
  await buildTestKit(kitsDir, {
    name: 'debian',
    version: '12',
    os: 'debian-12',
    files: { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n' },
  });
  await buildTestKit(kitsDir, {
    name: 'cradle',
    version: '0.1.0',
    component: 'cradle-head:head:debian-12',
    files: { 'etc/cradle/head-node': 'yes\n' },
  });
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test("the lab's wizard script: Back once, three refusals, then the lab head node's answers", async () => {
  const out = path.join(work, 'answers.json');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !['LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'COLUMNS', 'LINES'].includes(k)) env[k] = v;
  // As the head-node ISO's init runs it: TERM=linux, no locale, a serial console's 0x0 tty; no salt
  // given, so the password's is random, as on the head node.
  const s = new PtySession(
    pty.spawn('sh', ['-c', 'stty cols 0 rows 0 && exec "$0" "$@"', node, driver, headFacts, kitsDir, out], {
      cols: 80,
      rows: 24,
      cwd: repoRoot,
      env: { ...env, TERM: 'linux' },
    }),
  );
  try {
    await s.run(labWizardScript({ password: PASSWORD }));
    assert.equal(await s.exit, 0, s.output);
  } finally {
    s.term.kill();
  }
  assert.doesNotMatch(s.output, new RegExp(PASSWORD), 'the password is never echoed');
  assert.equal(s.output.match(/Not accepted:/g)?.length, 3, 'three refusals');

  const answers = parseAnswers(fs.readFileSync(out, 'utf8'), out);
  const { rootPassword, ...rest } = answers;
  assert.deepEqual(rest, labWizardAnswers);
  const hash = rootPassword?.hash ?? '';
  const salt = /^\$6\$([^$]+)\$/.exec(hash)?.[1];
  assert.ok(salt, `a SHA-512 crypt hash: ${hash}`);
  assert.equal(sha512Crypt(PASSWORD, salt), hash, 'the hash is of the password typed');
});
