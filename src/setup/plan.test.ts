// The head node's install planned from answers and a machine's facts: golden plans for one disk
// (BIOS) and two disks (UEFI, LVM across both), the kickstart written from the same plan, and each
// rule of Kusu and of Cradle refused with its own message before any disk is touched.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
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
import { operatorsPem } from './operators.ts';
import { createCa, issueCertificate } from '../pki/pki.ts';

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
  nodes: [
    { hostname: 'node01', mac: '3c:ec:ef:aa:00:01', ip: '10.20.0.11', nodeGroup: 'compute' },
    { hostname: 'node02.cluster.example', mac: '3c:ec:ef:aa:00:02', nodeGroup: 'compute' },
    { hostname: 'login01', mac: '3c:ec:ef:aa:00:03', ip: '10.20.0.5', nodeGroup: 'head' },
  ],
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
    assert.deepEqual(plan.nodes, [
      { hostname: 'node01', mac: '3c:ec:ef:aa:00:01', ip: '10.20.0.11', nodeGroup: 'compute' },
      { hostname: 'node02.cluster.example', mac: '3c:ec:ef:aa:00:02', nodeGroup: 'compute' },
      { hostname: 'login01', mac: '3c:ec:ef:aa:00:03', ip: '10.20.0.5', nodeGroup: 'head' },
    ]);
  });

  it('refuses compute nodes that cannot be registered, naming each key', () => {
    // The two-disk machine: ens4 (52:54:00:12:34:02) is 10.1.0.1/24, its pool 10.1.0.128-10.1.0.254.
    const nodes = (list: NonNullable<Answers['nodes']>, more: Partial<Answers> = {}) => ({
      ...head,
      ...more,
      nodes: list,
    });
    const node = (hostname: string, mac: string, ip?: string, nodeGroup = 'compute') => ({
      hostname,
      mac,
      ...(ip ? { ip } : {}),
      nodeGroup,
    });
    const cases: [NonNullable<Answers['nodes']>, RegExp][] = [
      [
        [node('n1', '52:54:00:aa:00:01', '10.1.0.10'), node('n1', '52:54:00:aa:00:02', '10.1.0.11')],
        /'nodes\[1\]\.hostname' n1 is also nodes\[0\]'s: give each node its own name/,
      ],
      [
        [node('n1', '52:54:00:aa:00:01'), node('n2', '52:54:00:aa:00:01')],
        /'nodes\[1\]\.mac' 52:54:00:aa:00:01 is also nodes\[0\]'s: give each node its own MAC/,
      ],
      [[node('n1', '52:54:00:12:34:02')], /'nodes\[0\]\.mac' 52:54:00:12:34:02 is the head node's own ens4/],
      [[node('head', '52:54:00:aa:00:01')], /'nodes\[0\]\.hostname' head is the head node's own name/],
      [
        [node('n1', '52:54:00:aa:00:01', '10.2.0.10')],
        /'nodes\[0\]\.ip' 10\.2\.0\.10 is not on the provisioning network 10\.1\.0\.0\/24 \(on ens4\)/,
      ],
      [[node('n1', '52:54:00:aa:00:01', '10.1.0.1')], /'nodes\[0\]\.ip' 10\.1\.0\.1 is the head node's own address/],
      [[node('n1', '52:54:00:aa:00:01', '10.1.0.0')], /'nodes\[0\]\.ip' 10\.1\.0\.0 is the network's or broadcast/],
      [
        [node('n1', '52:54:00:aa:00:01', '10.1.0.200')],
        /'nodes\[0\]\.ip' 10\.1\.0\.200 is in the DHCP pool 10\.1\.0\.128-10\.1\.0\.254: give an address outside it, or leave ip out/,
      ],
      [
        [node('n1', '52:54:00:aa:00:01', '10.1.0.10'), node('n2', '52:54:00:aa:00:02', '10.1.0.10')],
        /'nodes\[1\]\.ip' 10\.1\.0\.10 is also nodes\[0\]'s: give each node its own address/,
      ],
      [
        [node('n1', '52:54:00:aa:00:01', undefined, 'gpu')],
        /'nodes\[0\]\.nodeGroup' gpu is not a node group this install makes \(head, compute\): name one of them, or add it under nodeGroups/,
      ],
    ];
    for (const [list, re] of cases) refused(nodes(list), 'two-disks.json', re);
    refused(
      nodes([node('n1', '52:54:00:aa:00:01', undefined, 'compute')], {
        nodeGroups: [{ name: 'gpu', kits: ['debian'] }],
      }),
      'two-disks.json',
      /'nodes\[0\]\.nodeGroup' compute is not a node group this install makes \(head, gpu\)/,
    );
    const tiny = {
      interfaces: [
        {
          match: { name: 'ens4' },
          role: 'provisioning' as const,
          ipv4: '10.1.0.1/24',
          pool: { start: '10.1.0.200', end: '10.1.0.201' },
        },
      ],
      dns: ['10.1.0.53'],
    };
    refused(
      nodes([node('n1', '52:54:00:aa:00:01'), node('n2', '52:54:00:aa:00:02'), node('n3', '52:54:00:aa:00:03')], {
        network: tiny,
      }),
      'two-disks.json',
      /3 nodes have no ip, but the DHCP pool 10\.1\.0\.200-10\.1\.0\.201 holds 2 addresses/,
    );
    // Every problem at once, each with its own line.
    assert.throws(
      () =>
        planSetup(
          nodes([node('n1', '52:54:00:12:34:01', '10.9.0.1', 'gpu'), node('n1', '52:54:00:aa:00:02')]),
          facts('two-disks.json'),
        ),
      (e) => e instanceof AnswersError && e.message.split('\n').length === 5,
    );
  });

  it("operators.ca: a CA's certificate is taken and described; a client's, or no certificate, refused", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-plan-operators-'));
    try {
      const ca = fs.readFileSync(await createCa(path.join(dir, 'ca'), { name: 'Lab operators', days: 30 }), 'utf8');
      const plan = planSetup({ ...head, operators: { ca: `# the lab's CA\n${ca}` } }, facts('two-disks.json'));
      assert.equal(plan.operatorCa, ca, 'the certificate alone, as PEM');
      assert.match(describePlan(plan), /^operators: {3}the site CA's, and those of CN=Lab operators$/m);
      assert.equal(operatorsPem('SITE\n', plan.operatorCa), `SITE\n${ca}`);
      const leaf = await issueCertificate(
        path.join(dir, 'ca'),
        { kind: 'client', name: 'bob', days: 1 },
        path.join(dir, 'bob'),
      );
      refused(
        { ...head, operators: { ca: fs.readFileSync(leaf.cert, 'utf8') } },
        'two-disks.json',
        /'operators\.ca': CN=bob is not a CA: give the certificate of the CA that issues the operators' certificates/,
      );
      refused(
        { ...head, operators: { ca: '-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n' } },
        'two-disks.json',
        /'operators\.ca': a certificate in it cannot be read/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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
