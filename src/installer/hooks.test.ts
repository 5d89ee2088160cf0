// The installer's other configuration sources and its hook programmes, in-process with real
// programs and a real HTTP server on loopback: -configurationBaseUrl (query with every MAC and the
// serial number, optional files may be missing, a missing config.json is an error),
// -configurationLoader, -completionNotifier and -networkConfigurator (arguments and a known
// environment), and the choice between ifupdown and systemd-networkd.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_OPTIONS, type InstallerOptions } from './context.ts';
import { InstallerLog } from './log.ts';
import { fetchConfiguration, readConfiguration } from './load-configuration.ts';
import { notifyCompletion } from './finish.ts';
import { networkFlavour } from '../netconfig/files.ts';
import { configureNetwork } from './configure-network.ts';
import { newContext } from './daemon.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-hooks-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const seedConfig = fs.readFileSync(path.join(import.meta.dirname, '../netconfig/testdata/seed-config.json'), 'utf8');

function context(over: Partial<InstallerOptions>) {
  const tftpDirectory = fs.mkdtempSync(path.join(work, 'tftp-'));
  const sysfs = path.join(work, 'sys');
  const ctx = newContext(
    { ...DEFAULT_OPTIONS, tftpDirectory, sysfs, logDirectory: path.join(work, 'log'), ...over },
    new InstallerLog({ stderr: false }),
  );
  return ctx;
}

const interfaces = [
  { name: 'eth0', mac: 'de:ad:be:ef:00:01', busId: '0000:00:03.0', driver: 'virtio_net' },
  { name: 'eth1', mac: 'de:ad:be:ef:00:02', busId: '0000:00:04.0', driver: 'virtio_net' },
];

