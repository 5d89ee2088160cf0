// The Network and Gateway/DNS screens: Kusu's defaults (first NIC public on DHCP, second the
// provisioning network), the answers they write, and planNetwork's refusals in the NICs' names.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseFacts } from '../facts.ts';
import { answerScreen, emptyState, promptText, type WizardState } from './model.ts';
import { gatewayScreen, networkScreen } from './network-screens.ts';

const factsFile = path.join(import.meta.dirname, 'testdata', 'facts.json');
const facts = parseFacts(fs.readFileSync(factsFile, 'utf8'), factsFile);
const fresh = () => emptyState(facts);
const done = (r: ReturnType<typeof answerScreen>): WizardState => {
  assert.ok('state' in r, `refused: ${'problems' in r ? r.problems.join('; ') : ''}`);
  return r.state;
};
const refused = (r: ReturnType<typeof answerScreen>) => ('problems' in r ? r.problems : []);

test('Network: every NIC listed with MAC, driver and link; the defaults are public on DHCP, then provisioning', () => {
  assert.deepEqual(networkScreen.body(fresh()).slice(-2), [
    '  ens3         52:54:00:12:34:01  virtio_net   link up',
    '  ens4         52:54:00:12:34:02  virtio_net   no link',
  ]);
  const r = answerScreen(networkScreen, fresh(), ['', '', '', '']);
  assert.deepEqual(r.asked.map(promptText), [
    'ens3 role (public/provisioning/unused) [public]: ',
    'ens3 address (dhcp or address/prefix) [dhcp]: ',
    'ens4 role (public/provisioning/unused) [provisioning]: ',
    'ens4 address/prefix [10.1.0.1/24]: ',
  ]);
  assert.deepEqual(done(r).answers.network, {
    interfaces: [
      { match: { mac: '52:54:00:12:34:01' }, role: 'public', ipv4: 'dhcp' },
      { match: { mac: '52:54:00:12:34:02' }, role: 'provisioning', ipv4: '10.1.0.1/24' },
    ],
  });
});

test('Network: roles by prefix, static addresses; an unused NIC is asked no address and left out', () => {
  const r = answerScreen(networkScreen, fresh(), ['u', 'prov', '192.168.7.1/24']);
  assert.deepEqual(done(r).answers.network?.interfaces, [
    { match: { mac: '52:54:00:12:34:02' }, role: 'provisioning', ipv4: '192.168.7.1/24' },
  ]);
  assert.deepEqual(answerScreen(networkScreen, fresh(), ['p', 'x', 'public', 'dhcp', 'unused']).fieldProblems, [
    "'p' could be public or provisioning: type more of it",
    "'x' is not one of public, provisioning, unused",
  ]);
  assert.deepEqual(answerScreen(networkScreen, fresh(), ['', '10.0.0.1', 'dhcp', 'unused']).fieldProblems, [
    "'10.0.0.1': give dhcp, or an address with its prefix length such as 10.1.0.1/24",
  ]);
});

test("Network: planNetwork's rules, in the NICs' names: a provisioning network, static, no address twice", () => {
  assert.deepEqual(refused(answerScreen(networkScreen, fresh(), ['', '', 'public', 'dhcp'])), [
    'no provisioning network: make one interface provisioning (compute nodes boot on it); the NICs of this machine: ens3 (52:54:00:12:34:01, virtio_net, link up); ens4 (52:54:00:12:34:02, virtio_net, no link)',
  ]);
  assert.deepEqual(refused(answerScreen(networkScreen, fresh(), ['', '', '', 'dhcp'])), [
    "ens4's address: a provisioning network has a static address (the head node is its DHCP server), e.g. 10.1.0.1/24",
  ]);
  assert.deepEqual(refused(answerScreen(networkScreen, fresh(), ['', '10.1.0.1/24', '', '10.1.0.1/24'])), [
    'ens3 and ens4 both have 10.1.0.1: give each its own address',
  ]);
  assert.deepEqual(refused(answerScreen(networkScreen, fresh(), ['unused', 'unused'])), [
    'every interface is unused: make one interface provisioning (compute nodes boot on it)',
  ]);
});

test('Network: a given network pre-fills the NICs it matches (by name, MAC or driver), its pool kept', () => {
  const st: WizardState = {
    ...fresh(),
    given: ['network'],
    answers: {
      cradleSetup: 1,
      network: {
        interfaces: [
          {
            match: { name: 'ens3' },
            role: 'provisioning',
            ipv4: '10.9.0.1/24',
            pool: { start: '10.9.0.100', end: '10.9.0.200' },
          },
        ],
        dns: ['192.0.2.53'],
      },
    },
  };
  assert.equal(networkScreen.prefilled(st), true);
  assert.equal(gatewayScreen.prefilled(st), true);
  const r = answerScreen(networkScreen, st, ['', '', '']);
  assert.deepEqual(
    r.asked.map((f) => f.default),
    ['provisioning', '10.9.0.1/24', 'unused'],
  );
  assert.deepEqual(done(r).answers.network, {
    interfaces: [
      {
        match: { mac: '52:54:00:12:34:01' },
        role: 'provisioning',
        ipv4: '10.9.0.1/24',
        pool: { start: '10.9.0.100', end: '10.9.0.200' },
      },
    ],
    dns: ['192.0.2.53'],
  });
});

test('Gateway/DNS: from DHCP when a public NIC uses DHCP; given otherwise, and checked', () => {
  const dhcp = done(answerScreen(networkScreen, fresh(), ['', '', '', '']));
  const r = answerScreen(gatewayScreen, dhcp, ['', '']);
  assert.deepEqual(r.asked.map(promptText), [
    'gateway (dhcp or an address) [dhcp]: ',
    'DNS servers (dhcp, or up to 3 addresses) [dhcp]: ',
  ]);
  assert.deepEqual(done(r).answers.network?.gateway, 'dhcp');
  assert.deepEqual(done(r).answers.network?.dns, 'dhcp');
  assert.deepEqual(answerScreen(gatewayScreen, dhcp, ['none', 'dhcp', '1.2.3.4 5.6.7.8.9', 'dhcp']).fieldProblems, [
    'ens3 on DHCP will get the route from DHCP: write dhcp or an address',
    "'5.6.7.8.9' is not an IPv4 address such as 192.0.2.53",
  ]);

  const fixed = done(answerScreen(networkScreen, fresh(), ['', '192.0.2.10/24', '', '']));
  const s = answerScreen(gatewayScreen, fixed, ['', '', '192.0.2.53, 192.0.2.54']);
  assert.deepEqual(s.asked.map(promptText), [
    'gateway (an address or none) [none]: ',
    'DNS servers (up to 3 addresses): ',
    'DNS servers (up to 3 addresses): ',
  ]);
  assert.deepEqual(s.fieldProblems, [
    'DNS servers (up to 3 addresses): an answer is needed here (there is no default)',
  ]);
  assert.deepEqual(done(s).answers.network?.dns, ['192.0.2.53', '192.0.2.54']);
  assert.equal(done(s).answers.network?.gateway, undefined);
  assert.deepEqual(refused(answerScreen(gatewayScreen, fixed, ['10.7.0.1', '192.0.2.53'])), [
    'the gateway 10.7.0.1 is on no public network of this head node: give a router on one',
  ]);
  assert.equal(
    done(answerScreen(gatewayScreen, fixed, ['192.0.2.1', '192.0.2.53'])).answers.network?.gateway,
    '192.0.2.1',
  );
});
