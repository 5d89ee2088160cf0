// The Kits and Confirmation screens: the medium's kits chosen, kits by URL, the refusal without an
// OS kit or without the Cradle kit; and the confirmation, which shows the whole plan, names every
// disk to be erased, and takes nothing but 'yes'.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { answersSchema } from '../answers.ts';
import { parseFacts } from '../facts.ts';
import { planSetup } from '../plan.ts';
import { confirmScreen, kitProblems, kitsScreen, parseKitUrl } from './final-screens.ts';
import { answerScreen, emptyState, type FoundKit, promptText, type WizardState } from './model.ts';

const factsFile = path.join(import.meta.dirname, 'testdata', 'facts.json');
const facts = parseFacts(fs.readFileSync(factsFile, 'utf8'), factsFile);
const OS: FoundKit = { source: 'demo.kit', name: 'demo', version: '1.0', kind: 'os', os: 'demo-1' };
const CRADLE: FoundKit = { source: 'cradle.kit', name: 'cradle', version: '0.1.0', kind: 'addon' };
const HELLO: FoundKit = { source: 'hello.kit', name: 'hello', version: '2', kind: 'addon' };
const withKits = (): WizardState => ({
  ...emptyState(facts, { kitsDir: '/media/kits' }),
  mediaKits: [OS, CRADLE, HELLO],
});
const done = (r: ReturnType<typeof answerScreen>): WizardState => {
  assert.ok('state' in r, `refused: ${'problems' in r ? r.problems.join('; ') : ''}`);
  return r.state;
};
const refused = (r: ReturnType<typeof answerScreen>) => ('problems' in r ? r.problems : []);
const URL1 = 'https://kits.example/slurm.kit';

test('Kits: the medium kits listed by name, version and kind; all by default, written as all', () => {
  const body = kitsScreen.body(withKits());
  assert.deepEqual(body.slice(0, 4), [
    'The kits on the installation medium (/media/kits):',
    '   1  demo/1.0 (OS kit, demo-1)            demo.kit',
    '   2  cradle/0.1.0 (add-on)                cradle.kit',
    '   3  hello/2 (add-on)                     hello.kit',
  ]);
  const r = answerScreen(kitsScreen, withKits(), ['', '']);
  assert.deepEqual(r.asked.map(promptText), [
    'kits from the medium (numbers or names, all or none) [all]: ',
    'kit URL 1 (- drops it, . ends) [.]: ',
  ]);
  assert.deepEqual(done(r).answers.kits, { fromMedia: 'all', urls: [] });
  assert.deepEqual(done(answerScreen(kitsScreen, withKits(), ['1 cradle', '.'])).answers.kits, {
    fromMedia: ['demo/1.0', 'cradle/0.1.0'],
    urls: [],
  });
});

test('Kits: refused without an OS kit, and without the Cradle kit, each with its message', () => {
  assert.deepEqual(refused(answerScreen(kitsScreen, withKits(), ['2 3', '.'])), [
    'no OS kit among the kits chosen (cradle/0.1.0 (add-on), hello/2 (add-on)): the head node and its compute nodes are installed from one; choose one from the medium or give its URL',
  ]);
  assert.deepEqual(refused(answerScreen(kitsScreen, withKits(), ['demo', '.'])), [
    "no Cradle kit among the kits chosen (demo/1.0 (OS kit, demo-1)): the add-on named 'cradle' brings Cradle's own services to the head node; choose it from the medium or give its URL",
  ]);
  assert.equal(refused(answerScreen(kitsScreen, withKits(), ['none', '.'])).length, 2);
  // An OS kit named cradle is not the Cradle kit.
  assert.equal(kitProblems([{ ...OS, name: 'cradle' }]).length, 1);
  assert.deepEqual(answerScreen(kitsScreen, withKits(), ['4', 'all', '.']).fieldProblems, [
    "there is no kit '4' on the medium: choose among 1 (demo/1.0), 2 (cradle/0.1.0), 3 (hello/2), all or none",
  ]);
});

