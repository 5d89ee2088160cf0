// A QEMU machine whose serial console is a PTY (RunningMachine with console 'pty'), as the lab's
// head node runs the setup wizard on one: the host's kernel boots the marker initramfs, whose
// /init here also reads three lines from the console and prints each back. Checked: the marker
// arrives over the PTY, keys typed reach the machine as typed (nothing echoed back into it by the
// host's side), a person's terminal attached (attach) types and sees output until Ctrl-], the
// machine goes on after the detach, and QEMU's log of the console holds everything.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { cpioNewc } from '../../src/initramfs/cpio.ts';
import { newestKernel } from '../../src/initramfs/build.ts';
import { MARKER, markerInitramfs } from '../../src/lab/marker-initramfs.ts';
import { consoleArgs, RunningMachine } from '../../src/lab/qemu.ts';
import { isRoot, tmpDir } from '../helpers.ts';
import { vmAccelerator } from './vm.ts';

const canRun =
  isRoot() &&
  fs.existsSync('/usr/bin/qemu-system-x86_64') &&
  fs.readdirSync('/boot').some((f) => f.startsWith('vmlinuz-'));
const skip = !canRun && 'needs root, qemu-system-x86 and a kernel in /boot';

/**
 * The marker initramfs with an /init that, after the marker, asks for three lines. A second
 * archive after the first replaces its /init (the kernel unpacks concatenated archives in order).
 */
function askingInitramfs(): Buffer {
  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox mount -t proc proc /proc',
    `/bin/busybox echo "${MARKER} cmdline=$(/bin/busybox cat /proc/cmdline)"`,
    'for n in 1 2 3; do',
    '  /bin/busybox printf "line $n: "',
    '  read -r line',
    '  /bin/busybox echo "typed $n <$line>"',
    'done',
    '/bin/busybox poweroff -f',
  ].join('\n');
  const overlay = cpioNewc([{ type: 'file', path: 'init', data: Buffer.from(`${init}\n`), mode: 0o755 }]);
  return Buffer.concat([markerInitramfs(), ...overlay]);
}

describe('VM: a serial console on a PTY', { skip }, () => {
  let dir: string;
  let machine: RunningMachine | undefined;

  before(() => {
    dir = tmpDir('cradle-e2e-pty-');
  });
  after(async () => {
    await machine?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('boots, is typed at, is attached to and detached from; the log keeps the console', {
    timeout: 180_000,
  }, async () => {
    const accel = await vmAccelerator(canRun);
    const initrd = path.join(dir, 'initrd');
    fs.writeFileSync(initrd, askingInitramfs());
    const log = path.join(dir, 'console, with a comma.log');
    const m = new RunningMachine(
      [
        'qemu-system-x86_64',
        ...['-accel', accel, '-m', '256', '-nographic', '-nodefaults', '-vga', 'none', '-no-reboot'],
        ...consoleArgs('pty', log),
        ...['-kernel', newestKernel(), '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet'],
      ],
      log,
      { console: 'pty' },
    );
    machine = m;
    let seen = '';
    m.onData((text) => {
      seen += text;
    });

    const marker = await m.waitFor(new RegExp(`${MARKER} cmdline=([^\\r\\n]*)\\r?\\n`), 120_000);
    assert.match(marker[1], /console=ttyS0/);

    // Keys typed: the machine reads exactly them (a host-side echo would have fed its own output back in).
    await m.waitFor(/line 1: /, 30_000);
    m.type('hello pty\r');
    await m.waitFor(/typed 1 <hello pty>/, 30_000);

    // A person's terminal (here streams, not a TTY): their keys go in, the output comes out, and
    // Ctrl-] detaches without reaching the machine.
    await m.waitFor(/line 2: /, 30_000);
    const keys = new PassThrough();
    const screen = new PassThrough();
    let shown = '';
    screen.on('data', (b: Buffer) => {
      shown += b.toString();
    });
    const attached = m.attach(keys as unknown as NodeJS.ReadStream, screen as unknown as NodeJS.WriteStream);
    keys.write('from a person\r');
    await m.waitFor(/typed 2 <from a person>/, 30_000);
    keys.write('\x1d');
    await attached;
    assert.match(shown, /typed 2 <from a person>/);

    // Detached, the machine goes on; what it prints is no longer shown.
    await m.waitFor(/line 3: /, 30_000);
    m.type('after\r');
    await m.waitFor(/typed 3 <after>/, 30_000);
    assert.equal(await m.exited, 0, 'poweroff -f ends QEMU (-no-reboot)');
    assert.doesNotMatch(shown, /typed 3/);

    const kept = fs.readFileSync(log, 'latin1');
    for (const line of [MARKER, 'typed 1 <hello pty>', 'typed 2 <from a person>', 'typed 3 <after>'])
      assert.ok(kept.includes(line) && seen.includes(line), `${line}: in the log and in onData's text`);
  });
});
