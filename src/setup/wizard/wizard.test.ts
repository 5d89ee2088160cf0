// The wizard as a whole, over plain streams (test/setup-wizard.test.ts drives it through a PTY):
// 11 steps in order, Back, a partial answer file skipping what it holds, quitting (status 2), and
// an internal error (status 1, the log kept and named).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { writeKitFile } from '../../kit/container.ts';
import { encodeKit, kitSchema } from '../../kit/format.ts';
import { answersSchema } from '../answers.ts';
import { parseFacts } from '../facts.ts';
import { planSetup } from '../plan.ts';
import { runWizard, type WizardOptions } from './wizard.ts';

const factsFile = path.join(import.meta.dirname, 'testdata', 'facts.json');
const facts = parseFacts(fs.readFileSync(factsFile, 'utf8'), factsFile);
const M = `sha256:${'a'.repeat(64)}`;
let kitsDir: string;

before(async () => {
  kitsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-wizard-'));
  const kit = (name: string, k: object) =>
    writeKitFile(
      path.join(kitsDir, `${name}.kit`),
      encodeKit(kitSchema.parse({ cradleKit: 1, name, arch: 'x86_64', ...k })),
      undefined,
      (async function* () {})(),
    );
  await kit('demo', { version: '1.0', kind: 'os', os: 'demo-1', image: M });
  await kit('cradle', {
    version: '0.1.0',
    kind: 'addon',
    components: [{ name: 'cradle-head', nodeGroups: ['head'], os: ['demo-1'], manifest: M }],
  });
});
after(() => fs.rmSync(kitsDir, { recursive: true, force: true }));

/** Runs the wizard on typed lines (all typed ahead, then the end of the input). */
async function wizard(lines: string[], o: Partial<WizardOptions> = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (b: Buffer) => (text += b.toString()));
  input.end(lines.map((l) => `${l}\n`).join(''));
  const r = await runWizard({ input, output, facts, kitsDir, salt: 'wizardsalt', env: { LANG: 'C' }, ...o });
  return { ...r, text };
}

const steps = (text: string) => [...text.matchAll(/== Step (\d+) of 11/g)].map((m) => Number(m[1]));

const EXPECTED = {
  cradleSetup: 1,
  language: 'en_US.UTF-8',
  keyboard: 'us',
  timezone: 'Europe/Berlin',
  hostname: 'head.cluster.example',
  rootPassword: { hash: '$6$wizardsalt$' },
  network: {
    interfaces: [
      { match: { mac: '52:54:00:12:34:01' }, role: 'public', ipv4: 'dhcp' },
      { match: { mac: '52:54:00:12:34:02' }, role: 'provisioning', ipv4: '10.1.0.1/24' },
    ],
    gateway: 'dhcp',
    dns: 'dhcp',
  },
  disks: { pick: 'all', layout: 'default' },
  kits: { fromMedia: 'all', urls: [] },
};

const withoutHash = (a: unknown) => {
  const x = structuredClone(a) as { rootPassword?: { hash: string } };
  if (x.rootPassword) x.rootPassword.hash = x.rootPassword.hash.slice(0, 14);
  return x;
};

