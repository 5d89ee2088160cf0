// The Partitioning screen: the disks offered (never the boot medium), the default choice and
// layout, custom volumes typed one a line, Kusu's partitioning refusals, each with its own message, and the
// filter the answer file gets for the disks chosen.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { MachineFacts } from '../facts.ts';
import { parseFacts } from '../facts.ts';
import { diskScreen, filterFor, formatSize, formatVolume, parseDiskChoice, parseVolume } from './disk-screen.ts';
import { answerScreen, emptyState, promptText, type WizardState } from './model.ts';

const factsFile = path.join(import.meta.dirname, 'testdata', 'facts.json');
const facts = parseFacts(fs.readFileSync(factsFile, 'utf8'), factsFile);
const fresh = (f: MachineFacts = facts) => emptyState(f);
const done = (r: ReturnType<typeof answerScreen>): WizardState => {
  assert.ok('state' in r, `refused: ${'problems' in r ? r.problems.join('; ') : ''}`);
  return r.state;
};
const refused = (r: ReturnType<typeof answerScreen>) => ('problems' in r ? r.problems : []);
const DEFAULT_LINES = ['/boot 1GiB plain', 'swap 2GiB', '/ 16GiB', '/var 4GiB', '/home 4GiB', '/depot rest'];

test('the disks are listed by model, serial and size; the boot medium never is', () => {
  const body = diskScreen.body(fresh());
  assert.deepEqual(body.slice(0, 3), [
    'The disks of this machine (/dev/sr0, the medium the setup booted from, is never offered):',
    '   1  /dev/vda (virtio disk, serial head-a, 30.0 GB)',
    '   2  /dev/vdb (virtio disk, serial head-b, 30.0 GB)',
  ]);
  assert.match(
    body.join('\n'),
    /The default layout: \/boot 1GiB plain, swap 2GiB, \/ 16GiB, \/var 4GiB, \/home 4GiB, \/depot rest/,
  );
  assert.deepEqual(parseDiskChoice('sr0', facts), {
    problem: '/dev/sr0 holds the medium the setup booted from: it is never wiped',
  });
  assert.deepEqual(parseDiskChoice('3', facts), {
    problem: "there is no disk '3' here: choose among 1 (vda), 2 (vdb)",
  });
});

test('defaults: every disk, the default layout; the answers select them and plan', () => {
  const r = answerScreen(diskScreen, fresh(), ['', '']);
  assert.deepEqual(r.asked.map(promptText), [
    'disks to use (numbers or names, or all) [1 2]: ',
    'layout (default or custom) [default]: ',
  ]);
  assert.deepEqual(done(r).answers.disks, { pick: 'all', layout: 'default' });
});

test('refused: the disks chosen are too small (one 30 GB disk of two), with the shortfall', () => {
  for (const one of ['1', 'vdb', '/dev/vda'])
    assert.deepEqual(refused(answerScreen(diskScreen, fresh(), [one, ''])), [
      `the disks chosen (${one === 'vdb' ? 'vdb' : 'vda'} 30.0 GB) hold 30.0 GB: a head node needs at least 40.0 GB in all, 10.0 GB more: choose more or larger disks`,
    ]);
});

test('refused: /boot on LVM; and a layout without / and /depot, each with its own message', () => {
  const lvmBoot = answerScreen(diskScreen, fresh(), ['', 'custom', '/boot 1GiB', '', '', '', '', '', '']);
  assert.deepEqual(
    lvmBoot.asked.slice(2).map((f) => f.default),
    [...DEFAULT_LINES, '.'],
  );
  assert.match(lvmBoot.asked[2].intro?.join(' ') ?? '', /One volume a line/);
  assert.deepEqual(refused(lvmBoot), [
    "/boot is on LVM, where GRUB does not look for it: write 'plain' on /boot's line",
  ]);
  assert.deepEqual(refused(answerScreen(diskScreen, fresh(), ['', 'c', '', '', '-', '', '', '-', '.'])), [
    'the layout has no / (the root file system): add a volume for / (a custom layout)',
    'the layout has no /depot (the kits and the images of every node group): add a volume for /depot (a custom layout)',
  ]);
  assert.deepEqual(refused(answerScreen(diskScreen, fresh(), ['', 'custom', '', '', '/ 60GB', '.'])), [
    'the layout has no /depot (the kits and the images of every node group): add a volume for /depot (a custom layout)',
  ]);
});

