// Step 2: the installer's own network. Ethernet interfaces are found and brought up (links then
// have time to settle). With config.json already present the interface whose MAC the
// configuration names is given its address (no DHCP); otherwise every interface asks DHCP at
// once and the first valid answer wins. The configured interface gets its address, default route
// and resolver; the host name comes from DHCP or `hostname=` on the kernel command line.
import fs from 'node:fs';
import path from 'node:path';
import { dhcpRace, type DhcpLease } from '../protocols/dhcp/client.ts';
import { writeDhcpLog } from '../protocols/dhcp/log.ts';
import { subnetOf, type MachineConfig, type Subnet } from '../netconfig/machine-config.ts';
import { renderResolvConf } from '../netconfig/ifupdown.ts';
import { prefixLength } from '../netconfig/networkd.ts';
import type { Executor } from '../system/executor.ts';
import type { Configuration, InstallContext } from './context.ts';
import { configurationNotes, fetchConfiguration, readConfiguration } from './load-configuration.ts';
import { type EthernetInterface, hasCarrier, listEthernetInterfaces } from './interfaces.ts';

export interface LocalNetwork {
  activeInterface: string;
  ip: string;
  subnet: Subnet;
  /** Where configuration files come from over TFTP, when no other source is set. */
  tftpServer?: string;
  lease?: DhcpLease;
}

/** Kernel command-line `key=value` tokens; the last of a repeated key wins. */
export function kernelArgs(cmdline: string): Map<string, string> {
  const args = new Map<string, string>();
  for (const token of cmdline.trim().split(/\s+/)) {
    const parts = token.split('=');
    if (parts.length === 2 && parts[0]) args.set(parts[0], parts[1]);
  }
  return args;
}

/**
 * The TFTP server, first of: the -tftpServer flag, `tftpserver=` on the kernel command line, the
 * DHCP answer's siaddr (next server), option 66 (a host name or address, as text).
 */
export function chooseTftpServer(
  flag: string | undefined,
  cmdline: Map<string, string>,
  lease?: Pick<DhcpLease, 'siaddr' | 'tftpServerName'>,
): string | undefined {
  return (
    flag ||
    cmdline.get('tftpserver') ||
    (lease?.siaddr && lease.siaddr !== '0.0.0.0' ? lease.siaddr : undefined) ||
    lease?.tftpServerName ||
    undefined
  );
}

/** A host name usable for sethostname: letters, digits and hyphens; an FQDN gives its first label. */
export function validHostname(name: string | undefined): string | undefined {
  const first = name?.trim().toLowerCase().split('.')[0];
  return first && /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(first) ? first : undefined;
}

/** What step 2 gives the steps after it. */
export interface LocalSetup {
  interfaces: EthernetInterface[];
  activeInterface: string;
  config: Configuration;
}

/**
 * Step 2: the installer's own network, and with it the configuration: injected (config.json
 * present: no DHCP) or fetched once DHCP has given an address.
 */
export async function configureLocalNetworkAndLoadConfiguration(ctx: InstallContext): Promise<LocalSetup> {
  const { opts } = ctx;
  const interfaces = await bringUpInterfaces(ctx);
  let setup: LocalSetup;
  let configDir = opts.tftpDirectory;
  if (configPresent(opts.tftpDirectory)) {
    ctx.log.info(`${path.join(opts.tftpDirectory, 'config.json')} is present: using it, no DHCP`);
    const config = readConfiguration(opts.tftpDirectory, !opts.skipStorage);
    const net = await configureFromInjected(ctx, interfaces, config.machine);
    setup = { interfaces, activeInterface: net.activeInterface, config };
  } else {
    const net = await configureFromDhcp(ctx, interfaces);
    ctx.record.activeInterface = net.activeInterface;
    // A dry run fetches into its scratch directory: files left in --tftp-directory would make the
    // next real run skip DHCP.
    const dir = opts.scratchDirectory ? path.join(opts.scratchDirectory, 'config') : opts.tftpDirectory;
    configDir = dir;
    await fetchConfiguration(ctx, dir, interfaces, net.activeInterface, net.tftpServer);
    setup = { interfaces, activeInterface: net.activeInterface, config: readConfiguration(dir, !opts.skipStorage) };
  }
  for (const note of configurationNotes(setup.config, configDir)) ctx.log.info(note);
  ctx.record.activeInterface = setup.activeInterface;
  ctx.record.machine = setup.config.machine.Machine;
  ctx.record.imageName = setup.config.imageName;
  return setup;
}

export function configPresent(tftpDirectory: string): boolean {
  return fs.existsSync(path.join(tftpDirectory, 'config.json'));
}

/** The machine's Ethernet interfaces, brought up (and recorded for the status page). */
export async function bringUpInterfaces(ctx: InstallContext): Promise<EthernetInterface[]> {
  await ctx.exec.change('ip', ['link', 'set', 'dev', 'lo', 'up']);
  const interfaces = listEthernetInterfaces(ctx.opts.sysfs);
  ctx.record.interfaces = interfaces;
  ctx.log.info(`Ethernet interfaces: ${interfaces.map((i) => `${i.name} (${i.mac})`).join(', ') || 'none'}`);
  // A NIC that will not come up is logged, not fatal: another may carry the install.
  await Promise.all(
    interfaces.map((i) =>
      ctx.exec
        .change('ip', ['link', 'set', 'dev', i.name, 'up'])
        .catch((err: Error) => ctx.log.info(`${i.name}: cannot bring it up: ${err.message}`)),
    ),
  );
  return interfaces;
}

