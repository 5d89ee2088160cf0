// The short screens of the wizard (Welcome, Language, Keyboard, Host name, Time zone, Root
// password): their defaults, what each typed line becomes, and what is refused, with the message.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { sha512Crypt } from '../../util/sha512-crypt.ts';
import { parseFacts } from '../facts.ts';
import { answerScreen, emptyState, promptText, type Screen, type WizardState } from './model.ts';
import {
  checkTimezone,
  hostnameScreen,
  keyboardScreen,
  languageScreen,
  passwordScreen,
  timezoneScreen,
  welcomeScreen,
} from './screens.ts';

const factsFile = path.join(import.meta.dirname, 'testdata', 'facts.json');
const facts = parseFacts(fs.readFileSync(factsFile, 'utf8'), factsFile);
const fresh = () => emptyState(facts, { salt: 'wizardsalt' });
const done = (r: ReturnType<typeof answerScreen>): WizardState => {
  assert.ok('state' in r, `refused: ${'problems' in r ? r.problems.join('; ') : ''}`);
  return r.state;
};
const defaults = (s: Screen, st: WizardState) => answerScreen(s, st, ['']).asked.map((f) => f.default);

test('Welcome: says what the wizard does, what this machine has, and which sections were given', () => {
  const body = welcomeScreen.body({ ...fresh(), given: ['language', 'rootPassword'] }).join('\n');
  assert.match(body, /head node of a cluster/);
  assert.match(body, /UEFI firmware, 3 disks, 2 network interfaces/);
  assert.match(
    body,
    /Given already: language, root password\. Their screens are skipped where what was given passes; Back still reaches them/,
  );
  const r = answerScreen(welcomeScreen, fresh(), ['']);
  assert.equal(promptText(r.asked[0]), 'Press Enter to begin: ');
  done(r);
});

test('Language and Keyboard: en_US.UTF-8 and us by default, the given ones when given, refused with the schema words', () => {
  assert.deepEqual(defaults(languageScreen, fresh()), ['en_US.UTF-8']);
  assert.deepEqual(defaults(keyboardScreen, fresh()), ['us']);
  const given = { ...fresh(), answers: { cradleSetup: 1 as const, language: 'de_DE.UTF-8', keyboard: 'de' } };
  assert.deepEqual(defaults(languageScreen, given), ['de_DE.UTF-8']);
  assert.deepEqual(defaults(keyboardScreen, given), ['de']);
  assert.equal(done(answerScreen(languageScreen, fresh(), ['fr_FR.UTF-8'])).answers.language, 'fr_FR.UTF-8');
  assert.equal(done(answerScreen(keyboardScreen, fresh(), [''])).answers.keyboard, 'us');
  const bad = answerScreen(languageScreen, fresh(), ['German', 'de_DE.UTF-8']);
  assert.deepEqual(bad.fieldProblems, ["'German': expected a locale such as en_US.UTF-8"]);
  assert.equal(done(bad).answers.language, 'de_DE.UTF-8');
  assert.deepEqual(answerScreen(keyboardScreen, fresh(), ['US keyboard', 'us']).fieldProblems, [
    "'US keyboard': expected a keymap name such as us or de-latin1",
  ]);
  // Skipped only when given, and valid.
  assert.equal(languageScreen.prefilled({ ...given, given: ['language'] }), true);
  assert.equal(languageScreen.prefilled(given), false);
});

test('Host name: no default; fully qualified, kept in lower case', () => {
  const r = answerScreen(hostnameScreen, fresh(), ['', 'head', 'Head.Cluster.Example']);
  assert.deepEqual(r.fieldProblems, [
    'host name: an answer is needed here (there is no default)',
    "'head': expected a fully qualified host name, with its domain, such as head.cluster.example.com",
  ]);
  assert.equal(done(r).answers.hostname, 'head.cluster.example');
});

test('Time zone: UTC by default; names in any case; a city alone gets suggestions', () => {
  assert.deepEqual(defaults(timezoneScreen, fresh()), ['UTC']);
  assert.deepEqual(checkTimezone('europe/berlin'), { value: 'Europe/Berlin' });
  assert.deepEqual(checkTimezone('Berlin'), { problem: "there is no time zone 'Berlin': did you mean Europe/Berlin?" });
  assert.deepEqual(checkTimezone('Mars/Olympus'), {
    problem: "there is no time zone 'Mars/Olympus': give a region/city name such as Europe/Berlin, or UTC",
  });
  assert.equal(
    done(answerScreen(timezoneScreen, fresh(), ['Berlin', 'America/New York'])).answers.timezone,
    'America/New_York',
  );
});

test('Root password: asked twice, not echoed, at least 8 characters; only the SHA-512 crypt hash is kept', () => {
  const r = answerScreen(passwordScreen, fresh(), ['short', 'correct horse', 'correct horse']);
  assert.ok(r.asked.every((f) => f.secret));
  assert.deepEqual(r.fieldProblems, ['a root password has at least 8 characters: this one has 5']);
  const st = done(r);
  assert.deepEqual(st.answers.rootPassword, { hash: sha512Crypt('correct horse', 'wizardsalt') });
  assert.doesNotMatch(JSON.stringify(st), /correct horse/);
  const differ = answerScreen(passwordScreen, fresh(), ['correct horse', 'correct hose']);
  assert.deepEqual('problems' in differ && differ.problems, [
    'the two passwords differ: type the password twice, the same',
  ]);
  // Once set (or given), Enter keeps it and the second prompt is not asked.
  const again = answerScreen(passwordScreen, st, ['']);
  assert.equal(again.asked.length, 1);
  assert.equal(promptText(again.asked[0]), 'root password [keep the one set]: ');
  assert.deepEqual(done(again).answers.rootPassword, st.answers.rootPassword);
});
