// VM end to end (QEMU under TCG): a machine's own installer ISO at a site without DHCP (issue 17
// item 7, Dominator's per-machine ISO). The lab's network has no DHCP server at all (nor TFTP): its
// boot server serves HTTP only, for the installer's reports and the installed system's report-in.
// `cradle build-installer --iso --machine lab1 --from <the lab's installer image>` writes lab1.iso,
// whose initramfs carries lab1's configuration (static address, subnet, image, layout, servers) at
// /tftpdata. The machine, a blank disk and that ISO in its CD drive (BIOS; disks first, so it falls
// through to the CD), installs from it with its injected address, kexecs into the installed tiny
// OS, which reports in: healthy. With mutual TLS between the installer, the image server and the
// boot server, as in the lab.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { type Lab, SERVER, timelineOf } from '../../src/lab/lab.ts';
import { done, summaryTable, type Timeline } from '../../src/lab/report.ts';
import { TINY_OS_MARKER } from '../../src/lab/tiny-os.ts';
import { cradleBin, isRoot, removeWorkDir, tmpDir } from '../helpers.ts';
import { consoleOf, explain, testLab, vmAccelerator } from './vm.ts';

const canRun =
  isRoot() &&
  fs.existsSync('/usr/bin/qemu-system-x86_64') &&
  fs.existsSync('/usr/bin/grub-mkrescue') &&
  fs.readdirSync('/boot').some((f) => f.startsWith('vmlinuz-'));
const accel = await vmAccelerator(canRun);
const skip = !canRun && 'needs root, qemu-system-x86, grub-mkrescue and a kernel in /boot';

/** Waits for the machine to be installed and report in (or fail, or power off). */
async function installed(lab: Lab, timeoutSeconds: number): Promise<Timeline> {
  const m = lab.machines[0];
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const t = await timelineOf(lab, m);
    if (Date.now() > deadline && !done(t)) t.problem = `not done after ${timeoutSeconds} s`;
    if (done(t)) return t;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe("VM: a machine's own ISO installs it where there is no DHCP", { skip }, () => {
  let dir: string;
  let lab: Lab;

  before(() => {
    dir = tmpDir('cradle-e2e-machine-iso-');
    lab = testLab(dir, 'machineiso', { image: 'tiny', diskGiB: 4, bootServerRoles: ['http'] });
  });
  after(async () => {
    await lab?.destroy();
    if (dir) removeWorkDir(dir);
  });

  test('booted from lab1.iso with a blank disk: installs with its injected address, its OS reports in', {
    timeout: 1_100_000,
  }, async (ctx) => {
    await lab.prepare();
    await lab.markForInstall(false);
    const m = lab.machines[0];
    const out = path.join(dir, 'iso');
    // As an operator would: the lab's installer image (with the lab's certificates) and database.
    const { stdout } = await promisify(execFile)(
      cradleBin,
      [
        'build-installer',
        '--out',
        out,
        '--iso',
        '--machine',
        m.hostname,
        '--db',
        lab.db,
        '--address',
        SERVER,
        '--https',
        '--from',
        lab.installerDir!,
      ],
      { encoding: 'utf8' },
    );
    assert.match(stdout, /wrote .*lab1\.iso: .* with lab1's configuration at \/tftpdata \(config\.json, /);
    m.cdrom = path.join(out, 'lab1.iso');

    await lab.startServers();
    lab.powerOn(m, accel);
    const t = await installed(lab, 900);
    ctx.diagnostic(summaryTable([t]));
    assert.equal(t.state, 'healthy', explain(t, lab));
    await m.running!.waitFor(new RegExp(TINY_OS_MARKER), 60_000);

    const log = consoleOf(lab);
    assert.match(log, /Booting from DVD\/CD/, 'the blank disk fell through to the CD');
    assert.match(log, /\/tftpdata\/config\.json is present: using it, no DHCP/);
    assert.doesNotMatch(log, /Installing lab1|DHCP: \d/, 'no network boot, no DHCP lease');
    assert.match(log, /: 10\.77\.0\.11\/24 via 10\.77\.0\.1/, "the installer took lab1's address from config.json");
    assert.match(log, /booting the new system with kexec/);
    assert.match(log, /tiny-os: up .* as lab1, root \/dev\/vda2/);
    assert.match(log, /tiny-os: reported in to http:\/\/10\.77\.0\.1:6977 as 52:54:00:77:00:01/);
    const r = t.progress?.result;
    assert.ok(r?.ok && r.objects && r.objects.bytesFetched > 1_000_000, 'the installer fetched the image and said so');

    // The boot server ran no DHCP (nor TFTP): nothing on the lab's network could have answered.
    const server = fs.readFileSync(path.join(lab.logs, 'bootserver.log'), 'utf8');
    assert.match(server, /HTTP boot on /);
    assert.doesNotMatch(server, /DHCP on |TFTP on /);
  });
});
