// Real parts for installer tests: loop devices presented as drives through a sysfs tree of the
// test's own (the installer reads drives and NICs from sysfs, whose root is a flag), and a pair
// of network namespaces joined by a veth: the installer's machine and a server side. Test traffic
// never leaves these namespaces. Everything made here is removed by `cleanup()`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const run = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export interface FakeDrive {
  loop: string; // /dev/loopN
  model: string;
  serial: string;
  /** PCI slot that orders the drives, e.g. 0000:00:05.0. */
  slot: string;
}

export interface FakeNic {
  name: string;
  mac: string;
  carrier: boolean;
  slot: string;
}

/** A sysfs tree describing the given loop devices as drives and NICs as Ethernet interfaces. */
export function fakeSysfs(root: string, drives: FakeDrive[], nics: FakeNic[]): void {
  fs.mkdirSync(path.join(root, 'class', 'block'), { recursive: true });
  fs.mkdirSync(path.join(root, 'class', 'net'), { recursive: true });
  drives.forEach((d, i) => {
    const name = path.basename(d.loop);
    const rel = `devices/pci0000:00/${d.slot}/virtio${i + 10}/block/${name}`;
    const dir = path.join(root, rel);
    fs.mkdirSync(path.join(dir, 'device'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'queue'), { recursive: true });
    const sectors = Number(run('blockdev', ['--getsz', d.loop]).trim());
    fs.writeFileSync(path.join(dir, 'size'), `${sectors}\n`);
    fs.writeFileSync(path.join(dir, 'removable'), '0\n');
    fs.writeFileSync(path.join(dir, 'ro'), '0\n');
    fs.writeFileSync(path.join(dir, 'queue', 'rotational'), '0\n');
    fs.writeFileSync(path.join(dir, 'device', 'model'), `${d.model}\n`);
    fs.writeFileSync(path.join(dir, 'device', 'serial'), `${d.serial}\n`);
    fs.symlinkSync(`../../${rel}`, path.join(root, 'class', 'block', name));
  });
  nics.forEach((n, i) => {
    const pci = path.join(root, 'devices/pci0000:00', n.slot);
    const dir = path.join(pci, `virtio${i}`, 'net', n.name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'address'), `${n.mac}\n`);
    fs.writeFileSync(path.join(dir, 'type'), '1\n');
    fs.writeFileSync(path.join(dir, 'carrier'), n.carrier ? '1\n' : '0\n');
    fs.symlinkSync(`../../../../${n.slot}`, path.join(dir, 'device'));
    fs.symlinkSync(path.relative(path.join(root, 'class', 'net'), dir), path.join(root, 'class', 'net', n.name));
  });
}

export class Lab {
  readonly tag: string;
  readonly machineNs: string;
  readonly serverNs: string;
  private loops: string[] = [];
  private children: ChildProcess[] = [];
  /** libdevmapper (cryptsetup, grub-install) makes /dev/mapper/control even on a kernel without
   * device-mapper; cleanup removes it unless it was there before. */
  private readonly mapperControlBefore = fs.existsSync('/dev/mapper/control');

  constructor(tag: string) {
    this.tag = tag;
    this.machineNs = `cradle-${tag}-m${process.pid}`;
    this.serverNs = `cradle-${tag}-s${process.pid}`;
  }

  /** Two namespaces, a veth between them: `eth0` (with `mac`) on the machine, `srv0` on the server. */
  network(mac: string, serverAddress: string): void {
    for (const ns of [this.machineNs, this.serverNs]) {
      run('ip', ['netns', 'add', ns]);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // `ip netns exec` bind-mounts this over /etc/resolv.conf, so the installer never writes the host's.
      fs.mkdirSync(`/etc/netns/${ns}`, { recursive: true });
      fs.writeFileSync(`/etc/netns/${ns}/resolv.conf`, '');
    }
    run('ip', [
      '-n',
      this.machineNs,
      'link',
      'add',
      'eth0',
      'address',
      mac,
      'type',
      'veth',
      'peer',
      'name',
      'srv0',
      'netns',
      this.serverNs,
    ]);
    // A second NIC whose cable goes nowhere: its peer stays down, so it has no carrier.
    run('ip', ['-n', this.machineNs, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'unplugged']);
    run('ip', ['-n', this.serverNs, 'address', 'add', serverAddress, 'dev', 'srv0']);
    run('ip', ['-n', this.serverNs, 'link', 'set', 'srv0', 'up']);
  }

  /** A sparse file of `bytes` attached to a loop device. */
  loopDevice(file: string, bytes: number): string {
    fs.writeFileSync(file, '');
    fs.truncateSync(file, bytes);
    const dev = run('losetup', ['--find', '--show', file]).trim();
    this.loops.push(dev);
    return dev;
  }

  /** Starts a long-running programme in the server namespace; stopped by cleanup(). */
  serve(args: string[], log: string): void {
    const out = fs.openSync(log, 'a');
    const child = spawn('ip', ['netns', 'exec', this.serverNs, ...args], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.children.push(child);
  }

  /** Stops what serve() started and waits until they are gone (their ports free). */
  async stopServers(): Promise<void> {
    await Promise.all(
      this.children.splice(0).map((c) => {
        if (c.exitCode !== null || c.signalCode !== null) return undefined;
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        return gone;
      }),
    );
  }

  cleanup(): void {
    for (const c of this.children.splice(0)) c.kill('SIGKILL');
    for (const dev of this.loops) {
      try {
        run('partx', ['--delete', dev]);
      } catch {
        // no partitions
      }
      try {
        run('losetup', ['--detach', dev]);
      } catch {
        // already gone
      }
    }
    if (!this.mapperControlBefore && !/\bdevice-mapper\b/.test(fs.readFileSync('/proc/misc', 'utf8'))) {
      fs.rmSync('/dev/mapper/control', { force: true });
      try {
        fs.rmdirSync('/dev/mapper');
      } catch {
        // not empty, or gone: leave it
      }
    }
    for (const ns of [this.machineNs, this.serverNs]) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // not created
      }
      fs.rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
  }
}

/** Waits until `url` answers (a server started in a namespace). */
export async function waitForHttp(ns: string, url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      run('ip', ['netns', 'exec', ns, 'curl', '-sf', '-o', '/dev/null', url]);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
