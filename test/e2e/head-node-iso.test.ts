// VM end to end (QEMU under TCG): a machine boots the head-node ISO, whose first menu entry runs
// `cradle setup` on the console. The setup finds its medium by its label, its answers on it (named
// on the kernel command line), reads the machine's own facts (two blank 30 GiB disks, so only both
// together pass the 40 GB rule; two NICs chosen by MAC) and plans the install.
//   1. Without cradle.wipe=yes it stops at the confirmation and touches no disk: both disk files
//      stay empty.
//   2. With cradle.wipe=yes it makes the disks (GPT, LVM across both, file systems) and writes the
//      new system from the ISO's kits; the console shell then shows the volume group's volumes
//      and the new system's files. (Its boot loader and first boot are not in this release.)
// The kits are small ones made for the test (an OS kit and a stand-in `cradle` kit).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cachedInstallerImage } from '../../src/initramfs/build.ts';
import { buildHeadNodeIso } from '../../src/initramfs/iso.ts';
import { RunningMachine } from '../../src/lab/qemu.ts';
import { cacheDir } from '../../src/util/build-cache.ts';
import { isRoot, tmpDir } from '../helpers.ts';
import { buildTestKit } from '../support/test-kits.ts';

const canRun = isRoot() && fs.existsSync('/usr/bin/qemu-system-x86_64') && fs.existsSync('/usr/bin/grub-mkrescue');
const skip = !canRun && 'needs root, qemu-system-x86 and grub-mkrescue';

const ANSWERS = `cradleSetup: 1
language: en_US.UTF-8
keyboard: us
timezone: UTC
hostname: head.lab.test
rootPassword: { plain: a-long-password }
network:
  interfaces:
    - { match: { mac: "52:54:00:c0:00:01" }, role: public, ipv4: 192.0.2.10/24 }
    - { match: { mac: "52:54:00:c0:00:02" }, role: provisioning, ipv4: 10.77.0.1/24 }
  dns: [192.0.2.53]
disks:
  match: { path: /dev/vd* }
`;

describe('VM: the head-node ISO', { skip }, () => {
  const work = tmpDir('cradle-e2e-head-iso-');
  const kits: string[] = [];
  let answers: string;
  let image: string;
  before(async () => {
    kits.push(
      await buildTestKit(work, {
        name: 'demo',
        version: '1',
        os: 'debian-12',
        files: { 'etc/os-release': 'ID=demo\n', 'etc/shadow': 'root:*:19000:0:99999:7:::\n' },
      }),
      await buildTestKit(work, { name: 'cradle', version: '0.1.0', component: 'cradle:head:any' }),
    );
    answers = path.join(work, 'answers.yaml');
    fs.writeFileSync(answers, ANSWERS);
    image = await cachedInstallerImage(cacheDir);
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  /** A machine with two blank disks and two NICs, booting the ISO; its console in `name`.log. */
  async function boot(name: string, setupArgs?: string): Promise<{ machine: RunningMachine; disks: string[] }> {
    const iso = await buildHeadNodeIso(image, path.join(work, name), path.join(work, `${name}.iso`), {
      kits,
      answers,
      setupArgs,
    });
    const disks = ['a', 'b'].map((n) => path.join(work, `${name}-disk-${n}.raw`));
    for (const d of disks) {
      fs.writeFileSync(d, '');
      fs.truncateSync(d, 30 * 2 ** 30);
    }
    // User-mode networking restricted to the guest itself: the NICs exist, nothing leaves.
    const nic = (id: string, mac: string) => [
      '-netdev',
      `user,id=${id},restrict=on`,
      '-device',
      `virtio-net-pci,netdev=${id},mac=${mac}`,
    ];
    const machine = new RunningMachine(
      [
        'qemu-system-x86_64',
        ...['-accel', 'tcg,thread=multi', '-smp', '2', '-m', '1536', '-nographic'],
        ...nic('pub', '52:54:00:c0:00:01'),
        ...nic('prov', '52:54:00:c0:00:02'),
        ...disks.flatMap((d) => ['-drive', `file=${d},format=raw,if=virtio`]),
        '-cdrom',
        iso,
      ],
      path.join(work, `${name}.log`),
    );
    return { machine, disks };
  }

  test('without cradle.wipe=yes: plans from its answers and the machine, stops at the confirmation', {
    timeout: 900_000,
  }, async () => {
    const { machine, disks } = await boot('no-consent');
    try {
      await machine.waitFor(/Cradle head-node setup/, 120_000);
      await machine.waitFor(/answers from \/run\/cradle\/media\/cradle\/answers\.yaml/, 300_000);
      await machine.waitFor(/ERASED[^\n]*\n\s+\/dev\/vda \([^)]*32\.2 GB\)\s*\n\s+\/dev\/vdb/, 60_000);
      await machine.waitFor(/eth\d\s+52:54:00:c0:00:02\s+provisioning 10\.77\.0\.1\/24/, 60_000);
      await machine.waitFor(/stopped at the confirmation: without cradle\.wipe=yes .*nothing was touched/, 60_000);
      await machine.waitFor(/cradle: the setup exited with status 0/, 60_000);
    } finally {
      await machine.stop();
    }
    for (const d of disks) assert.equal(fs.statSync(d).blocks, 0, `${path.basename(d)}: not a byte written`);
  });

  test('with cradle.wipe=yes: LVM across both disks, the new system written from the kits', {
    timeout: 900_000,
  }, async () => {
    const { machine } = await boot('wipe', 'cradle.wipe=yes');
    try {
      await machine.waitFor(/cradle setup: making the disks: \/dev\/vda, \/dev\/vdb/, 420_000);
      await machine.waitFor(/cradle setup: kit cradle\/0\.1\.0 \(addon\) in \/target\/depot/, 300_000);
      await machine.waitFor(/cradle setup: node groups head, compute in \/var\/lib\/cradle\/inventory\.db/, 300_000);
      await machine.waitFor(/cradle setup: the new system is written in \/target/, 300_000);
      await machine.waitFor(/cradle: the setup exited with status 0/, 60_000);
      // The console shell: what is on the disks now.
      await machine.waitFor(/# /, 60_000);
      machine.type('ls /dev/cradle | tr "\\n" " "; echo; cat /target/etc/hostname; echo "check-$((6*7))"\r');
      await machine.waitFor(/depot home root swap var\s*\r?\n(.*\r?\n)?head\r?\n(.*\r?\n)?check-42/, 60_000);
      machine.type('grep -c " /target" /proc/mounts; ls /target/depot/kits | tr "\\n" " "; echo "kits-$((2+2))"\r');
      await machine.waitFor(/\b5\r?\n(.*\r?\n)?cradle demo\s*kits-4/, 60_000);
    } finally {
      await machine.stop();
    }
  });
});