test('all 11 steps with their defaults, one Back; the answers parse and plan, the password only hashed', async () => {
  const r = await wizard([
    '', // 1 Welcome
    '', // 2 Language
    '<', // 3 Keyboard: Back
    '', // 2 again
    '', // 3
    ...['', '', '', ''], // 4 Network
    ...['', ''], // 5 Gateway/DNS
    'head.cluster.example', // 6
    'Europe/Berlin', // 7
    ...['correct horse', 'correct horse'], // 8
    ...['', ''], // 9 Partitioning
    ...['', ''], // 10 Kits
    'yes', // 11
  ]);
  assert.equal(r.status, 0, r.text);
  assert.deepEqual(steps(r.text), [1, 2, 3, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(withoutHash(r.answers), EXPECTED);
  const answers = answersSchema.parse(r.answers);
  assert.equal(planSetup(answers, facts).wipe.length, 2);
  assert.doesNotMatch(r.text, /correct horse/);
});

test('a partial answer file: its screens are skipped, Back reaches them, and what was given is kept', async () => {
  const prefill = {
    language: 'de_DE.UTF-8',
    keyboard: 'de',
    hostname: 'head.cluster.example',
    rootPassword: { plain: 'correct horse' },
    network: {
      interfaces: [{ match: { name: 'ens4' }, role: 'provisioning' as const, ipv4: '10.5.0.1/24' as const }],
      dns: ['192.0.2.53'],
    },
  };
  const r = await wizard(
    [
      '', // 1
      '<', // 7 Time zone: Back to 6 (given, skipped on the way)
      '', // 6 Host name: the given one
      'UTC', // 7
      ...['', ''], // 9
      ...['', ''], // 10
      'yes', // 11
    ],
    { prefill },
  );
  assert.equal(r.status, 0, r.text);
  assert.deepEqual(steps(r.text), [1, 7, 6, 7, 9, 10, 11]);
  assert.match(r.text, /Given already: language, keyboard, network, host name, root password\./);
  assert.match(r.text, /host name \[head\.cluster\.example\]:/);
  const a = answersSchema.parse(r.answers);
  assert.deepEqual([a.language, a.keyboard, a.timezone], ['de_DE.UTF-8', 'de', 'UTC']);
  assert.deepEqual(a.network, prefill.network);
  assert.match(a.rootPassword?.hash ?? '', /^\$6\$wizardsalt\$/);
  assert.doesNotMatch(JSON.stringify(a), /correct horse/);
});

test('nodes, which no screen asks for: kept from the given answers, listed at the confirmation', async () => {
  const nodes = [
    { hostname: 'node01', mac: '52:54:00:aa:00:01', ip: '10.1.0.10', nodeGroup: 'compute' },
    { hostname: 'node02', mac: '52:54:00:aa:00:02', nodeGroup: 'compute' },
  ];
  const prefill = {
    ...EXPECTED,
    rootPassword: { plain: 'correct horse' },
    nodes: nodes.map(({ nodeGroup: _, ...n }) => n),
  } as unknown as WizardOptions['prefill'];
  const r = await wizard(['', '<', ...['', ''], 'yes'], { prefill });
  assert.equal(r.status, 0, r.text);
  assert.deepEqual(steps(r.text), [1, 11, 10, 11], 'Back from the confirmation reaches a given screen');
  assert.match(r.text, /node01 +52:54:00:aa:00:01 {2}10\.1\.0\.10 +compute/);
  assert.match(r.text, /node02 +52:54:00:aa:00:02 {2}pool address +compute/);
  assert.deepEqual(answersSchema.parse(r.answers).nodes, nodes);
});

test('q asks first: n goes on at the same prompt, y quits with status 2 and no answers', async () => {
  const r = await wizard(['', 'q', 'n', 'fr_FR.UTF-8', 'q', 'y']);
  assert.equal(r.status, 2);
  assert.equal(r.answers, undefined);
  assert.deepEqual(steps(r.text), [1, 2, 3]);
  assert.equal([...r.text.matchAll(/quit\? y\/N:/g)].length, 2);
  assert.match(r.text, /Setup quit: nothing was written\./);
});

test('the end of the input quits (status 2)', async () => {
  const r = await wizard(['', '']);
  assert.equal(r.status, 2);
  assert.deepEqual(steps(r.text), [1, 2, 3]);
});

test('an internal error: status 1, said so, with the log kept in a file named', async () => {
  const logFile = path.join(kitsDir, 'wizard.log');
  const r = await wizard(['', ''], {
    logFile,
    prefill: { kits: { fromMedia: 'all', urls: [{ url: 'https://kits.example/x.kit' }] } },
    lookUpUrl: async () => {
      throw new Error('the lookup broke');
    },
  });
  assert.equal(r.status, 1);
  assert.match(r.text, new RegExp(`internal error: the lookup broke\\nthe log is kept in ${logFile}`));
  assert.match(fs.readFileSync(logFile, 'utf8'), /internal error: Error: the lookup broke/);
  const bad = await wizard([], { logFile, prefill: { hostname: 'not a host' } });
  assert.equal(bad.status, 1);
  assert.match(bad.text, /the answers given to the wizard: 'hostname': expected a DNS domain/);
});
