// `cradle setup` on a running Linux system, as a person tries it before building an ISO: the facts
// of this machine, an answer file validated offline and against another machine's facts, the
// whole plan printed by --dry-run (with the kickstart), answers read from a file system found by
// its label (a real loop device with ext4, mounted read-only), and bad answers refused with their
// cause before anything is touched.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { cradleBin, cradleFails, isRoot, tmpDir } from './helpers.ts';
import { buildTestKit } from './support/test-kits.ts';

const run = promisify(execFile);
const testdata = path.resolve(import.meta.dirname, '../src/setup/testdata');
const head = path.join(testdata, 'head.yaml');
const twoDisks = path.join(testdata, 'two-disks.json');
const cradle = async (...args: string[]) => (await run(cradleBin, args, { encoding: 'utf8' })).stdout;
const fails = (args: string[], why: RegExp) => cradleFails(args, why);

describe('cradle setup on a running system', () => {
  let work: string;
  before(() => {
    work = tmpDir('cradle-setup-');
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  test("facts: this machine's firmware, disks and NICs, which validate --machine reads back", async () => {
    const facts = JSON.parse(await cradle('setup', 'facts'));
    assert.match(facts.firmware, /^(bios|uefi)$/);
    assert.ok(Array.isArray(facts.disks) && Array.isArray(facts.nics));
    for (const d of facts.disks) assert.match(d.path, /^\/dev\//);
    const file = path.join(work, 'facts.json');
    fs.writeFileSync(file, JSON.stringify(facts));
    // Read back: the facts file is accepted (the answers may not fit this machine, which is fine).
    const out = await run(cradleBin, ['setup', 'validate', head, '--machine', file], { encoding: 'utf8' }).then(
      (r) => r.stdout,
      (e: { stderr: string }) => e.stderr,
    );
    assert.doesNotMatch(out, /is not JSON|write it with 'cradle setup facts/);
  });

  test('validate: offline, and against a machine, showing what its filters select', async () => {
    assert.match(await cradle('setup', 'validate', head), /head\.yaml: valid, complete/);
    const partial = path.join(work, 'partial.yaml');
    fs.writeFileSync(partial, 'cradleSetup: 1\nhostname: head.cluster.example\nkeyboard: us\n');
    assert.match(
      await cradle('setup', 'validate', partial),
      /valid; the wizard would ask for language, timezone, rootPassword, network, disks/,
    );
    const shown = await cradle('setup', 'validate', head, '--machine', twoDisks);
    assert.match(shown, /ERASED .*\n {2}\/dev\/vda \(no model, serial head-a, 32\.2 GB\)\n {2}\/dev\/vdb/);
    assert.doesNotMatch(shown, /sr0/, 'the DVD it booted from is not touched');
  });

  test('--dry-run prints the whole plan and the kickstart, and touches nothing', async () => {
    const out = await cradle('setup', '--answers', head, '--machine', twoDisks, '--dry-run', '--kickstart');
    assert.match(out, /^answers from .*head\.yaml/);
    assert.match(out, /volume group cradle \(58\.5 GiB across \/dev\/vda3, \/dev\/vdb1\)/);
    assert.match(out, /^rootpw --iscrypted \$6\$/m);
    assert.doesNotMatch(out, /correct horse battery/, 'the plain password is never printed');
    assert.match(out, /dry run: nothing was touched/);
  });

  test('bad answers are refused before any disk is touched, each naming its cause', async () => {
    const bad = (name: string, text: string) => {
      const f = path.join(work, name);
      fs.writeFileSync(f, text);
      return f;
    };
    const original = fs.readFileSync(head, 'utf8');
    const dry = (f: string) => ['setup', '--answers', f, '--machine', twoDisks, '--dry-run'];
    await fails(dry(bad('unknown.yaml', `${original}\nswap: 4GB\n`)), /'swap': unknown key/);
    await fails(dry(bad('type.yaml', original.replace('keyboard: de', 'keyboard: 7'))), /'keyboard': /);
    await fails(
      dry(bad('small.yaml', original.replace('path: /dev/vd*', 'path: /dev/vda'))),
      /hold 32\.2 GB: a head node needs at least 40\.0 GB in all/,
    );
    const custom = (volumes: string) =>
      original.replace('match: { path: /dev/vd* }', `match: { path: /dev/vd* }\n  layout:\n${volumes}`);
    await fails(
      dry(
        bad(
          'bootlvm.yaml',
          custom(
            '    - { mount: /boot, size: 1GiB }\n    - { mount: /, size: 20GiB }\n    - { mount: /depot, size: rest }\n',
          ),
        ),
      ),
      /\/boot is on LVM/,
    );
    await fails(
      dry(
        bad('nodepot.yaml', custom('    - { mount: /boot, size: 1GiB, lvm: false }\n    - { mount: /, size: rest }\n')),
      ),
      /the layout has no \/depot/,
    );
    await fails(
      dry(
        bad(
          'dup.yaml',
          original.replace('ipv4: dhcp', 'ipv4: 10.1.0.1/24').replace('network:', 'network:\n  dns: [10.1.0.53]'),
        ),
      ),
      /ens3 and ens4 both have 10\.1\.0\.1/,
    );
    await fails(
      dry(bad('medium.yaml', original.replace('path: /dev/vd*', 'model: QEMU*'))),
      /selects \/dev\/sr0 .*the medium the setup booted from/,
    );
    await fails(dry(path.join(work, 'nosuch.yaml')), /no answer file at/);
    await fails(
      dry(bad('partial.yaml', 'cradleSetup: 1\nhostname: head.cluster.example\n')),
      /the answers leave out language, keyboard, timezone, rootPassword, network, disks and there is no terminal to ask them on/,
    );
    await fails(
      ['setup', '--answers', 'https://127.0.0.1:1/a.yaml', '--machine', twoDisks, '--dry-run'],
      /ECONNREFUSED/,
    );
  });

  test('from the medium: the answers as used are kept in /run/cradle/answers.yaml, dry run or stopped', {
    skip: !isRoot() && 'needs root (a mount namespace with a /run of its own)',
  }, async () => {
    // The medium as the ISO lays it out: the answers in cradle/answers.yaml, named from its top.
    const media = path.join(work, 'media');
    fs.mkdirSync(path.join(media, 'cradle'), { recursive: true });
    fs.copyFileSync(head, path.join(media, 'cradle', 'answers.yaml'));
    // The setup in a mount namespace whose /run is a fresh tmpfs: the host's /run is never written.
    const inOwnRun = async (args: string[]) => {
      const script =
        'mount -t tmpfs tmpfs /run && "$@" && echo "--- kept" && stat -c %a /run/cradle/answers.yaml && cat /run/cradle/answers.yaml';
      const unshare = ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', cradleBin, ...args];
      return (await run('unshare', unshare, { encoding: 'utf8' })).stdout.split('--- kept\n');
    };
    const replay = path.join(work, 'replay.yaml');
    for (const [extra, end] of [
      [['--dry-run'], /dry run: nothing was touched/],
      [[], /stopped at the confirmation: without cradle\.wipe=yes .*nothing was touched/],
    ] as const) {
      const [said, kept] = await inOwnRun([
        'setup',
        '--answers',
        '/cradle/answers.yaml',
        '--machine',
        twoDisks,
        '--media',
        media,
        ...extra,
      ]);
      assert.match(said, end);
      assert.match(
        kept,
        /^600\n# The answers this head node was installed with \(cradle setup\); the password is hashed\.\n/,
      );
      assert.match(kept, /hostname: head\.cluster\.example/);
      assert.match(kept, /hash: \$6\$/);
      assert.doesNotMatch(kept, /correct horse battery/, 'only the hash is kept');
      fs.writeFileSync(replay, kept.replace(/^600\n/, ''));
      // It replays: complete, and the same plan.
      assert.match(await cradle('setup', 'validate', replay), /valid, complete/);
      assert.match(
        await cradle('setup', '--answers', replay, '--machine', twoDisks, '--dry-run'),
        /volume group cradle \(58\.5 GiB across \/dev\/vda3, \/dev\/vdb1\)/,
      );
    }
  });

  test("a head-node ISO's kits and answers are checked before anything is built", async () => {
    const addon = await buildTestKit(work, { name: 'hello', version: '1', component: 'hello:compute:any' });
    const os = await buildTestKit(work, { name: 'demo', version: '1', os: 'debian-12' });
    const out = path.join(work, 'iso-out');
    const iso = (...args: string[]) => ['build-installer', '--out', out, '--head-node', ...args];
    await fails(iso('--kit', addon), /--head-node needs an OS kit/);
    await fails(iso('--kit', os, '--kit', addon), /--head-node needs the Cradle kit/);
    const truncated = path.join(work, 'truncated.kit');
    fs.writeFileSync(truncated, fs.readFileSync(os).subarray(0, 3000));
    await fails(iso('--kit', truncated), /truncated\.kit/);
    const cradleKit = await buildTestKit(work, { name: 'cradle', version: '1', component: 'cradle:head:any' });
    const badAnswers = path.join(work, 'bad-answers.yaml');
    fs.writeFileSync(badAnswers, 'cradleSetup: 1\nhostnam: x\n');
    await fails(iso('--kit', os, '--kit', cradleKit, '--answers', badAnswers), /'hostnam': unknown key/);
    assert.ok(!fs.existsSync(out), 'nothing was built');
  });

  test('answers from a file system found by its label (a USB stick), mounted read-only', {
    skip: !isRoot() && 'needs root (a loop device and a mount)',
  }, async () => {
    const image = path.join(work, 'stick.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 16 * 2 ** 20);
    const label = `CRADLE${process.pid}`;
    const top = path.join(work, 'stick');
    fs.mkdirSync(top);
    fs.copyFileSync(head, path.join(top, 'cradle-answers.yaml'));
    execFileSync('mkfs.ext4', ['-q', '-L', label, '-d', top, image]);
    const loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
    try {
      const out = await cradle('setup', '--answers', `label:${label}`, '--machine', twoDisks, '--dry-run');
      assert.match(out, new RegExp(`answers from ${loop}:/cradle-answers\\.yaml`));
      assert.match(out, /host name: {3}head\.cluster\.example/);
      assert.doesNotMatch(fs.readFileSync('/proc/self/mounts', 'utf8'), new RegExp(loop), 'unmounted again');
      await fails(
        ['setup', '--answers', 'label:NOSUCHLABEL', '--machine', twoDisks, '--dry-run'],
        /no file system labelled NOSUCHLABEL/,
      );
    } finally {
      execFileSync('losetup', ['-d', loop]);
    }
  });
});