test('Kits: URLs, with a fingerprint; looked up before commit, their kit.json counts; unreadable ones refused', () => {
  assert.deepEqual(parseKitUrl(`${URL1} ${'AB:'.repeat(31)}AB`), { url: URL1, fingerprint: `${'AB:'.repeat(31)}AB` });
  assert.deepEqual(parseKitUrl('ftp://x/y.kit'), {
    problem:
      "'ftp://x/y.kit' is not an https:// URL of a kit file (only https tells a site's kit from one put in its way)",
  });
  assert.deepEqual(parseKitUrl(`http://x/y.kit ${'ab'.repeat(32)}`), {
    problem:
      "'http://x/y.kit' is not an https:// URL of a kit file (only https tells a site's kit from one put in its way)",
  });
  assert.deepEqual(parseKitUrl(`${URL1} abc`), {
    problem: "'abc' is not a SHA-256 fingerprint: 64 hex digits, colons allowed",
  });
  const st = withKits();
  const entered = { media: '1', url1: URL1, url2: '.' };
  assert.deepEqual(kitsScreen.lookups?.(st, entered), [{ url: URL1 }]);
  const found = { ...st, urlKits: { [URL1]: { ...CRADLE, source: URL1 } } };
  assert.deepEqual(done(answerScreen(kitsScreen, found, ['1', URL1, '.'])).answers.kits, {
    fromMedia: ['demo/1.0'],
    urls: [{ url: URL1 }],
  });
  const broken = { ...st, urlKits: { [URL1]: { source: URL1, problem: 'the server answered 404 Not Found' } } };
  assert.deepEqual(refused(answerScreen(kitsScreen, broken, ['', URL1, '.'])), [
    `${URL1}: its kit.json cannot be read: the server answered 404 Not Found`,
  ]);
});

test('Kits: an unreadable kit file is shown with its problem, and "all" is then written as the readable ones', () => {
  const st = {
    ...withKits(),
    mediaKits: [OS, CRADLE, { source: 'junk.kit', problem: 'it is empty: not a Cradle kit' }],
  };
  assert.ok(kitsScreen.body(st).includes('   -  junk.kit: it is empty: not a Cradle kit'));
  assert.deepEqual(done(answerScreen(kitsScreen, st, ['', ''])).answers.kits, {
    fromMedia: ['demo/1.0', 'cradle/0.1.0'],
    urls: [],
  });
});

test('Kits: given kits pre-fill the screen, and skip it when they pass', () => {
  const st: WizardState = {
    ...withKits(),
    given: ['kits'],
    answers: { cradleSetup: 1, kits: { fromMedia: ['demo', 'cradle/0.1.0'], urls: [] } },
  };
  assert.equal(kitsScreen.prefilled(st), true);
  assert.deepEqual(answerScreen(kitsScreen, st, ['', '']).asked[0].default, '1 2');
  const noOs = { ...st, answers: { cradleSetup: 1 as const, kits: { fromMedia: ['cradle'], urls: [] } } };
  assert.equal(kitsScreen.prefilled(noOs), false);
});

const complete = (): WizardState => ({
  ...withKits(),
  salt: 'wizardsalt',
  answers: {
    cradleSetup: 1,
    language: 'en_US.UTF-8',
    keyboard: 'us',
    timezone: 'UTC',
    hostname: 'head.cluster.example',
    rootPassword: { hash: '$6$wizardsalt$abc' },
    network: {
      interfaces: [
        { match: { mac: '52:54:00:12:34:01' }, role: 'public', ipv4: 'dhcp' },
        { match: { mac: '52:54:00:12:34:02' }, role: 'provisioning', ipv4: '10.1.0.1/24' },
      ],
    },
    disks: { pick: 'all', layout: 'default' },
    kits: { fromMedia: 'all', urls: [] },
  },
});

test('Confirmation: the whole plan, every disk to be erased by model, serial and size; only yes goes on', () => {
  const body = confirmScreen.body(complete()).join('\n');
  assert.match(
    body,
    /ERASED \(every partition and file system on them\):\n {2}\/dev\/vda \(virtio disk, serial head-a, 30\.0 GB\)\n {2}\/dev\/vdb \(virtio disk, serial head-b, 30\.0 GB\)\n/,
  );
  assert.doesNotMatch(body, /sr0/);
  assert.match(body, /host name: {3}head\.cluster\.example/);
  assert.match(body, /kits chosen: demo\/1\.0 \(OS kit, demo-1\), cradle\/0\.1\.0 \(add-on\), hello\/2 \(add-on\)/);
  const r = answerScreen(confirmScreen, complete(), ['', 'y', 'YES']);
  assert.equal(promptText(r.asked[0]), 'Type yes to erase the disks above and install: ');
  assert.deepEqual(r.fieldProblems, [
    'Type yes to erase the disks above and install: an answer is needed here (there is no default)',
    'type yes to erase the disks and install, < to go back, or q to quit',
  ]);
  const answers = answersSchema.parse(done(r).answers);
  assert.equal(planSetup(answers, facts).wipe.length, 2);
});

test('Confirmation: answers that cannot be planned are named, and not confirmed', () => {
  const st = complete();
  const { hostname: _, ...rest } = st.answers;
  const broken = { ...st, answers: rest };
  assert.match(confirmScreen.body(broken).join('\n'), /cannot be planned yet:\n {2}the answers leave out 'hostname'/);
  assert.match(refused(answerScreen(confirmScreen, broken, ['yes']))[0], /leave out 'hostname'/);
});
