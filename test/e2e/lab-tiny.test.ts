// VM end to end with the tiny test OS (QEMU under TCG, see the lab notes): a machine with a blank
// disk PXE-boots through our DHCP and HTTP into the installer image built by `build-installer`,
// installs, kexecs into the installed system, which reports in; then the same machine is reborn
// over its old system with the object cache; and a machine whose image server is down fails
// cleanly and never boots a half-written disk, after an operator has looked at it over the
// installer's port 6978 (status page, RPC and a remote shell, with the lab's certificates). All of
// it with mutual TLS between the installer, the image server and the boot server.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { runLab, type Lab, type LabOptions } from '../../src/lab/lab.ts';
import { TINY_OS_MARKER } from '../../src/lab/tiny-os.ts';
import type { Timeline } from '../../src/lab/report.ts';
import { isRoot, removeWorkDir, tmpDir } from '../helpers.ts';
import { consoleOf, explain, operatorLooksAt, testLab, vmAccelerator } from './vm.ts';

const canRun =
  isRoot() &&
  fs.existsSync('/usr/bin/qemu-system-x86_64') &&
  fs.readdirSync('/boot').some((f) => f.startsWith('vmlinuz-'));
const accel = await vmAccelerator(canRun);
const skip = !canRun && 'needs root, qemu-system-x86 and a kernel in /boot';

const tinyLab = (dir: string, tag: string, extra: Partial<LabOptions> = {}) =>
  testLab(dir, tag, { image: 'tiny', diskGiB: 4, ...extra });

describe('VM: BIOS machine, tiny OS, kexec, rebirth', { skip }, () => {
  let dir: string;
  let lab: Lab;
  let first: Timeline;

  before(() => {
    dir = tmpDir('cradle-e2e-tiny-');
    lab = tinyLab(dir, 'tiny');
  });
  after(async () => {
    await lab?.destroy();
    if (dir) removeWorkDir(dir);
  });

  test('1: PXE boot, install onto a blank disk, kexec into the installed OS, which reports in', {
    timeout: 900_000,
  }, async () => {
    [first] = await runLab(lab, { rebirth: false, timeoutSeconds: 600, accel });
    assert.equal(first.state, 'healthy', explain(first, lab));
    // The report arrives before the OS prints that it reported in.
    await lab.machines[0].running!.waitFor(new RegExp(TINY_OS_MARKER), 60_000);
    const log = consoleOf(lab);
    assert.match(log, /Installing lab1 \(birth\)/, "iPXE ran the boot server's install script");
    assert.match(log, /cradle: installer image built .*, kernel 6\./, "the installer image's /init ran");
    assert.match(log, /booting the new system with kexec/);
    assert.match(
      log,
      /tiny-os: up .* as lab1, root \/dev\/vda2/,
      'the installed OS runs from its root partition under its host name',
    );
    assert.match(log, /tiny-os: reported in to http:\/\/10\.77\.0\.1:6977 as 52:54:00:77:00:01/);
    assert.match(log, new RegExp(TINY_OS_MARKER));
    assert.equal(log.match(/SeaBIOS \(version/g)?.length, 1, 'kexec: the firmware ran once, at power-on');
    const r = first.progress?.result;
    assert.ok(r?.ok && r.objects && r.phaseSeconds, 'the installer sent its result with a summary');
    assert.ok(
      r.objects.bytesFetched > 1_000_000,
      `the first install fetched the image (${r.objects.bytesFetched} bytes)`,
    );
    // The disk as the installed OS sees it: GPT with the BIOS boot, root, /home and /data/0 partitions.
    await lab.destroy();
    const table = JSON.parse(execFileSync('sfdisk', ['--json', lab.machines[0].disk], { encoding: 'utf8' })) as {
      partitiontable: { label: string; partitions: unknown[] };
    };
    assert.equal(table.partitiontable.label, 'gpt');
    assert.equal(table.partitiontable.partitions.length, 4);
  });

  test('4: rebirth over the installed system fetches at most 5% of the first install', {
    timeout: 900_000,
  }, async () => {
    assert.ok(first?.progress?.result?.objects, 'needs the first install');
    const [again] = await runLab(lab, { rebirth: true, timeoutSeconds: 600, accel });
    assert.equal(again.state, 'healthy', explain(again, lab));
    await lab.machines[0].running!.waitFor(new RegExp(TINY_OS_MARKER), 60_000);
    assert.match(consoleOf(lab), /Installing lab1 \(rebirth\)/);
    const before = first.progress!.result!.objects!;
    const now = again.progress!.result!.objects!;
    assert.ok(
      now.bytesFetched <= 0.05 * before.bytesFetched,
      `rebirth fetched ${now.bytesFetched} bytes, the first install ${before.bytesFetched}`,
    );
    assert.ok(
      now.bytesFromCache > before.bytesFetched * 0.9,
      `the old system supplied the image (${now.bytesFromCache} bytes from cache)`,
    );
  });
});

describe('VM: the image server is unreachable', { skip }, () => {
  let dir: string;
  let lab: Lab;

  before(() => {
    dir = tmpDir('cradle-e2e-fail-');
    // A long wait: the operator's look at the failed installer below ends it (reboot now).
    lab = tinyLab(dir, 'fail', { imageServer: false, installerArgs: 'cradle.failure-wait=900' });
  });
  after(async () => {
    await lab?.destroy();
    if (dir) removeWorkDir(dir);
  });

  test('5: the installer reports the failure, waits, and the machine never boots a half-written disk', {
    timeout: 600_000,
  }, async () => {
    const [t] = await runLab(lab, { rebirth: false, timeoutSeconds: 300, accel });
    assert.equal(t.state, 'failed', explain(t, lab));
    assert.match(
      t.progress?.result?.error ?? '',
      /image server|10\.77\.0\.1:6971|connect/i,
      'the boot server knows why',
    );
    const machine = lab.machines[0].running!;
    await machine.waitFor(/FAILED after/, 60_000);
    await operatorLooksAt(lab);
    // The installer restarts the machine; the boot server now answers "boot the disk", and the
    // disk holds nothing bootable.
    await machine.waitFor(/SeaBIOS \(version/, 120_000);
    await machine.waitFor(/No bootable device/, 180_000);
    const log = consoleOf(lab);
    assert.doesNotMatch(log, new RegExp(TINY_OS_MARKER));
    assert.match(log, /\bexit\b|Booting from Hard Disk/, 'iPXE was told to leave the machine to its disk');
    await lab.destroy();
    // Nothing was written: the failure came before any drive was touched.
    assert.ok(fs.statSync(lab.machines[0].disk).size > 0, 'the disk is there');
    assert.throws(
      () => execFileSync('sfdisk', ['--dump', lab.machines[0].disk], { stdio: 'pipe' }),
      (e: { stderr?: Buffer }) => /does not contain a recognized partition table/.test(String(e.stderr)),
    );
  });
});
