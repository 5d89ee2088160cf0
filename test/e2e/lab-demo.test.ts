// VM end to end with the demo OS (Debian with systemd, QEMU under TCG): a UEFI machine installs
// with /home and /data encrypted and restarts through its firmware and GRUB into the installed
// system, which opens and mounts them; a machine with three NICs comes up with Dominator's example's
// bond, VLANs and bridges. The installed system's cradle-report.service prints what it brought up
// on the console and reports in.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { runLab, type Lab, type LabOptions } from '../../src/lab/lab.ts';
import { OVMF_CODE } from '../../src/lab/qemu.ts';
import type { Timeline } from '../../src/lab/report.ts';
import { isRoot, removeWorkDir, tmpDir } from '../helpers.ts';
import { consoleOf, explain, testLab, vmAccelerator } from './vm.ts';

const canRun = isRoot() && fs.existsSync('/usr/bin/qemu-system-x86_64') && fs.existsSync('/usr/bin/mmdebstrap');
const accel = await vmAccelerator(canRun);
const skip = !canRun && 'needs root, qemu-system-x86 and mmdebstrap';

function newLab(tag: string, extra: Partial<LabOptions>): { lab: Lab; dir: string } {
  const dir = tmpDir(`cradle-e2e-${tag}-`);
  return { dir, lab: testLab(dir, tag, { image: 'demo', diskGiB: 6, ...extra }) };
}

/** What the installed system said about itself, for failure messages. */
const reportLines = (log: string) =>
  `the installed system reported:\n${log
    .split('\n')
    .filter((l) => l.includes('cradle-report: '))
    .join('\n')}`;

/**
 * Runs the lab until the machine is done; once it reported in, waits for the reporter's last
 * console line (the report arrives before the line is printed), then stops the lab.
 */
async function installed(lab: Lab): Promise<Timeline> {
  try {
    const [t] = await runLab(lab, { rebirth: false, timeoutSeconds: 1200, accel });
    assert.equal(t.state, 'healthy', explain(t, lab));
    await lab.machines[0].running!.waitFor(/CRADLE-DEMO-OS-UP/, 60_000);
    return t;
  } finally {
    await lab.destroy();
  }
}

describe('VM: demo OS', { skip }, () => {
  // Each test stops its lab when it ends (two emulated machines at once would starve each other);
  // `after` removes whatever a failed test left.
  const labs: { lab: Lab; dir: string }[] = [];
  after(async () => {
    for (const { lab, dir } of labs) {
      await lab.destroy();
      removeWorkDir(dir);
    }
  });

  test('2: UEFI, /home and /data on LUKS, restart through the firmware and GRUB; the installed OS mounts them', {
    skip: !fs.existsSync(OVMF_CODE) && 'needs ovmf',
    timeout: 1_500_000,
  }, async () => {
    const l = newLab('uefi', { firmware: 'uefi', encrypt: true, kexec: false });
    labs.push(l);
    await installed(l.lab);
    const log = consoleOf(l.lab);
    assert.match(
      log,
      /ran chroot \S+ \/\S*cryptsetup luksFormat .*\/dev\/vda\d/,
      "the installer made LUKS containers, with the image's own cryptsetup",
    );
    assert.match(log, /restarting/, 'no kexec: the installer restarted the machine');
    assert.ok(
      (log.match(/Installing lab1 \(birth\)/g) ?? []).length === 1,
      'the second network boot did not install again',
    );
    assert.match(
      log,
      /cradle-report: mounts: .*\/home \/dev\/mapper\/\S+ ext4/,
      `/home is mounted from its LUKS mapping; ${reportLines(log)}`,
    );
    assert.match(
      log,
      /cradle-report: mounts: .*\/data\/0 \/dev\/mapper\/\S+ ext4/,
      `/data/0 is mounted from its LUKS mapping; ${reportLines(log)}`,
    );
    assert.match(log, /cradle-report: reported in to http:\/\/10\.77\.0\.1:6977/);
  });

  test("3: three NICs: the installed OS comes up with Dominator's example's bond, VLANs and bridges", {
    timeout: 1_500_000,
  }, async () => {
    const l = newLab('nics', { nics: 3 });
    labs.push(l);
    await installed(l.lab);
    const log = consoleOf(l.lab);
    assert.match(
      log,
      /cradle-report: addresses: .*eth0=10\.77\.0\.11\/24/,
      `management address on the boot NIC; ${reportLines(log)}`,
    );
    assert.match(log, /cradle-report: bond bond0 mode 802\.3ad slaves (eth1 eth2|eth2 eth1)\r?\n/, reportLines(log));
    assert.match(log, /cradle-report: bridge br100 ports bond0\.100\s/, reportLines(log));
    assert.match(log, /cradle-report: bridge br120 ports bond0\.120\s/, reportLines(log));
    assert.match(log, /cradle-report: links: .*bond0\.100(@bond0)?=UP/, reportLines(log));
  });
});
