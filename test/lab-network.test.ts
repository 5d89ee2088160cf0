// The head-node lab's networks (src/lab/network.ts), with real peers: one namespace, two bridges.
// On the public bridge the lab's dnsmasq hands the head node's MAC its reserved address and
// nothing to any other MAC; on the provisioning bridge no DHCP server runs but the head node's
// own. Clients are busybox udhcpc in namespaces of their own, plugged in by veth pairs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LabNetwork } from '../src/lab/network.ts';
import { isRoot, tmpDir } from './helpers.ts';

const skip = (!isRoot() || !fs.existsSync('/usr/sbin/dnsmasq')) && 'needs root and dnsmasq';

describe('lab network: a public and a provisioning bridge', { skip }, () => {
  const ns = `cradle-e2e-labnet-${process.pid}`;
  const clients: string[] = [];
  let work: string;
  let net: LabNetwork;
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

  /** A client namespace with one NIC of this MAC on `bridge`. */
  function client(name: string, mac: string, bridge: string): string {
    const cns = `${ns}-${name}`;
    ip('netns', 'add', cns);
    clients.push(cns);
    ip('link', 'add', `v${name}`, 'netns', ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cns);
    ip('-n', cns, 'link', 'set', 'eth0', 'address', mac);
    ip('-n', cns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', `v${name}`, 'master', bridge);
    ip('-n', ns, 'link', 'set', `v${name}`, 'up');
    return cns;
  }

  /** The address udhcpc is offered in `cns`, or undefined after its tries. */
  function lease(cns: string): string | undefined {
    const script = path.join(work, 'udhcpc.sh');
    fs.writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "ip=$ip router=$router"\nexit 0\n', { mode: 0o755 });
    try {
      const out = execFileSync(
        'ip',
        ['netns', 'exec', cns, 'busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '3', '-T', '1', '-s', script],
        { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] },
      );
      return /ip=(\S+) router=(\S+)/.exec(out)?.slice(1).join(' ');
    } catch {
      return undefined; // udhcpc -n exits 1 with no lease
    }
  }

  before(() => {
    work = tmpDir('cradle-labnet-');
    net = new LabNetwork({ namespace: ns, address: '10.1.0.2', prefix: 24, bridge: 'br-prov', ipv6: false });
    net.create();
    net.addBridge('br-pub', '192.0.2.1/24');
    net.startDhcpReservations(
      'br-pub',
      {
        network: '192.0.2.0',
        mask: '255.255.255.0',
        router: '192.0.2.1',
        hosts: [{ mac: '52:54:00:10:00:01', ip: '192.0.2.10' }],
        leases: path.join(work, 'public.leases'),
      },
      path.join(work, 'dnsmasq.log'),
    );
  });
  after(async () => {
    for (const c of clients) execFileSync('ip', ['netns', 'del', c], { stdio: 'ignore' });
    await net?.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('the head node’s public MAC gets its reserved address and the router', () => {
    // dnsmasq starts in the background: the client retries until it answers.
    const cns = client('head', '52:54:00:10:00:01', 'br-pub');
    let got: string | undefined;
    for (let i = 0; i < 10 && !got; i++) got = lease(cns);
    assert.equal(got, '192.0.2.10 192.0.2.1');
  });

  test('another MAC on the public bridge, and any MAC on the provisioning bridge, get nothing', () => {
    assert.equal(lease(client('other', '52:54:00:10:00:99', 'br-pub')), undefined);
    assert.equal(lease(client('prov', '52:54:00:10:01:01', 'br-prov')), undefined);
    assert.match(ip('-n', ns, '-4', 'addr', 'show', 'br-prov'), /inet 10\.1\.0\.2\/24/);
    assert.doesNotMatch(ip('-n', ns, 'addr', 'show', 'br-prov'), /fd77::1/);
  });
});
