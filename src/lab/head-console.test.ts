// The head node's phases from its serial console: a whole install (testdata/head-console.txt)
// however the console's bytes arrive, and each way a head node stops short of serving; the live
// line and the end table the lab prints from them.
// testdata/head-console.txt is CONSTRUCTED, not recorded: no console log of a head-node VM run was
// kept (the VM test removes its directory). Its lines are the code's own: the plan and storage
// commands as `cradle setup` printed them for these answers and disks, the install's log lines,
// init.sh's and the first boot's (through journald, as `[time] cradle[PID]: …`); the firmware,
// GRUB (with its escapes), kernel and systemd lines are typical of Debian 12 under QEMU.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConsoleClock, HEAD_MARKERS, type HeadTimeline } from './head-console.ts';
import { headDone, headLiveLine, headStage, headSummaryTable } from './report.ts';

const transcript = fs.readFileSync(path.join(import.meta.dirname, 'testdata/head-console.txt'), 'utf8');
const lines = transcript.split('\r\n');
/** The time the test feeds line N (0-based) at: its number, in seconds. */
const at = (n: number) => (n + 1) * 1000;
const lineOf = (s: string) => {
  const n = lines.findIndex((l) => l.includes(s));
  assert.ok(n >= 0, `the transcript has '${s}'`);
  return n;
};

/** The clock fed `text` line by line, each line at its number of seconds. */
function byLine(text: string): HeadTimeline {
  const clock = new ConsoleClock('head', 0);
  text.split('\r\n').forEach((l, n) => {
    clock.feed(`${l}\r\n`, at(n));
  });
  return clock.timeline;
}

describe("the head node's phases from its console", () => {
  test('a whole install: each phase when its line is complete, the last news of the system running', () => {
    assert.deepEqual(byLine(transcript), {
      hostname: 'head',
      poweredOnAt: 0,
      isoMenuAt: at(lineOf('*Cradle head-node setup')),
      isoBootedAt: at(lineOf('answers from /run/cradle/media/cradle/answers.yaml')),
      setupDoneAt: at(lineOf('cradle setup: making the disks: /dev/vda, /dev/vdb')),
      installedAt: at(lineOf('cradle: restarting into the head node head.lab.test')),
      headMenuAt: at(lineOf('*Cradle head node, Linux 6.1.0-28-amd64')),
      dbMovedAt: at(lineOf('cradle first boot: machine database copied in PostgreSQL')),
      firstBootAt: at(lineOf('cradle first boot: done')),
      lastLine: 'cradle first boot: done: the services use postgresql://root@/cradle?host=/run/postgresql',
    });
  });

  test('the same phases however the bytes arrive: split lines, escapes and UTF-8 characters, bare \\r', () => {
    const whole = new ConsoleClock('head', 0);
    whole.feed(transcript, 1);
    const bytes = Buffer.from(`${transcript.replaceAll('Debian', 'Débian')}\r\n`);
    const chunked = new ConsoleClock('head', 0);
    for (let i = 0, size = 1; i < bytes.length; i += size, size = (size * 7 + 3) % 97 || 1)
      chunked.feed(bytes.subarray(i, i + size), 1);
    const expected = { ...whole.timeline };
    assert.deepEqual(chunked.timeline, expected);
    for (const key of Object.keys(HEAD_MARKERS)) assert.equal(expected[key as keyof HeadTimeline], 1, key);

    // A line completes in the chunk that ends it: that chunk's time counts.
    const clock = new ConsoleClock('head', 0);
    clock.feed('cradle setup: making the di', 10);
    clock.feed('sks: /dev/vda\r', 20);
    clock.feed('\n\x1b[0m\x1b[30m\x1b[47m*Cradle head node, Li', 30);
    assert.equal(clock.timeline.setupDoneAt, 20);
    assert.equal(clock.timeline.headMenuAt, undefined, 'not before its line ends');
    clock.feed('nux 6.1.0-28-amd64  \x1b[0m|\rsomething else', 40);
    assert.equal(clock.timeline.headMenuAt, 40);
  });

  test("the wizard's first screen is the ISO booted, when no answers came with it", () => {
    const t = byLine(
      'cradle: drivers loaded, up 4.87 s\r\n== Step 1 of 11: Welcome ===========\r\nPress Enter to begin: ',
    );
    assert.equal(t.isoBootedAt, at(1));
    assert.equal(headStage(t), 'setup: answers, plan');
  });

  test('each way it stops short of serving: the problem says why, and what was touched', () => {
    const problem = (text: string) => byLine(text).problem;
    assert.equal(
      problem(
        [
          'answers from /run/cradle/media/cradle/answers.yaml',
          '',
          'stopped at the confirmation: without cradle.wipe=yes on the kernel command line no disk is erased unattended; nothing was touched',
          'cradle: the setup exited with status 0',
        ].join('\r\n'),
      ),
      'at the confirmation: without cradle.wipe=yes on the kernel command line no disk is erased unattended; nothing was touched',
    );
    assert.equal(
      problem(
        [
          'cradle: drivers loaded, up 4.87 s',
          "cradle: /run/cradle/media/cradle/answers.yaml: 'hostnam': unknown key (did you mean hostname?)",
          'cradle: the setup exited with status 1',
        ].join('\r\n'),
      ),
      "/run/cradle/media/cradle/answers.yaml: 'hostnam': unknown key (did you mean hostname?)",
      "the setup's own error, not init's lines around it",
    );
    assert.equal(
      problem('Press Enter to begin: q\r\ncradle: the setup exited with status 2'),
      'the setup exited with status 2',
    );
    assert.equal(
      problem('cradle: the setup found no medium labelled CRADLE_SETUP: is the ISO still attached?'),
      'the setup found no medium labelled CRADLE_SETUP: is the ISO still attached?',
    );
    const stayed = byLine(
      [
        'cradle setup: the head node head.lab.test is installed: it boots from /dev/vda',
        'cradle: the setup exited with status 0',
        'cradle: cradle.reboot=no: not restarting into the head node head.lab.test; the shell is yours',
      ].join('\r\n'),
    );
    assert.equal(stayed.installedAt, at(2));
    assert.equal(
      stayed.problem,
      'cradle.reboot=no: not restarting into the head node head.lab.test; the shell is yours',
    );
    assert.equal(
      problem(
        [
          "[   71.204113] cradle[512]: cradle: PostgreSQL does not accept connections on /run/postgresql: see 'systemctl status postgresql'",
          '[\x1b[0;1;31mFAILED\x1b[0m] Failed to start \x1b[0;1;39mcradle-first-boot.service\x1b[0m - Cradle head node first boot: the machine database into PostgreSQL.',
        ].join('\r\n'),
      ),
      "the first boot failed: PostgreSQL does not accept connections on /run/postgresql: see 'systemctl status postgresql'",
    );
    assert.equal(byLine(transcript).problem, undefined, 'a whole install has none');
  });
});

