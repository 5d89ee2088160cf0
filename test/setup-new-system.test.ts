// The head node's new system written into a directory, as the install does once its file systems
// are mounted: the kits verified into /depot, the head image (the OS kit with the Cradle kit's
// head component) built there and unpacked from it, the settings, the machine database with the
// provisioning subnet, node groups and the compute nodes the answers register, the site's
// certificates (checked with openssl, a real peer), and the answers saved with the password
// hashed. Real kits built from small trees; one of them fetched from an HTTPS server pinned by its
// certificate's fingerprint (the answers' kits.urls).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { keepLeaseAddress } from '../src/boot/http.ts';
import { openInventory } from '../src/inventory/open.ts';
import { createCa } from '../src/pki/pki.ts';
import { parseAnswers } from '../src/setup/answers.ts';
import { parseFacts } from '../src/setup/facts.ts';
import { installHeadSystem } from '../src/setup/new-system.ts';
import { HEAD_PATHS, readEnv } from '../src/setup/services.ts';
import { planSetup } from '../src/setup/plan.ts';
import { cradleBin, tmpDir } from './helpers.ts';
import { helloTree } from './support/hello-kit.ts';
import { type HttpsFiles, serveHttpsFiles } from './support/https-files.ts';
import { buildTestKit } from './support/test-kits.ts';

const run = promisify(execFile);
const testdata = path.resolve(import.meta.dirname, '../src/setup/testdata');

