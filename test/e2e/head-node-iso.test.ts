// VM end to end (QEMU under TCG): a machine boots the head-node ISO, whose first menu entry runs
// `cradle setup` on the console. The setup finds its medium by its label, its answers on it (named
// on the kernel command line), reads the machine's own facts (two blank 30 GiB disks, so only both
// together pass the 40 GB rule; two NICs chosen by MAC) and plans the install. Without
// cradle.wipe=yes it stops at the confirmation and touches no disk: both disk files stay empty.
// The kits are small ones made for the test (an OS kit and a stand-in `cradle` kit): the setup
// only checks what they are before the confirmation.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
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
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  test('boots into cradle setup, plans from its answers and the machine, and stops at the confirmation', {
    timeout: 900_000,
  }, async () => {
    const kits = [
      await buildTestKit(work, {
        name: 'demo',
        version: '1',
        os: 'debian-12',
        files: { 'etc/os-release': 'ID=demo\n' },
      }),
      await buildTestKit(work, { name: 'cradle', version: '0.1.0', component: 'cradle:head:any' }),
    ];
    const answers = path.join(work, 'answers.yaml');
    fs.writeFileSync(answers, ANSWERS);
    const image = await cachedInstallerImage(cacheDir);
    const iso = await buildHeadNodeIso(image, work, path.join(work, 'head-node.iso'), { kits, answers });
    const disks = ['a', 'b'].map((n) => path.join(work, `disk-${n}.raw`));
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
      path.join(work, 'console.log'),
    );
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
});