function script(name: string, body: string): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe('configuration over HTTP', () => {
  let server: http.Server;
  let base: string;
  const requests: string[] = [];
  before(async () => {
    fs.mkdirSync(path.join(work, 'sys', 'class', 'dmi', 'id'), { recursive: true });
    fs.writeFileSync(path.join(work, 'sys', 'class', 'dmi', 'id', 'product_serial'), 'To be filled by O.E.M.\n');
    fs.writeFileSync(path.join(work, 'sys', 'class', 'dmi', 'id', 'board_serial'), 'SN 42/7&x\n');
    const files: Record<string, string> = {
      'config.json': seedConfig,
      imagename: 'debian/v1\n',
      imageserver: '10.0.0.2:6971\n',
      'storage-layout.json': '{"BootDriveLayout": [{"MountPoint": "/", "MinimumFreeBytes": 1}]}',
    };
    server = http.createServer((req, res) => {
      requests.push(req.url!);
      const name = new URL(req.url!, 'http://x').pathname.replace('/tftpdata/', '');
      if (name in files) res.end(files[name]);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tftpdata`;
  });
  after(() => server.close());

  it('fetches every file with the MACs and a real serial number, skipping optional ones the server lacks', async () => {
    const ctx = context({ configurationBaseUrl: base });
    await fetchConfiguration(ctx, ctx.opts.tftpDirectory, interfaces, 'eth0', undefined);
    const c = readConfiguration(ctx.opts.tftpDirectory, true);
    assert.equal(c.imageName, 'debian/v1');
    assert.equal(c.imageServer, '10.0.0.2:6971');
    assert.equal(c.toolsImageName, undefined);
    const q = new URL(requests[0], 'http://x').searchParams;
    assert.deepEqual(q.getAll('mac'), ['de:ad:be:ef:00:01', 'de:ad:be:ef:00:02']);
    assert.equal(q.get('serial_number'), 'SN 42/7&x', 'the bogus product serial is skipped and the value escaped');
    assert.ok(requests.some((r) => r.startsWith('/tftpdata/tools-imagename?')));
  });

  it('fails clearly without config.json', async () => {
    const ctx = context({ configurationBaseUrl: `${base}/nothing-here` });
    await assert.rejects(
      fetchConfiguration(ctx, ctx.opts.tftpDirectory, interfaces, 'eth0', undefined),
      /cannot fetch http:\/\/127\.0\.0\.1:\d+\/tftpdata\/nothing-here\/config\.json\?.*: HTTP 404/,
    );
  });
});

describe('hook programmes', () => {
  it('a configuration loader writes the files, given the directory and interface', async () => {
    const loader = script(
      'loader',
      `echo "$1 $2 PATH=$PATH" > ${work}/loader.args\ncp ${path.join(import.meta.dirname, '../netconfig/testdata/seed-config.json')} "$1/config.json"`,
    );
    const ctx = context({ configurationLoader: loader });
    await fetchConfiguration(ctx, ctx.opts.tftpDirectory, interfaces, 'eth0', undefined);
    assert.equal(readConfiguration(ctx.opts.tftpDirectory, false).machine.Machine.Hostname, 'hyper0');
    assert.equal(
      fs.readFileSync(path.join(work, 'loader.args'), 'utf8'),
      `${ctx.opts.tftpDirectory} eth0 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n`,
    );
  });

  it('a failing loader stops the install with its message', async () => {
    const ctx = context({ configurationLoader: script('bad-loader', 'echo "no such machine" >&2; exit 3') });
    await assert.rejects(
      fetchConfiguration(ctx, ctx.opts.tftpDirectory, interfaces, 'eth0', undefined),
      /exit 3\): no such machine/,
    );
  });

  it('the completion notifier gets the configuration directory and the active interface', async () => {
    const ctx = context({ completionNotifier: script('notify', `echo "$@" > ${work}/notify.args`) });
    await notifyCompletion(ctx, 'eth1');
    assert.equal(fs.readFileSync(path.join(work, 'notify.args'), 'utf8'), `${ctx.opts.tftpDirectory} eth1\n`);
  });

  it('a network configurator replaces the built-in rendering', async () => {
    const root = fs.mkdtempSync(path.join(work, 'root-'));
    const ctx = context({
      networkConfigurator: script('netconf', `echo "$@" > ${work}/netconf.args`),
      mountPoint: root,
      tmpRoot: '/tmproot',
    });
    await configureNetwork(ctx, { machine: readConfigurationFrom(seedConfig), interfaces, activeInterface: 'eth0' });
    assert.equal(
      fs.readFileSync(path.join(work, 'netconf.args'), 'utf8'),
      `${ctx.opts.tftpDirectory} ${root} eth0 /tmproot\n`,
    );
    assert.deepEqual(fs.readdirSync(root), [], 'nothing else was written');
  });
});

describe('network rendering flavour', () => {
  it('ifupdown when the image has ifup, else systemd-networkd, and writes networkd files with pinned names', async () => {
    const root = fs.mkdtempSync(path.join(work, 'nd-'));
    const has = (p: string) => fs.existsSync(path.join(root, p));
    assert.equal(networkFlavour(has), undefined);
    fs.mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/lib/systemd/systemd-networkd'), '');
    assert.equal(networkFlavour(has), 'networkd');
    fs.mkdirSync(path.join(root, 'etc'));
    fs.symlinkSync('../run/systemd/resolve/stub-resolv.conf', path.join(root, 'etc/resolv.conf'));

    // Both links have carrier, so nothing is brought down: this test must not touch the host's links.
    for (const nic of ['eth0', 'eth1']) {
      fs.mkdirSync(path.join(work, 'sys', 'class', 'net', nic), { recursive: true });
      fs.writeFileSync(path.join(work, 'sys', 'class', 'net', nic, 'carrier'), '1\n');
    }
    const ctx = context({ mountPoint: root, dryRun: false });
    await configureNetwork(ctx, { machine: readConfigurationFrom(seedConfig), interfaces, activeInterface: 'eth0' });
    const dir = path.join(root, 'etc/systemd/network');
    assert.ok(fs.readFileSync(path.join(dir, '10-cradle-eth0.link'), 'utf8').includes('MACAddress=de:ad:be:ef:00:01'));
    assert.ok(fs.readdirSync(dir).some((f) => f.endsWith('.network')));
    assert.ok(
      fs
        .lstatSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/systemd-networkd.service'))
        .isSymbolicLink(),
    );
    assert.equal(
      fs.lstatSync(path.join(root, 'etc/resolv.conf')).isFile(),
      true,
      'the symlink was replaced, not written through',
    );
    assert.equal(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'hyper0\n');
    fs.mkdirSync(path.join(root, 'sbin'));
    fs.writeFileSync(path.join(root, 'sbin/ifup'), '');
    assert.equal(networkFlavour(has), 'ifupdown');
  });
});

function readConfigurationFrom(text: string) {
  const dir = fs.mkdtempSync(path.join(work, 'cfg-'));
  fs.writeFileSync(path.join(dir, 'config.json'), text);
  return readConfiguration(dir, false).machine;
}
