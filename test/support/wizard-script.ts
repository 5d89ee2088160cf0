// What a person types at `cradle setup`'s wizard on the lab's head node (src/lab/head-lab-plan.ts:
// two NICs, eth0 52:54:00:10:00:01 public and eth1 52:54:00:10:00:02 provisioning; two 30 GiB
// virtio disks; an OS kit and the Cradle kit on the medium), as a script of prompts and replies
// for a TerminalSession (terminal-session.ts). It goes Back once and walks into the three
// refusals on their screens (one disk short of 40 GB, /boot on LVM, no OS kit), each message
// expected, before it gives the lab's answers (labWizardAnswers). Rehearsed in seconds against
// the wizard in a PTY with the head node's facts (test/setup-wizard-lab.test.ts); the same
// script then drives the head node's serial console. The regular expressions allow for the
// wizard's wrapping at 80 columns and for the kit versions of the medium.
import type { ScriptStep } from './terminal-session.ts';

/** A phrase as printed, wherever the wizard wrapped it: every space may be a line break and indent. */
export function phrase(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&').replace(/ /g, '\\s+'));
}

/** A prompt: the last thing printed, waiting for a line. */
const prompt = (text: string) => new RegExp(`${phrase(text).source}: $`);

const ask = (text: string, reply: string): ScriptStep => ({ expect: prompt(text), reply });
const see = (text: string | RegExp): ScriptStep => ({ expect: typeof text === 'string' ? phrase(text) : text });
const step = (n: number, title: string) => see(`Step ${n} of 11: ${title}`);

/** The answers the script leaves, as the wizard writes them (the root password: its hash, salted). */
export const labWizardAnswers = {
  cradleSetup: 1,
  language: 'en_US.UTF-8',
  keyboard: 'de',
  timezone: 'Europe/Berlin',
  hostname: 'head.lab.test',
  network: {
    interfaces: [
      { match: { mac: '52:54:00:10:00:01' }, role: 'public', ipv4: 'dhcp' },
      { match: { mac: '52:54:00:10:00:02' }, role: 'provisioning', ipv4: '10.1.0.1/24' },
    ],
    gateway: 'dhcp',
    dns: 'dhcp',
  },
  disks: { pick: 'all', layout: 'default' },
  kits: { fromMedia: 'all', urls: [] },
} as const;

/** The lab head node's wizard, start to confirmation, with one Back and three refusals. */
export function labWizardScript(o: { password: string }): ScriptStep[] {
  const defaultVolumes = ['swap 2GiB', '/ 16GiB', '/var 4GiB', '/home 4GiB', '/depot rest'];
  return [
    step(1, 'Welcome'),
    see('This machine: BIOS firmware, 3 disks, 2 network interfaces.'),
    ask('Press Enter to begin', ''),
    step(2, 'Language'),
    ask('locale [en_US.UTF-8]', ''),
    step(3, 'Keyboard'),
    ask('keymap [us]', 'de'),

    step(4, 'Network'),
    // No link as the wizard starts: nothing has brought the NICs up (sysfs has no carrier for a
    // NIC that is down); with the network up for answers by URL, the link is up.
    see(/eth0 +52:54:00:10:00:01 +virtio_net +(no link|link up)/),
    see(/eth1 +52:54:00:10:00:02 +virtio_net +(no link|link up)/),
    // Back: the keyboard screen again, with what was typed there.
    ask('eth0 role (public/provisioning/unused) [public]', '<'),
    step(3, 'Keyboard'),
    ask('keymap [de]', ''),
    step(4, 'Network'),
    ask('eth0 role (public/provisioning/unused) [public]', ''),
    ask('eth0 address (dhcp or address/prefix) [dhcp]', ''),
    ask('eth1 role (public/provisioning/unused) [provisioning]', ''),
    ask('eth1 address/prefix [10.1.0.1/24]', ''),
    step(5, 'Gateway and DNS'),
    see('eth0 takes an address from DHCP'),
    ask('gateway (dhcp or an address) [dhcp]', ''),
    ask('DNS servers (dhcp, or up to 3 addresses) [dhcp]', ''),
    step(6, 'Host name'),
    ask('host name', 'head.lab.test'),
    step(7, 'Time zone'),
    ask('time zone [UTC]', 'Europe/Berlin'),
    step(8, 'Root password'),
    ask('root password', o.password),
    ask('the same password again', o.password),

    step(9, 'Partitioning'),
    see('1 /dev/vda (no model, no serial, 32.2 GB)'),
    see('2 /dev/vdb (no model, no serial, 32.2 GB)'),
    // Refusal 1: one 30 GiB disk (32.2 GB) is short of the 40 GB a head node needs.
    ask('disks to use (numbers or names, or all) [1 2]', '1'),
    ask('layout (default or custom) [default]', ''),
    step(9, 'Partitioning'),
    see(
      '! the disks chosen (vda 32.2 GB) hold 32.2 GB: a head node needs at least 40.0 GB in all, 7.8 GB more: choose more or larger disks',
    ),
    ask('disks to use (numbers or names, or all) [1]', '1 2'),
    // Refusal 2: a custom layout whose /boot is in LVM (no 'plain'), where GRUB does not look.
    ask('layout (default or custom) [default]', 'custom'),
    ask('volume 1 [/boot 1GiB plain]', '/boot 1GiB'),
    ...defaultVolumes.map((v, i) => ask(`volume ${i + 2} [${v}]`, '')),
    ask('volume 7 [.]', ''),
    step(9, 'Partitioning'),
    see("! /boot is on LVM, where GRUB does not look for it: write 'plain' on /boot's line"),
    ask('disks to use (numbers or names, or all) [1 2]', ''),
    // Then the default layout after all.
    ask('layout (default or custom) [custom]', 'default'),

    step(10, 'Kits'),
    see(/debian\/12 \(OS kit, debian-12\)/),
    // Refusal 3: the Cradle kit alone, no OS kit to install the head node from.
    ask('kits from the medium (numbers or names, all or none) [all]', 'cradle'),
    ask('kit URL 1 (- drops it, . ends) [.]', ''),
    step(10, 'Kits'),
    see(/! no OS kit among the kits chosen \(cradle\/\S+ \(add-on\)\)/),
    ask('kits from the medium (numbers or names, all or none) [cradle]', 'all'),
    ask('kit URL 1 (- drops it, . ends) [.]', ''),

    step(11, 'Confirmation'),
    see('/dev/vda (no model, no serial, 32.2 GB)'),
    see('/dev/vdb (no model, no serial, 32.2 GB)'),
    ask('Type yes to erase the disks above and install', 'yes'),
    see('Confirmed: the answers are complete.'),
  ];
}