/** Path A: the injected configuration names this machine's MAC and address. */
export async function configureFromInjected(
  ctx: InstallContext,
  interfaces: EthernetInterface[],
  machine: MachineConfig,
): Promise<LocalNetwork> {
  const entries = [machine.Machine, ...(machine.Machine.SecondaryNetworkEntries ?? [])];
  for (const entry of entries) {
    if (!entry.HostIpAddress || !entry.HostMacAddress) continue;
    const iface = interfaces.find((i) => i.mac === entry.HostMacAddress);
    if (!iface) continue;
    const subnet = subnetOf(entry.HostIpAddress, machine.Subnets);
    if (!subnet) {
      ctx.log.info(
        `${entry.HostIpAddress} (${iface.name}) is in none of the configured subnets: trying the next entry`,
      );
      continue;
    }
    await waitForCarrier(ctx, iface.name, 10_000);
    await addressInterface(ctx.exec, (l) => ctx.log.info(l), { name: iface.name, ip: entry.HostIpAddress, subnet });
    return { activeInterface: iface.name, ip: entry.HostIpAddress, subnet };
  }
  const macs = interfaces.map((i) => i.mac).join(', ') || 'none';
  throw new Error(
    `config.json names no interface of this machine with an address in a configured subnet (this machine's MACs: ${macs}): fix Machine.HostMacAddress / HostIpAddress or the Subnets`,
  );
}

/** Path B: DHCP on every interface at once. */
export async function configureFromDhcp(ctx: InstallContext, interfaces: EthernetInterface[]): Promise<LocalNetwork> {
  if (!interfaces.length) throw new Error('no Ethernet interface found: cannot ask DHCP for an address');
  const lease = await dhcpRace(
    interfaces.map((i) => ({ name: i.name, mac: i.mac })),
    { timeoutMs: ctx.opts.dhcpTimeoutSeconds * 1000, log: (l) => ctx.log.info(l) },
  );
  ctx.log.info(`DHCP: ${lease.ip} on ${lease.interface} from ${lease.serverId ?? 'unknown server'}`);
  if (!ctx.exec.dryRun) {
    try {
      ctx.log.info(`DHCP answer logged in ${writeDhcpLog(path.join(ctx.opts.logDirectory, 'dhcp'), lease)}`);
    } catch (err) {
      ctx.log.info(`cannot log the DHCP answer: ${(err as Error).message}`);
    }
  }
  const cmdline = kernelArgs(readCmdline(ctx));
  const hostname = validHostname(lease.hostname) ?? validHostname(cmdline.get('hostname'));
  if (hostname) await ctx.exec.change('hostname', [hostname]);
  else if (lease.hostname) ctx.log.info(`DHCP host name '${lease.hostname}' is not a valid host name: ignored`);
  const subnet = leaseSubnet(lease);
  await addressInterface(ctx.exec, (l) => ctx.log.info(l), {
    name: lease.interface,
    ip: lease.ip,
    subnet,
    withGateway: lease.routers.length > 0,
  });
  return {
    activeInterface: lease.interface,
    ip: lease.ip,
    subnet,
    lease,
    tftpServer: chooseTftpServer(ctx.opts.tftpServer, cmdline, lease),
  };
}

function readCmdline(ctx: InstallContext): string {
  try {
    return fs.readFileSync(path.join(ctx.opts.proc, 'cmdline'), 'utf8');
  } catch {
    return '';
  }
}

async function waitForCarrier(ctx: InstallContext, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!hasCarrier(ctx.opts.sysfs, name) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!hasCarrier(ctx.opts.sysfs, name))
    ctx.log.info(`${name} has no link after ${timeoutMs / 1000} s: configuring it anyway`);
}

/** Gives `name` its address, the default route (unless told not to) and the resolver. */
export async function addressInterface(
  exec: Executor,
  log: (line: string) => void,
  a: { name: string; ip: string; subnet: Subnet; withGateway?: boolean },
): Promise<void> {
  const { name, ip, subnet, withGateway = true } = a;
  await exec.change('ip', ['address', 'replace', `${ip}/${prefixLength(subnet.IpMask)}`, 'dev', name]);
  if (withGateway && subnet.IpGateway !== ip)
    await exec.change('ip', ['route', 'replace', 'default', 'via', subnet.IpGateway, 'dev', name]);
  await exec.act('write /etc/resolv.conf', () => fs.writeFileSync('/etc/resolv.conf', renderResolvConf(subnet)));
  log(`${name}: ${ip}/${prefixLength(subnet.IpMask)}${withGateway ? ` via ${subnet.IpGateway}` : ''}`);
}

/** A DHCP answer as the subnet its address is in. */
export function leaseSubnet(lease: DhcpLease): Subnet {
  return {
    Id: 'dhcp',
    IpGateway: lease.routers[0] ?? lease.ip,
    IpMask: lease.subnetMask ?? '255.255.255.0',
    DomainNameServers: lease.dnsServers,
    ...(lease.domainName ? { DomainName: lease.domainName } : {}),
  };
}