describe("the lab's view of the head node", () => {
  const t = byLine(transcript);

  test('the live line: the stage, and while it works its latest console news cut to 60 columns', () => {
    const upTo = (s: string) => byLine(lines.slice(0, lineOf(s) + 1).join('\r\n'));
    assert.equal(headLiveLine({ hostname: 'head', poweredOnAt: 0 }, 5_000), 'head        5 s  power-on: firmware, ISO');
    assert.equal(headLiveLine(upTo('drivers loaded'), 25_000), 'head       25 s  ISO: kernel, drivers');
    assert.equal(
      headLiveLine(upTo('grub-install'), 142_000),
      'head      142 s  installing - ran chroot /target grub-install --target=i386-pc --boot-d...',
    );
    assert.equal(
      headLiveLine(upTo('restarting into the head node'), 150_000),
      'head      150 s  installed; restarting from its disks',
      "the setup's last line is not the installed system's news",
    );
    assert.equal(
      headLiveLine(upTo('waiting for PostgreSQL'), 190_000),
      'head      190 s  booting from its disks - waiting for PostgreSQL on /run/postgresql',
    );
    assert.equal(headStage(t), 'first boot done; services starting');
    assert.equal(headDone(t), false);
    const serving = { ...t, servingAt: 210_000 };
    assert.equal(headLiveLine(serving, 210_000), 'head      210 s  serving');
    assert.equal(headDone(serving), true);
    assert.equal(
      headLiveLine({ ...t, problem: 'not serving after 1800 s' }, 1_800_000),
      'head     1800 s  stopped: not serving after 1800 s',
    );
  });

  test('the end table: each phase, and power-on to serving', () => {
    assert.equal(
      headSummaryTable({ ...t, servingAt: 210_000 }),
      [
        'machine  result   ISO boot  setup   install  first boot  power-on to serving',
        '-------  -------  --------  ------  -------  ----------  -------------------',
        'head     serving  26.0 s    78.0 s  46.0 s   44.0 s      210.0 s',
      ].join('\n'),
    );
    const stopped = byLine(lines.slice(0, lineOf('answers from') + 1).join('\r\n'));
    assert.equal(
      headSummaryTable({ ...stopped, problem: 'at the confirmation: nothing was touched' }),
      [
        'machine  result                                    ISO boot  setup  install  first boot  power-on to serving',
        '-------  ----------------------------------------  --------  -----  -------  ----------  -------------------',
        'head     at the confirmation: nothing was touched  26.0 s    -      -        -           -',
      ].join('\n'),
    );
  });
});
