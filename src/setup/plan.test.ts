// The head node's install planned from answers and a machine's facts: golden plans for one disk
// (BIOS) and two disks (UEFI, LVM across both), the kickstart written from the same plan, and each
// rule of Kusu and of Cradle refused with its own message before any disk is touched.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type Answers, AnswersError, parseAnswers } from './answers.ts';
import { parseFacts } from './facts.ts';
import { kickstart } from './kickstart.ts';
import { describePlan, planSetup } from './plan.ts';
import { describeCommands, headStorageCommands } from './storage.ts';
import { systemFiles, withRootPassword } from './system-files.ts';
import { renderNetworkFiles } from '../netconfig/files.ts';
import { headNetworkFiles } from './network.ts';
import { headNodeEnv } from './services.ts';

const testdata = (f: string) => path.join(import.meta.dirname, 'testdata', f);
const facts = (f: string) => parseFacts(fs.readFileSync(testdata(f), 'utf8'), f);
const head = parseAnswers(fs.readFileSync(testdata('head.yaml'), 'utf8'), 'head.yaml');
const SALT = 'cradlesalt012345';

function golden(name: string, actual: string): void {
  const file = testdata(name);
  if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs (UPDATE_GOLDEN=1 rewrites it after review)`);
}

const refused = (a: Answers, f: string, re: RegExp) =>
  assert.throws(
    () => planSetup(a, facts(f), { salt: SALT }),
    (e) => e instanceof AnswersError && re.test(e.message),
  );

/** The one-disk machine: its SSD, the stick it booted from, three NICs. */
const oneDisk: Answers = {
  ...head,
  network: {
    interfaces: [
      { match: { name: 'eno1' }, role: 'public', ipv4: '192.0.2.10/24' },
      {
        match: { name: 'eno2' },
        role: 'provisioning',
        ipv4: '10.20.0.1/16',
        pool: { start: '10.20.1.1', end: '10.20.9.254' },
      },
    ],
    gateway: '192.0.2.1',
    dns: ['192.0.2.53', '192.0.2.54'],
  },
  disks: { pick: 'largest', layout: 'default' },
};

/** The network files the install writes, by the installer's renderer, as one text. */
const networkText = (plan: ReturnType<typeof planSetup>, flavour: 'ifupdown' | 'networkd') => {
  const { files, enable } = renderNetworkFiles({ ...headNetworkFiles(plan.network), flavour });
  return [
    ...[...files].map(([p, t]) => `== ${p}\n${t}`),
    ...enable.map((e) => `== enable ${e.unit} (${e.wantedBy})\n`),
  ].join('');
};

describe('the head node planned', () => {
  it('two disks, UEFI: an ESP and /boot on the first, one volume group across both, /depot the rest', () => {
    const plan = planSetup(head, facts('two-disks.json'), { salt: SALT });
    golden('plan-two-disks.txt', describePlan(plan));
    golden('ks-two-disks.cfg', kickstart(plan));
    golden('storage-two-disks.sh', describeCommands(headStorageCommands(plan.storage, '/target')));
    const files = systemFiles(plan);
    golden(
      'system-two-disks.txt',
      [
        ...files.files.map((f) => `== ${f.path} (${f.mode.toString(8)})\n${f.content}`),
        ...files.links.map((l) => `== ${l.path} -> ${l.target}\n`),
      ].join(''),
    );
    golden('network-two-disks.txt', networkText(plan, 'networkd'));
    golden('head-node-two-disks.env', headNodeEnv(plan, 'nodegroup/compute'));
    assert.deepEqual(
      plan.wipe.map((d) => d.name),
      ['vda', 'vdb'],
    );
    assert.equal(plan.answers.rootPassword?.plain, undefined, 'the saved answers hold no plain password');
    assert.match(plan.rootPasswordHash, /^\$6\$cradlesalt012345\$/);
    assert.deepEqual(plan.network.provisioning.subnet.pool, { start: '10.1.0.128', end: '10.1.0.254' });
  });

  it('one disk, BIOS: a BIOS boot partition, the stick it booted from left alone, static public side', () => {
    const plan = planSetup(oneDisk, facts('one-disk.json'), { salt: SALT });
    golden('plan-one-disk.txt', describePlan(plan));
    golden('ks-one-disk.cfg', kickstart(plan));
    golden('storage-one-disk.sh', describeCommands(headStorageCommands(plan.storage, '/target')));
    golden('network-one-disk.txt', networkText(plan, 'ifupdown'));
    assert.deepEqual(
      plan.wipe.map((d) => d.name),
      ['sda'],
    );
  });

  it("root's password goes into /etc/shadow, every other line and field kept", () => {
    const shadow = 'root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n';
    const out = withRootPassword(shadow, '$6$s$h').split('\n');
    assert.match(out[0], /^root:\$6\$s\$h:\d+:0:99999:7:::$/);
    assert.equal(out[1], 'daemon:*:19000:0:99999:7:::');
    assert.match(withRootPassword('', '$6$s$h'), /^root:\$6\$s\$h:/);
  });

  it('refuses what Kusu forbids, each with its own message', () => {
    refused(
      { ...head, disks: { match: { path: '/dev/vda' }, pick: 'all', layout: 'default' } },
      'two-disks.json',
      /the disks chosen \(vda 32\.2 GB\) hold 32\.2 GB: a head node needs at least 40\.0 GB in all, 7\.8 GB more/,
    );
    const custom = (layout: NonNullable<Answers['disks']>['layout']) => ({
      ...head,
      disks: { ...head.disks!, layout },
    });
    refused(
      custom([
        { mount: '/boot', size: 2 ** 30 },
        { mount: '/', size: 'rest' },
        { mount: '/depot', size: 10e9 },
      ]),
      'two-disks.json',
      /\/boot is on LVM, where GRUB does not look for it: write 'lvm: false' for \/boot/,
    );
    refused(
      custom([
        { mount: '/boot', size: 2 ** 30, lvm: false },
        { mount: '/', size: 'rest' },
      ]),
      'two-disks.json',
      /the layout has no \/depot \(the kits and the images of every node group\): add a volume with 'mount: \/depot'/,
    );
    refused(
      custom([
        { mount: '/boot', size: 2 ** 30, lvm: false },
        { mount: '/', size: 'rest' },
        { mount: '/depot', size: 'rest' },
      ]),
      'two-disks.json',
      /\/ and \/depot both take 'the rest'/,
    );
    refused(
      custom([
        { mount: '/boot', size: 2 ** 30, lvm: false },
        { mount: '/', size: 40e9 },
        { mount: '/depot', size: 30e9 },
      ]),
      'two-disks.json',
      /the volumes in LVM want 70\.0 GB, the volume group has 62\.8 GB/,
    );
  });

  it('refuses disks and networks that cannot be, naming the key', () => {
    refused(
      { ...head, disks: { match: { model: 'QEMU DVD*' }, pick: 'all', layout: 'default' } },
      'two-disks.json',
      /'disks\.match' selects \/dev\/sr0 .*the medium the setup booted from, which is never wiped/,
    );
    refused(
      { ...head, disks: { match: { serial: 'nosuch' }, pick: 'all', layout: 'default' } },
      'two-disks.json',
      /'disks\.match' selects no disk: the disks of this machine:\n {2}\/dev\/vda \(no model, serial head-a, 32\.2 GB\)/,
    );
    const net = (interfaces: NonNullable<Answers['network']>['interfaces'], more = {}) => ({
      ...head,
      network: { interfaces, ...more },
    });
    refused(
      net([{ match: { name: 'ens3' }, role: 'public', ipv4: 'dhcp' }]),
      'two-disks.json',
      /no provisioning network: give one interface 'role: provisioning'/,
    );
    refused(
      net(
        [
          { match: { name: 'ens3' }, role: 'public', ipv4: '10.1.0.1/24' },
          { match: { name: 'ens4' }, role: 'provisioning', ipv4: '10.1.0.1/24' },
        ],
        { dns: ['10.1.0.53'] },
      ),
      'two-disks.json',
      /ens3 and ens4 both have 10\.1\.0\.1: give each its own address/,
    );
    refused(
      net([{ match: { name: 'ens*' }, role: 'provisioning', ipv4: '10.1.0.1/24' }], { dns: ['10.1.0.53'] }),
      'two-disks.json',
      /'network\.interfaces\[0\]\.match' matches ens3 and ens4: narrow it to one NIC/,
    );
    refused(
      net([{ match: { name: 'ens4' }, role: 'provisioning', ipv4: 'dhcp' }], { dns: ['10.1.0.53'] }),
      'two-disks.json',
      /a provisioning network has a static address \(the head node is its DHCP server\)/,
    );
    refused(
      net([{ match: { name: 'eth9' }, role: 'provisioning', ipv4: '10.1.0.1/24' }], { dns: ['10.1.0.53'] }),
      'two-disks.json',
      /'network\.interfaces\[0\]\.match' matches no NIC; the NICs of this machine: ens3 \(52:54:00:12:34:01, virtio_net, link up\)/,
    );
    refused({ ...head, hostname: undefined }, 'two-disks.json', /the answers leave out 'hostname'/);
  });
});
