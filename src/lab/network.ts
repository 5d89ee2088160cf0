// The lab's network: one network namespace holding a bridge (the machines' switch), the servers'
// address on it, and a tap device per machine NIC; a head-node lab adds a second bridge (its
// public network beside the provisioning one). Nothing in it can reach the host's networks,
// and removing the namespace removes all of it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { linkShapingCommands } from './link-shaping.ts';

/**
 * Prefix for programs the lab starts: they get SIGTERM when the lab's process dies, even by
 * SIGKILL, so no server or QEMU outlives a killed lab or test.
 */
export const DIE_WITH_PARENT = ['setpriv', '--pdeathsig', 'TERM', '--'];

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export interface LabNetworkSpec {
  namespace: string;
  /** The servers' IPv4 address on the bridge, and the prefix length. */
  address: string;
  prefix: number;
  /** The first bridge's name (default br0). */
  bridge?: string;
  /** A unique-local IPv6 prefix on the first bridge, for router advertisements (default true). */
  ipv6?: boolean;
}

/** A fixed address for one MAC, handed out by the lab's DHCP on a bridge (startDhcpReservations). */
export interface DhcpReservation {
  mac: string;
  ip: string;
}

/**
 * Namespaces of tests (named cradle-e2e-…-PID or cradle-bench-PID) whose process is gone and in
 * which nothing runs: a killed test run cannot remove its own.
 */
function removeStaleTestNamespaces(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0];
    const pid = /^cradle-(?:e2e-[a-z]+|bench)-(\d+)$/.exec(name)?.[1];
    if (!pid || fs.existsSync(`/proc/${pid}`) || ip('netns', 'pids', name).trim()) continue;
    ip('netns', 'del', name);
    fs.rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
  }
}

/** dnsmasq in the foreground on one bridge only, no DNS, logging to its output. */
function dnsmasqOn(bridge: string, leases?: string): string[] {
  return [
    'dnsmasq',
    '--keep-in-foreground',
    '--no-daemon',
    '--user=root',
    '--conf-file=/dev/null',
    '--port=0',
    `--interface=${bridge}`,
    '--bind-interfaces',
    ...(leases ? [`--dhcp-leasefile=${leases}`] : []),
    '--pid-file=',
    '--log-facility=-',
  ];
}

export class LabNetwork {
  readonly spec: LabNetworkSpec;
  readonly bridge: string;
  private children: ChildProcess[] = [];

  constructor(spec: LabNetworkSpec) {
    if (!/^cradle-[a-z0-9-]+$/.test(spec.namespace))
      throw new Error(`lab namespace '${spec.namespace}': use cradle-<letters, digits, dashes>`);
    this.spec = spec;
    this.bridge = spec.bridge ?? 'br0';
  }

  exists(): boolean {
    return ip('netns', 'list')
      .split('\n')
      .some((l) => l.split(' ')[0] === this.spec.namespace);
  }

  create(): void {
    const ns = this.spec.namespace;
    removeStaleTestNamespaces();
    // A namespace of this name left by a lab that was killed: ours by its name, so replace it,
    // unless something still runs in it (another lab).
    if (this.exists()) {
      const pids = ip('netns', 'pids', ns).trim();
      if (pids)
        throw new Error(`network namespace ${ns} is in use (pids ${pids.split('\n').join(', ')}): stop that lab first`);
      ip('netns', 'del', ns);
    }
    ip('netns', 'add', ns);
    // `ip netns exec` bind-mounts this over /etc/resolv.conf: nothing in the lab writes the host's.
    fs.mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    fs.writeFileSync(`/etc/netns/${ns}/resolv.conf`, '');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    this.addBridge(this.bridge, `${this.spec.address}/${this.spec.prefix}`);
    // A unique-local IPv6 prefix to advertise: iPXE waits ~13 s for IPv6 autoconfiguration otherwise.
    if (this.spec.ipv6 ?? true) ip('-n', ns, 'address', 'add', 'fd77::1/64', 'dev', this.bridge);
  }

  /** Another switch in the namespace, with the namespace's own address on it when given (CIDR). */
  addBridge(name: string, cidr?: string): void {
    const ns = this.spec.namespace;
    ip('-n', ns, 'link', 'add', name, 'type', 'bridge');
    if (cidr) ip('-n', ns, 'address', 'add', cidr, 'dev', name);
    ip('-n', ns, 'link', 'set', name, 'up');
  }

  addTap(name: string, bridge = this.bridge): void {
    const ns = this.spec.namespace;
    ip('-n', ns, 'tuntap', 'add', 'dev', name, 'mode', 'tap');
    ip('-n', ns, 'link', 'set', name, 'master', bridge);
    ip('-n', ns, 'link', 'set', name, 'up');
  }

  /**
   * Limits the bridge to `mbit` Mbit/s in each direction, shared by every machine on it
   * (link-shaping.ts). Call after create(); removing the namespace removes the shaping too.
   */
  shapeLink(mbit: number, bridge = this.bridge): void {
    for (const [cmd, ...args] of linkShapingCommands({ namespace: this.spec.namespace, bridge, mbit }))
      try {
        execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
        throw new Error(`shaping the lab's link to ${mbit} Mbit/s: ${cmd} ${args.join(' ')}: ${stderr || err}`);
      }
  }

  /** Runs `command` inside the namespace, output appended to `log`; stopped by destroy(). */
  spawn(command: string[], log: string): ChildProcess {
    const out = fs.openSync(log, 'a');
    const child = spawn('ip', ['netns', 'exec', this.spec.namespace, ...DIE_WITH_PARENT, ...command], {
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.children.push(child);
    return child;
  }

  /** Router advertisements only (no DHCP, no DNS): dnsmasq, so iPXE does not wait for IPv6. */
  startRouterAdvertisements(log: string, bridge = this.bridge): void {
    this.spawn([...dnsmasqOn(bridge), '--enable-ra', `--dhcp-range=::,constructor:${bridge},ra-only`], log);
  }

  /**
   * DHCP on one bridge for the reserved MACs only (dnsmasq; any other MAC gets no answer), as a
   * site's public network gives its head node a fixed address. The leases stay in the lab's `dir`.
   */
  startDhcpReservations(
    bridge: string,
    o: { network: string; mask: string; router: string; hosts: DhcpReservation[]; leases: string },
    log: string,
  ): void {
    this.spawn(
      [
        ...dnsmasqOn(bridge, o.leases),
        `--dhcp-range=${o.network},static,${o.mask},1h`,
        ...o.hosts.map((h) => `--dhcp-host=${h.mac},${h.ip}`),
        `--dhcp-option=option:router,${o.router}`,
        '--dhcp-authoritative',
      ],
      log,
    );
  }

  /** Stops what spawn() started (TERM, then KILL after 5 s) and removes the namespace. */
  async destroy(): Promise<void> {
    await Promise.all(
      this.children.splice(0).map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }),
    );
    if (this.exists()) ip('netns', 'del', this.spec.namespace);
    fs.rmSync(`/etc/netns/${this.spec.namespace}`, { recursive: true, force: true });
  }
}
