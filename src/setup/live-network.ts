// The setup's own network on the installation medium, brought up only when something must be
// fetched (the answers or kits by URL), as Kusu's installer brought up its network for network
// sources: every Ethernet interface up, DHCP on all of them at once, the first answer configured
// (address, default route, resolver) by the installer's own step. Only with `--network dhcp`,
// which the head-node ISO's init passes: on a running system the network is its own business.
import { addressInterface, leaseSubnet } from '../installer/local-network.ts';
import { listEthernetInterfaces } from '../installer/interfaces.ts';
import { dhcpRace } from '../protocols/dhcp/client.ts';
import type { Executor } from '../system/executor.ts';
import { AnswersError } from './answers.ts';

export interface LiveNetworkOptions {
  exec: Executor;
  log: (line: string) => void;
  sysfs?: string;
  timeoutMs?: number;
}

/** Brings the network up by DHCP; resolves with the interface and address it got. */
export async function networkForFetching(o: LiveNetworkOptions): Promise<{ name: string; ip: string }> {
  const nics = listEthernetInterfaces(o.sysfs ?? '/sys');
  if (!nics.length) throw new AnswersError('no Ethernet interface: nothing can be fetched by URL');
  await o.exec.change('ip', ['link', 'set', 'dev', 'lo', 'up']);
  for (const n of nics) await o.exec.change('ip', ['link', 'set', 'dev', n.name, 'up']);
  o.log(`asking DHCP on ${nics.map((n) => n.name).join(', ')} for a network to fetch over`);
  const timeoutMs = o.timeoutMs ?? 60_000;
  const lease = await dhcpRace(nics, { timeoutMs, log: o.log }).catch((err: Error) => {
    throw new AnswersError(
      `no DHCP answer on ${nics.map((n) => n.name).join(', ')} within ${timeoutMs / 1000} s (${err.message}): the answers or kits by URL cannot be fetched; put them on the medium, or connect a network with DHCP`,
    );
  });
  await addressInterface(o.exec, o.log, {
    name: lease.interface,
    ip: lease.ip,
    subnet: leaseSubnet(lease),
    withGateway: lease.routers.length > 0,
  });
  return { name: lease.interface, ip: lease.ip };
}
