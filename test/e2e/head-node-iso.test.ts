// VM end to end (QEMU under TCG): a machine boots the head-node ISO, whose first menu entry runs
// `cradle setup` on the console. The setup finds its medium by its label, its answers on it (named
// on the kernel command line), reads the machine's own facts (two blank 30 GiB disks, so only both
// together pass the 40 GB rule; two NICs chosen by MAC) and plans the install.
//   1. Without cradle.wipe=yes it stops at the confirmation and touches no disk: both disk files
//      stay empty.
//   2. UEFI (OVMF), with cradle.wipe=yes: an ESP on the first disk, GRUB on its removable path, and
//      the head node starts from it.
// The BIOS install through the first boot, the services and a compute node born by the head node
// is test/e2e/head-lab-zero-touch.test.ts (`cradle lab --head-node`'s own parts); the wizard on the
// serial console and the refused answers are head-lab-wizard and head-lab-refusals.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cachedInstallerImage } from '../../src/initramfs/build.ts';
import { debianRootfs } from '../../src/lab/debian-rootfs.ts';
import { buildHeadNodeIso } from '../../src/initramfs/iso.ts';
import { OVMF_CODE, OVMF_VARS, RunningMachine } from '../../src/lab/qemu.ts';
import { cacheDir } from '../../src/util/build-cache.ts';
import { isRoot, tmpDir } from '../helpers.ts';
import { buildTestKit } from '../support/test-kits.ts';

const canRun =
  isRoot() &&
  fs.existsSync('/usr/bin/qemu-system-x86_64') &&
  fs.existsSync('/usr/bin/grub-mkrescue') &&
  fs.existsSync('/usr/bin/mmdebstrap');
const skip = !canRun && 'needs root, qemu-system-x86, grub-mkrescue and mmdebstrap';

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
  let cradleKit: string;
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
    );
    cradleKit = await buildTestKit(work, { name: 'cradle', version: '0.1.0', component: 'cradle:head:any' });
    kits.push(cradleKit);
    answers = path.join(work, 'answers.yaml');
    fs.writeFileSync(answers, ANSWERS);
    image = await cachedInstallerImage(cacheDir);
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  /** The head-node demo OS (Debian with systemd, LVM, PostgreSQL) as an OS kit, built once. */
  let osKit: Promise<string> | undefined;
  const headOsKit = () => {
    osKit ??= (async () => {
      const dir = path.join(work, 'head-os');
      fs.mkdirSync(dir, { recursive: true });
      return buildTestKit(dir, { name: 'debian', version: '12', os: 'debian-12', tree: debianRootfs('head') });
    })();
    return osKit;
  };

  /** Root's login on the serial console, with the answers' password. */
  async function logIn(machine: RunningMachine): Promise<void> {
    await machine.waitFor(/head login: /, 600_000);
    machine.type('root\r');
    await machine.waitFor(/Password: /, 60_000);
    machine.type('a-long-password\r');
    await machine.waitFor(/root@head:~# /, 120_000);
  }

  /**
   * A machine with two blank disks and two NICs, booting the ISO; its console in `name`.log. The
   * disks come first in the boot order: blank, the firmware falls through to the ISO; installed,
   * the machine starts from them.
   */
  async function boot(
    name: string,
    setupArgs?: string,
    isoKits = kits,
    firmware: 'bios' | 'uefi' = 'bios',
  ): Promise<{ machine: RunningMachine; disks: string[] }> {
    const iso = await buildHeadNodeIso(image, path.join(work, name), path.join(work, `${name}.iso`), {
      kits: isoKits,
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
    const vars = path.join(work, `${name}-OVMF_VARS.fd`);
    if (firmware === 'uefi') fs.copyFileSync(OVMF_VARS, vars);
    const machine = new RunningMachine(
      [
        'qemu-system-x86_64',
        ...['-accel', 'tcg,thread=multi', '-smp', '2', '-m', '1536', '-nographic'],
        ...(firmware === 'uefi'
          ? [
              ...['-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`],
              ...['-drive', `if=pflash,format=raw,unit=1,file=${vars}`],
            ]
          : []),
        ...nic('pub', '52:54:00:c0:00:01'),
        ...nic('prov', '52:54:00:c0:00:02'),
        ...disks.flatMap((d, i) => [
          '-drive',
          `file=${d},format=raw,if=none,id=disk${i}`,
          '-device',
          `virtio-blk-pci,drive=disk${i},bootindex=${i + 1}`,
        ]),
        ...['-drive', `file=${iso},format=raw,media=cdrom,readonly=on,if=none,id=cd`],
        ...['-device', 'ide-cd,drive=cd,bootindex=9'],
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
      // The answers as used stay in the live system, the password only as its hash (replayable).
      machine.type('cat /run/cradle/answers.yaml; echo "kept-$((6*7))"\r');
      await machine.waitFor(/hostname: head\.lab\.test[\s\S]*hash: \$6\$[\s\S]*\bkept-42/, 60_000);
    } finally {
      await machine.stop();
    }
    for (const d of disks) assert.equal(fs.statSync(d).blocks, 0, `${path.basename(d)}: not a byte written`);
  });

  test('UEFI: an ESP on the first disk, GRUB on its removable path; the head node starts from it', {
    timeout: 1_500_000,
    skip: !fs.existsSync(OVMF_CODE) && `no ${OVMF_CODE}: install the Debian package ovmf`,
  }, async () => {
    const { machine } = await boot('uefi', 'cradle.wipe=yes', [await headOsKit(), cradleKit], 'uefi');
    try {
      await machine.waitFor(/storage \(UEFI\):/, 600_000);
      await machine.waitFor(/cradle setup: ran chroot \/target grub-install --target=x86_64-efi/, 1_200_000);
      await machine.waitFor(/cradle: restarting into the head node head\.lab\.test/, 120_000);
      await machine.waitFor(/Cradle head node, Linux 6\./, 300_000);
      await logIn(machine);
      machine.type(
        'ls -d /sys/firmware/efi; findmnt -n -o SOURCE,FSTYPE /boot/efi; ls /boot/efi/EFI/BOOT; echo "efi-$((6*7))"\r',
      );
      await machine.waitFor(/\/sys\/firmware\/efi\r?\n\/dev\/vda\d+\s+vfat\r?\n.*BOOTX64\.EFI.*\r?\nefi-42/i, 120_000);
    } finally {
      await machine.stop();
    }
  });
});
