// VM end to end (QEMU under TCG): a machine boots the head-node ISO, whose first menu entry runs
// `cradle setup` on the console. The setup finds its medium by its label, its answers on it (named
// on the kernel command line), reads the machine's own facts (two blank 30 GiB disks, so only both
// together pass the 40 GB rule; two NICs chosen by MAC) and plans the install.
//   1. Without cradle.wipe=yes it stops at the confirmation and touches no disk: both disk files
//      stay empty; the answers as used are in /run/cradle/answers.yaml on the live system.
//   2. With cradle.wipe=yes, from the head-node demo OS (Debian with systemd, LVM, PostgreSQL) as
//      its OS kit: it makes the disks (GPT, LVM across both, file systems), writes the new system
//      from the ISO's kits, installs GRUB and restarts; the machine boots from its disks into the
//      head node (root on LVM). Its first boot carries the machine database into PostgreSQL and
//      starts the boot and image servers on the provisioning network; root logs in on the serial
//      console with the answers' password and finds its host name, volumes, depot, network,
//      services and the database in PostgreSQL, row for row.
// The first test carries a stand-in `cradle` kit (the setup needs one; it stops before using
// it); the second the real Cradle kit, built from this tree, which the head node then runs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cachedInstallerImage } from '../../src/initramfs/build.ts';
import { buildCradleKit } from '../../src/kit/cradle-kit.ts';
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

  test('with cradle.wipe=yes: LVM across both disks, the new system, GRUB; it restarts into the head node', {
    timeout: 1_500_000,
  }, async () => {
    const osKit = await headOsKit();
    const realCradleKit = path.join(work, 'head-os', 'cradle.kit');
    await buildCradleKit({ out: realCradleKit });
    const { machine } = await boot('wipe', 'cradle.wipe=yes', [osKit, realCradleKit]);
    try {
      await machine.waitFor(/cradle setup: making the disks: \/dev\/vda, \/dev\/vdb/, 420_000);
      await machine.waitFor(/cradle setup: kit debian\/12 \(os\) from \S+ in \/target\/depot/, 600_000);
      await machine.waitFor(/cradle setup: node groups head, compute in \/var\/lib\/cradle\/inventory\.db/, 300_000);
      await machine.waitFor(/cradle setup: ran chroot \/target grub-install --target=i386-pc/, 300_000);
      await machine.waitFor(
        /cradle setup: the head node head\.lab\.test is installed: it boots from \/dev\/vda/,
        120_000,
      );
      await machine.waitFor(/cradle: restarting into the head node head\.lab\.test/, 60_000);
      // From its own disks now: GRUB on /boot, the kernel, the initramfs finding the root volume.
      await machine.waitFor(/Cradle head node, Linux 6\./, 300_000);
      // The first boot, on the console: the database into PostgreSQL, checked.
      await machine.waitFor(
        /cradle first boot: machine database copied in PostgreSQL \(postgresql:\/\/root@\/cradle\?host=\/run\/postgresql\), checked row for row: subnets 1, node_groups 2, node_group_components \d+, machines 0/,
        900_000,
      );
      // The login prompt may have come before those lines: Enter asks for a fresh one.
      machine.type('\r');
      await logIn(machine);
      machine.type(
        'hostname; findmnt -n -o SOURCE /; ls /depot/kits | tr "\\n" " "; echo; ls /var/lib/cradle; echo "head-$((6*7))"\r',
      );
      await machine.waitFor(
        /\bhead\r?\n\/dev\/mapper\/cradle-root\r?\ncradle debian\s*\r?\nfirst-boot\.done\s+inventory\.db\.before-postgresql\r?\nhead-42/,
        120_000,
      );
      // The network the answers gave, by the installer's own renderer (systemd-networkd here).
      machine.type('ip -4 -o addr show | grep -o "inet [0-9./]*" | tr "\\n" " "; echo "net-$((6*7))"\r');
      await machine.waitFor(/inet 192\.0\.2\.10\/24 inet 10\.77\.0\.1\/24 net-42/, 60_000);
      // The services: waited for (they start at their own pace) until both are active and the
      // boot server answers DHCP on the provisioning interface.
      machine.type(
        'until [ "$(systemctl is-active cradle-server cradle-imageserver | tr -d "\\n")" = activeactive ] && journalctl -u cradle-server -o cat | grep -q "DHCP on eth1"; do sleep 2; done; echo "up-$((6*7))"\r',
      );
      await machine.waitFor(/\bup-42/, 600_000);
      // Every cradle command on the head node uses its database (PostgreSQL now) by default.
      machine.type(
        'grep ^CRADLE_DB= /etc/cradle/head-node.env; cradle nodegroup list | awk "NR>1{print \\$1}" | tr "\\n" " "; echo "db-$((6*7))"\r',
      );
      await machine.waitFor(
        /CRADLE_DB=postgresql:\/\/root@\/cradle\?host=\/run\/postgresql\r?\ncompute head db-42/,
        300_000,
      );
      // The dashboard, over mutual TLS, with the operator certificate the install made.
      const tls =
        '--cacert /etc/cradle/ca/ca.pem --cert /etc/cradle/tls/operator/cert.pem --key /etc/cradle/tls/operator/key.pem';
      machine.type(`curl -s -o /dev/null -w "%{http_code}" ${tls} https://10.77.0.1:6977/; echo " dash-$((6*7))"\r`);
      await machine.waitFor(/\b200 dash-42/, 120_000);
    } finally {
      await machine.stop();
    }
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