test('custom volumes: typed back in a normal form, written as the answer file has them', () => {
  const r = answerScreen(diskScreen, fresh(), [
    'all',
    'custom',
    '',
    '',
    '/ 20GiB xfs',
    '',
    '-',
    '/depot REST',
    '/srv 1GB plain',
    '.',
  ]);
  assert.deepEqual(r.fieldProblems, []);
  assert.deepEqual(done(r).answers.disks, {
    pick: 'all',
    layout: [
      { mount: '/boot', size: 2 ** 30, lvm: false },
      { mount: 'swap', size: 2 * 2 ** 30 },
      { mount: '/', size: 20 * 2 ** 30, fs: 'xfs' },
      { mount: '/var', size: 4 * 2 ** 30 },
      { mount: '/depot', size: 'rest' },
      { mount: '/srv', size: 1e9, lvm: false },
    ],
  });
  // Shown again (Back), what was typed is the default.
  const again = answerScreen(diskScreen, done(r), ['', '', '', '', '', '', '', '', '', '']);
  assert.deepEqual(
    again.asked.map((f) => f.default),
    [
      '1 2',
      'custom',
      '/boot 1GiB plain',
      'swap 2GiB',
      '/ 20GiB xfs',
      '/var 4GiB',
      '-',
      '/depot rest',
      '/srv 1GB plain',
      '.',
    ],
  );
});

test('a volume line: its words, and what is wrong with it', () => {
  assert.deepEqual(parseVolume('/var 4GiB xfs lvm'), {
    volume: { mount: '/var', size: 4 * 2 ** 30, fs: 'xfs', lvm: true },
  });
  assert.deepEqual(parseVolume('var 4GiB'), {
    problem:
      "'var' is not a mount point such as /var, or swap: write a mount point (or swap) and a size, e.g. '/var 4GiB' or '/boot 1GiB plain'",
  });
  assert.deepEqual(parseVolume('/var'), {
    problem: "/var has no size: write a mount point (or swap) and a size, e.g. '/var 4GiB' or '/boot 1GiB plain'",
  });
  assert.deepEqual(parseVolume('/var four'), {
    problem: "'four' is not a size: write e.g. 40GB, 12GiB, 512MiB or rest",
  });
  assert.deepEqual(parseVolume('/var 4GiB btrfs'), {
    problem: "'btrfs': after the size come ext4, xfs or swap, and plain or lvm",
  });
  assert.equal(formatVolume({ mount: 'swap', size: 512 * 2 ** 20, fs: 'swap' }), 'swap 512MiB');
  assert.deepEqual(
    [formatSize(2 ** 40), formatSize(40e9), formatSize(1234), formatSize('rest')],
    ['1TiB', '40GB', '1234', 'rest'],
  );
});

test('the filter written for the disks chosen: none for all, a path for one, a pattern, or smallest/largest', () => {
  const disk = (name: string, gb: number) => ({
    name,
    path: `/dev/${name}`,
    sizeBytes: gb * 1e9,
    model: 'm',
    serial: name,
    rotational: false,
    removable: false,
  });
  const f: MachineFacts = {
    firmware: 'bios',
    disks: [disk('sda', 100), disk('sdb', 50), disk('nvme0n1', 500), disk('nvme1n1', 500)],
    nics: [],
  };
  const [sda, sdb, n0, n1] = f.disks;
  assert.deepEqual(filterFor([sda, sdb, n0, n1], f), { pick: 'all' });
  assert.deepEqual(filterFor([sdb], f), { match: { path: '/dev/sdb' }, pick: 'all' });
  assert.deepEqual(filterFor([sda, sdb], f), { match: { path: '/dev/sd*' }, pick: 'all' });
  assert.deepEqual(filterFor([n0, n1], f), { match: { path: '/dev/nvme*' }, pick: 'all' });
  assert.deepEqual(filterFor([sdb, n0], f), undefined);
  assert.deepEqual(filterFor([sda, n0, n1], f), { pick: 'largest', count: 3 });
  // A given filter that still selects the disks chosen is kept as it was written.
  const given = { match: { model: 'm', minSize: 400e9 }, pick: 'all' as const, layout: 'default' as const };
  assert.deepEqual(filterFor([n0, n1], f, given), { match: { model: 'm', minSize: 400e9 }, pick: 'all' });
  const st = { ...fresh(f), answers: { cradleSetup: 1 as const } };
  assert.deepEqual(refused(answerScreen(diskScreen, st, ['2 3', ''])), [
    'no disk filter of the answer file selects exactly sdb, nvme0n1: choose all the disks, one, or disks whose names share a pattern (sda, sdb)',
  ]);
});

test('given disks pre-fill the choice and skip the screen when they plan; Back shows them', () => {
  const st: WizardState = {
    ...fresh(),
    given: ['disks'],
    answers: { cradleSetup: 1, disks: { match: { path: '/dev/vd*' }, pick: 'all', layout: 'default' } },
  };
  assert.equal(diskScreen.prefilled(st), true);
  const r = answerScreen(diskScreen, st, ['', '']);
  assert.deepEqual(
    r.asked.map((f) => f.default),
    ['1 2', 'default'],
  );
  assert.deepEqual(done(r).answers.disks, st.answers.disks);
  const small = {
    ...st,
    answers: {
      cradleSetup: 1 as const,
      disks: { match: { serial: 'head-a' }, pick: 'all' as const, layout: 'default' as const },
    },
  };
  assert.equal(diskScreen.prefilled(small), false);
  assert.deepEqual(answerScreen(diskScreen, small, ['', '']).asked[0].default, '1');
});