describe("the head node's new system", () => {
  let work: string;
  let web: HttpsFiles;
  const kits: string[] = [];
  before(async () => {
    work = tmpDir('cradle-head-');
    kits.push(
      await buildTestKit(work, {
        name: 'demo',
        version: '1',
        os: 'debian-12',
        files: {
          'etc/os-release': 'ID=demo\n',
          'etc/shadow': 'root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n',
          'usr/share/zoneinfo/Europe/Berlin': 'TZif',
        },
      }),
      await buildTestKit(work, {
        name: 'cradle',
        version: '0.1.0',
        component: 'cradle:head:any',
        files: { 'usr/local/bin/cradle': '#!/bin/sh\necho cradle\n' },
      }),
      await buildTestKit(work, {
        name: 'hello',
        version: '1',
        component: 'hello:compute:debian-12',
        tree: helloTree(path.join(work, 'hello')),
      }),
    );
  });
  after(async () => {
    await web?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('kits, image, settings, database, certificates and answers, from one plan', async () => {
    // The lab's own CA, whose client certificates are to read the head node's API as operators.
    const labCa = fs.readFileSync(await createCa(path.join(work, 'lab-ca'), { name: 'Lab', days: 30 }), 'utf8');
    const answers = parseAnswers(
      `${fs.readFileSync(path.join(testdata, 'head.yaml'), 'utf8')}nodes:\n  - { hostname: node01, mac: "52:54:00:AA:00:01", ip: 10.1.0.10 }\n  - { hostname: node02, mac: "52:54:00:aa:00:02" }\noperators:\n  ca: |\n${labCa.replace(/^/gm, '    ')}`,
    );
    const facts = parseFacts(fs.readFileSync(path.join(testdata, 'two-disks.json'), 'utf8'), 'two-disks.json');
    const plan = planSetup(answers, facts);
    const target = path.join(work, 'target');
    const lines: string[] = [];
    // The hello kit by URL, the others from the medium.
    const hello = kits.find((k) => path.basename(k) === 'hello.kit') as string;
    web = await serveHttpsFiles({ '/kits/hello.kit': fs.readFileSync(hello) });
    const made = await installHeadSystem({
      plan,
      target,
      kitFiles: kits.filter((k) => k !== hello),
      kitUrls: [{ url: `${web.url}/kits/hello.kit`, fingerprint: web.fingerprint }],
      log: (l) => lines.push(l),
      logLines: () => lines,
    });
    const at = (p: string) => path.join(target, p);

    assert.deepEqual(
      made.kits.map((k) => k.kit.name),
      ['demo', 'cradle', 'hello'],
    );
    assert.match(made.headImage, /^nodegroup\/head\//);
    assert.equal(fs.readFileSync(at('etc/os-release'), 'utf8'), 'ID=demo\n', 'the OS is there');
    assert.ok(fs.existsSync(at('usr/local/bin/cradle')), "the Cradle kit's head component is there");
    assert.ok(!fs.existsSync(at('etc/hello-kit.conf')), 'a compute component is not on the head node');

    assert.equal(fs.readFileSync(at('etc/hostname'), 'utf8'), 'head\n');
    assert.equal(fs.readlinkSync(at('etc/localtime')), '/usr/share/zoneinfo/Europe/Berlin');
    assert.match(fs.readFileSync(at('etc/fstab'), 'utf8'), /^\/dev\/cradle\/depot\t\/depot\text4/m);
    const shadow = fs.readFileSync(at('etc/shadow'), 'utf8');
    assert.match(shadow, /^root:\$6\$[^:]+:\d+:0:99999:7:::$/m);
    assert.match(shadow, /^daemon:\*:19000:/m);
    // This OS has neither ifupdown nor networkd: ifupdown's file, as the installer writes then.
    const interfaces = fs.readFileSync(at('etc/network/interfaces'), 'utf8');
    assert.match(interfaces, /^iface ens3 inet dhcp$/m, 'the public side by DHCP');
    assert.match(interfaces, /^iface ens4 inet static\n\taddress +10\.1\.0\.1\n\tnetmask +255\.255\.255\.0$/m);
    assert.ok(!fs.existsSync(at('etc/resolv.conf')), "DNS from DHCP: resolv.conf is the DHCP client's");
    // The services' settings, from the plan; the stand-in Cradle kit carries no units to enable.
    const env = readEnv(fs.readFileSync(at(HEAD_PATHS.env), 'utf8'));
    assert.equal(env.CRADLE_INTERFACE, 'ens4');
    assert.equal(env.CRADLE_ADDRESS, '10.1.0.1');
    assert.equal(env.CRADLE_DEFAULT_IMAGE, 'nodegroup/compute');
    assert.equal(env.CRADLE_DB, `sqlite:${HEAD_PATHS.db}`);

    const inv = await openInventory(`sqlite:${at(HEAD_PATHS.db)}`);
    try {
      const subnet = await inv.getSubnet('provisioning');
      assert.deepEqual(subnet?.pool, { start: '10.1.0.128', end: '10.1.0.254' });
      const groups = await inv.listNodeGroups();
      assert.deepEqual(
        groups.map((g) => g.name),
        ['compute', 'head'],
      );
      const compute = groups.find((g) => g.name === 'compute');
      assert.deepEqual(
        compute?.components.map((c) => `${c.name}:${c.component}`),
        ['hello:hello'],
      );
      const nodes = await inv.listMachines();
      assert.deepEqual(
        nodes.map((m) => ({ ...m, stateChangedAt: undefined, createdAt: undefined })),
        [
          {
            hostname: 'node01',
            macs: ['52:54:00:aa:00:01'],
            ip: '10.1.0.10',
            subnetId: 'provisioning',
            nodeGroup: 'compute',
            tags: {},
            state: 'birth',
            stateChangedAt: undefined,
            createdAt: undefined,
          },
          {
            hostname: 'node02',
            macs: ['52:54:00:aa:00:02'],
            subnetId: 'provisioning',
            nodeGroup: 'compute',
            tags: {},
            state: 'birth',
            stateChangedAt: undefined,
            createdAt: undefined,
          },
        ],
      );
      // node02 has no address: the boot server leases it one of the pool at its first boot and
      // keeps it as its own when its installer fetches its configuration.
      const lease = await inv.allocateLease('52:54:00:aa:00:02', 'provisioning', 60, new Date(), 'node02');
      assert.equal(lease?.ip, '10.1.0.128');
      const kept = await keepLeaseAddress(inv, nodes[1]);
      assert.deepEqual([kept.ip, kept.subnetId], ['10.1.0.128', 'provisioning']);
    } finally {
      await inv.close();
    }
    const images = await run(cradleBin, ['image', 'list', '--store', at('depot/images')], { encoding: 'utf8' });
    assert.match(images.stdout, /^nodegroup\/compute\//m, 'the compute group is built, ready to serve');

    const ca = at(`${HEAD_PATHS.ca}/ca.pem`);
    for (const dir of [HEAD_PATHS.serverTls, HEAD_PATHS.installerTls, HEAD_PATHS.operatorTls])
      assert.match(
        execFileSync('openssl', ['verify', '-CAfile', ca, at(`${dir}/cert.pem`)], { encoding: 'utf8' }),
        /: OK/,
      );
    const server = execFileSync(
      'openssl',
      ['x509', '-noout', '-ext', 'subjectAltName', '-in', at(`${HEAD_PATHS.serverTls}/cert.pem`)],
      {
        encoding: 'utf8',
      },
    );
    assert.match(server, /DNS:head\.cluster\.example/);
    assert.match(server, /IP Address:10\.1\.0\.1/);
    // Its fingerprint in the log, as openssl prints it, for operators and the lab to pin.
    const fingerprint = execFileSync(
      'openssl',
      ['x509', '-noout', '-fingerprint', '-sha256', '-in', at(`${HEAD_PATHS.serverTls}/cert.pem`)],
      { encoding: 'utf8' },
    )
      .replace(/^.*=/, '')
      .trim();
    assert.ok(lines.includes(`server certificate sha256 ${fingerprint}`), lines.join('\n'));
    // The operators' CAs: the site's, then the lab's; the boot server is told of them.
    assert.equal(
      fs.readFileSync(at(HEAD_PATHS.operatorCa), 'utf8'),
      `${fs.readFileSync(ca, 'utf8').trimEnd()}\n${labCa}`,
    );
    assert.equal(env.CRADLE_OPERATOR_CA, HEAD_PATHS.operatorCa);

    const saved = fs.readFileSync(at(HEAD_PATHS.answers), 'utf8');
    assert.doesNotMatch(saved, /correct horse battery/, 'no plain password is written');
    const replay = parseAnswers(saved, 'saved answers');
    assert.deepEqual(replay, plan.answers, 'the saved answers replay the same install');
    assert.match(fs.readFileSync(at(HEAD_PATHS.kickstart), 'utf8'), /^rootpw --iscrypted \$6\$/m);
    assert.match(fs.readFileSync(at(HEAD_PATHS.log), 'utf8'), /kit cradle\/0\.1\.0 \(addon\)/);
    assert.match(
      fs.readFileSync(at(HEAD_PATHS.log), 'utf8'),
      /^compute nodes node01 \(10\.1\.0\.10\), node02 \(pool\) registered in state birth$/m,
    );
    assert.match(
      fs.readFileSync(at(HEAD_PATHS.log), 'utf8'),
      /fetched \d+ bytes from https:\/\/127\.0\.0\.1:\d+\/kits\/hello\.kit \(certificate pinned\)\n.*kit hello\/1 \(addon\) from https:/,
    );
    assert.deepEqual(fs.readdirSync(at('depot/images/tmp')), [], 'the download is not left behind');
  });
});
