// `cradle setup`'s wizard on a real terminal: a PTY, as a serial console is. An OS kit and the
// Cradle kit are built with `cradle kit build` into a kits directory; a small driver
// (test/support/wizard-driver.ts) runs the wizard on its tty with the facts of a machine with two
// 30 GB disks (only both together pass the 40 GB rule) and two NICs. Each case waits for the
// prompts it answers, never for a number of seconds.
//   1. TERM=vt100 at 80x24: all 11 steps, one Back, the three refusals (disks too small, /boot on
//      LVM, no OS kit) on their screens, then done: the answers written are the ones expected.
//   2. A tty reporting 0x0 and the C locale: the output is ASCII only, no line over 80 columns.
//   3. Ctrl-C then n goes on; q then y: exit status 2, nothing written.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pty from '@lydell/node-pty';
import { sha512Crypt } from '../src/util/sha512-crypt.ts';
import { cradleBin, repoRoot, tmpDir } from './helpers.ts';
import { PtySession } from './support/terminal-session.ts';
import { buildTestKit } from './support/test-kits.ts';

const _run = promisify(execFile);
const node = path.join(repoRoot, 'node_modules', '.bin', 'node');
const driver = path.join(repoRoot, 'test', 'support', 'wizard-driver.ts');
const factsFile = path.join(repoRoot, 'src', 'setup', 'wizard', 'testdata', 'facts.json');
const SALT = 'ptytestsalt';
const PASSWORD = 'correct horse battery';
function start(
  kitsDir: string,
  out: string,
  o: { cols: number; rows: number; env: Record<string, string>; zeroSize?: boolean },
): PtySession {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !['LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'COLUMNS', 'LINES'].includes(k)) env[k] = v;
  const args = [driver, factsFile, kitsDir, out, SALT];
  // A serial console's tty reports 0x0 until someone runs stty; node-pty cannot open one that way.
  const [file, argv] = o.zeroSize
    ? ['sh', ['-c', 'stty cols 0 rows 0 && stty size && exec "$0" "$@"', node, ...args]]
    : [node, args];
  return new PtySession(
    pty.spawn(file, argv as string[], { cols: o.cols, rows: o.rows, cwd: repoRoot, env: { ...env, ...o.env } }),
  );
}

const ascii = (text: string) => /^[\x20-\x7e\r\n]*$/.test(text);

describe('cradle setup: the wizard on a terminal', () => {
  let work: string;
  let kitsDir: string;

  before(async () => {
    work = tmpDir('cradle-setup-wizard-');
    kitsDir = path.join(work, 'kits');
    fs.mkdirSync(kitsDir);
    await buildTestKit(kitsDir, {
      name: 'demo',
      version: '1.0',
      os: 'demo-1',
      files: { 'etc/os-release': 'ID=demo\nVERSION_ID=1\n' },
    });
    await buildTestKit(kitsDir, {
      name: 'cradle',
      version: '0.1.0',
      component: 'cradle-head:head:demo-1',
      files: { 'etc/cradle/head-node': 'yes\n' },
    });
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  test('TERM=vt100 at 80x24: 11 steps, Back once, three refusals on their screens, then the answers', async () => {
    const out = path.join(work, 'answers-vt100.json');
    const s = start(kitsDir, out, { cols: 80, rows: 24, env: { TERM: 'vt100', LANG: 'C.UTF-8' } });
    try {
      await s.expect(/Step 1 of 11: Welcome/);
      await s.answer(/Press Enter to begin: $/, '');
      await s.expect(/Step 2 of 11: Language/);
      await s.answer(/locale \[en_US\.UTF-8\]: $/, '');
      await s.expect(/Step 3 of 11: Keyboard/);
      await s.answer(/keymap \[us\]: $/, 'de');
      await s.expect(/Step 4 of 11: Network/);
      await s.expect(/ens4 +52:54:00:12:34:02 +virtio_net +no link/);
      // Back: the keyboard screen again, with what was typed.
      await s.answer(/ens3 role \(public\/provisioning\/unused\) \[public\]: $/, '<');
      await s.expect(/Step 3 of 11: Keyboard/);
      await s.answer(/keymap \[de\]: $/, '');
      await s.expect(/Step 4 of 11: Network/);
      await s.answer(/ens3 role \(public\/provisioning\/unused\) \[public\]: $/, '');
      await s.answer(/ens3 address \(dhcp or address\/prefix\) \[dhcp\]: $/, '');
      await s.answer(/ens4 role \(public\/provisioning\/unused\) \[provisioning\]: $/, '');
      await s.answer(/ens4 address\/prefix \[10\.1\.0\.1\/24\]: $/, '');
      await s.expect(/Step 5 of 11: Gateway and DNS/);
      await s.answer(/gateway \(dhcp or an address\) \[dhcp\]: $/, '');
      await s.answer(/DNS servers \(dhcp, or up to 3 addresses\) \[dhcp\]: $/, '');
      await s.expect(/Step 6 of 11: Host name/);
      await s.answer(/host name: $/, 'head.cluster.example');
      await s.expect(/Step 7 of 11: Time zone/);
      await s.answer(/time zone \[UTC\]: $/, 'Europe/Berlin');
      await s.expect(/Step 8 of 11: Root password/);
      await s.answer(/root password: $/, PASSWORD);
      await s.answer(/the same password again: $/, PASSWORD);

      await s.expect(/Step 9 of 11: Partitioning/);
      await s.expect(/2 {2}\/dev\/vdb \(virtio disk, serial head-b, 30\.0 GB\)/);
      // Refusal 1: one 30 GB disk is short of 40 GB.
      await s.answer(/disks to use \(numbers or names, or all\) \[1 2\]: $/, '1');
      await s.answer(/layout \(default or custom\) \[default\]: $/, '');
      await s.expect(/Step 9 of 11: Partitioning/);
      await s.expect(
        /! the disks chosen \(vda 30\.0 GB\) hold 30\.0 GB: a head node needs at least\r?\n +40\.0 GB in all, 10\.0 GB more/,
      );
      await s.answer(/disks to use \(numbers or names, or all\) \[1\]: $/, '1 2');
      // Refusal 2: /boot on LVM.
      await s.answer(/layout \(default or custom\) \[default\]: $/, 'custom');
      await s.answer(/volume 1 \[\/boot 1GiB plain\]: $/, '/boot 1GiB');
      for (const v of ['swap 2GiB', '/ 16GiB', '/var 4GiB', '/home 4GiB', '/depot rest', '.'])
        await s.answer(new RegExp(`volume \\d \\[${v.replace(/[/.]/g, '\\$&')}\\]: $`), '');
      await s.expect(/Step 9 of 11: Partitioning/);
      await s.expect(/! \/boot is on LVM, where GRUB does not look for it: write 'plain' on \/boot's/);
      await s.answer(/disks to use \(numbers or names, or all\) \[1 2\]: $/, '');
      await s.answer(/layout \(default or custom\) \[custom\]: $/, '');
      await s.answer(/volume 1 \[\/boot 1GiB\]: $/, '/boot 1GiB plain');
      for (let i = 2; i <= 7; i++) await s.answer(new RegExp(`volume ${i} \\[[^\\]]+\\]: $`), '');

      await s.expect(/Step 10 of 11: Kits/);
      await s.expect(/2 +demo\/1\.0 \(OS kit, demo-1\) +demo\.kit/);
      // Refusal 3: the Cradle kit alone, no OS kit.
      await s.answer(/kits from the medium \(numbers or names, all or none\) \[all\]: $/, 'cradle');
      await s.answer(/kit URL 1 \(- drops it, \. ends\) \[\.\]: $/, '');
      await s.expect(/Step 10 of 11: Kits/);
      await s.expect(/! no OS kit among the kits chosen \(cradle\/0\.1\.0 \(add-on\)\)/);
      await s.answer(/kits from the medium \(numbers or names, all or none\) \[cradle\]: $/, 'all');
      await s.answer(/kit URL 1 \(- drops it, \. ends\) \[\.\]: $/, '');

      await s.expect(/Step 11 of 11: Confirmation/);
      await s.expect(
        /ERASED \(every partition and file system on them\):\r?\n {2}\/dev\/vda \(virtio disk, serial head-a, 30\.0 GB\)\r?\n {2}\/dev\/vdb \(virtio disk, serial head-b, 30\.0 GB\)/,
      );
      await s.answer(/Type yes to erase the disks above and install: $/, 'yes');
      assert.equal(await s.exit, 0, s.output);
    } finally {
      s.term.kill();
    }
    assert.doesNotMatch(s.output, new RegExp(PASSWORD));
    assert.ok(ascii(s.output), 'TERM=vt100: ASCII only');
    for (const l of s.lines) assert.ok(l.length <= 80, `over 80 columns: ${l}`);
    assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), {
      cradleSetup: 1,
      language: 'en_US.UTF-8',
      keyboard: 'de',
      timezone: 'Europe/Berlin',
      hostname: 'head.cluster.example',
      rootPassword: { hash: sha512Crypt(PASSWORD, SALT) },
      network: {
        interfaces: [
          { match: { mac: '52:54:00:12:34:01' }, role: 'public', ipv4: 'dhcp' },
          { match: { mac: '52:54:00:12:34:02' }, role: 'provisioning', ipv4: '10.1.0.1/24' },
        ],
        gateway: 'dhcp',
        dns: 'dhcp',
      },
      disks: {
        pick: 'all',
        layout: [
          { mount: '/boot', size: 2 ** 30, lvm: false },
          { mount: 'swap', size: 2 * 2 ** 30 },
          { mount: '/', size: 16 * 2 ** 30 },
          { mount: '/var', size: 4 * 2 ** 30 },
          { mount: '/home', size: 4 * 2 ** 30 },
          { mount: '/depot', size: 'rest' },
        ],
      },
      kits: { fromMedia: 'all', urls: [] },
    });
  });

  test('a tty that reports 0x0, the C locale: ASCII only, no line over 80 columns', async () => {
    const out = path.join(work, 'answers-0x0.json');
    const s = start(kitsDir, out, { cols: 80, rows: 24, zeroSize: true, env: { TERM: 'linux', LANG: 'C' } });
    try {
      await s.expect(/^0 0\r?\n/);
      await s.answer(/Press Enter to begin: $/, '');
      for (const prompt of [/locale \[en_US\.UTF-8\]: $/, /keymap \[us\]: $/]) await s.answer(prompt, '');
      for (let i = 0; i < 4; i++) await s.answer(/\[(public|provisioning|dhcp|10\.1\.0\.1\/24)\]: $/, '');
      for (const prompt of [/gateway .*\[dhcp\]: $/, /DNS servers .*\[dhcp\]: $/]) await s.answer(prompt, '');
      await s.answer(/host name: $/, 'head.cluster.example');
      await s.answer(/time zone \[UTC\]: $/, '');
      await s.answer(/root password: $/, PASSWORD);
      await s.answer(/the same password again: $/, PASSWORD);
      await s.answer(/disks to use .*\[1 2\]: $/, '');
      await s.answer(/layout .*\[default\]: $/, '');
      await s.answer(/kits from the medium .*\[all\]: $/, '');
      await s.answer(/kit URL 1 .*\[\.\]: $/, '');
      await s.answer(/Type yes to erase the disks above and install: $/, 'yes');
      assert.equal(await s.exit, 0, s.output);
    } finally {
      s.term.kill();
    }
    assert.match(s.output, /Step 11 of 11: Confirmation/);
    assert.ok(ascii(s.output), 'a C locale: ASCII only');
    for (const l of s.lines) assert.ok(l.length <= 80, `over 80 columns: ${l}`);
    assert.equal(JSON.parse(fs.readFileSync(out, 'utf8')).hostname, 'head.cluster.example');
  });

  test('Ctrl-C asks, n goes on; q, then y: exit status 2, and nothing is written', async () => {
    const out = path.join(work, 'answers-quit.json');
    const s = start(kitsDir, out, { cols: 80, rows: 24, env: { TERM: 'vt100', LANG: 'C' } });
    try {
      await s.answer(/Press Enter to begin: $/, '');
      // Ctrl-C asks too; n goes on at the same prompt.
      await s.expect(/locale \[en_US\.UTF-8\]: $/);
      s.term.write('\x03');
      await s.answer(/quit\? y\/N: $/, 'n');
      await s.answer(/locale \[en_US\.UTF-8\]: $/, 'q');
      await s.answer(/quit\? y\/N: $/, 'y');
      await s.expect(/Setup quit: nothing was written\./);
      assert.equal(await s.exit, 2);
    } finally {
      s.term.kill();
    }
    assert.equal(fs.existsSync(out), false);
  });

  test('cradle setup with a partial answer file asks only what is missing, then plans (--dry-run)', async () => {
    const partial = path.join(work, 'partial.yaml');
    fs.writeFileSync(
      partial,
      [
        'cradleSetup: 1',
        'language: en_US.UTF-8',
        'keyboard: us',
        'timezone: UTC',
        'network:',
        '  interfaces:',
        '    - { match: { name: ens3 }, role: public, ipv4: dhcp }',
        '    - { match: { name: ens4 }, role: provisioning, ipv4: 10.1.0.1/24 }',
        'disks: { match: { path: /dev/vd* } }',
        'kits: { fromMedia: all }',
        '',
      ].join('\n'),
    );
    const saved = path.join(work, 'saved.yaml');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    const args = [
      'setup',
      '--answers',
      partial,
      '--machine',
      factsFile,
      '--kits',
      kitsDir,
      '--dry-run',
      '--save-answers',
      saved,
    ];
    const s = new PtySession(
      pty.spawn(cradleBin, args, { cols: 80, rows: 24, cwd: repoRoot, env: { ...env, TERM: 'vt100' } }),
    );
    try {
      await s.answer(/Press Enter to begin: $/, '');
      await s.answer(/host name: $/, 'head.cluster.example');
      await s.answer(/root password: $/, PASSWORD);
      await s.answer(/the same password again: $/, PASSWORD);
      await s.answer(/Type yes to erase the disks above and install: $/, 'yes');
      await s.expect(/dry run: nothing was touched/);
      assert.equal(await s.exit, 0, s.output);
    } finally {
      s.term.kill();
    }
    assert.doesNotMatch(s.output, /Step (2|3|4|5|7|9|10) of 11/, 'what the answers give is not asked');
    assert.match(s.output, /answers from the wizard and .*partial\.yaml/);
    const replay = fs.readFileSync(saved, 'utf8');
    assert.match(replay, /hostname: head\.cluster\.example/);
    assert.match(replay, /hash: \$6\$/);
    assert.doesNotMatch(replay, new RegExp(PASSWORD), 'only the hash is saved');
  });
});
