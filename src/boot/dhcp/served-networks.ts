// What the DHCP server answers from, read often and changed rarely, so cached briefly: the
// inventory's subnets (every request needs them) and the IPv4 addresses of our interfaces (a
// request on a link is answered from our address there; a relayed one from our address facing
// the relay).
import os from 'node:os';
import type { Inventory, Subnet } from '../../inventory/types.ts';
import { interfaceIpv4 } from '../../system/packet-socket.ts';
import { inSubnet } from './ipv4-subnet.ts';

const SUBNET_CACHE_MS = 2000;
const ADDRESS_CACHE_MS = 5000;

type Address = { address: string; netmask: string };

export class ServedNetworks {
  private subnets: { at: number; list: Subnet[] } = { at: -Infinity, list: [] };
  private addrs: { at: number; byIf: Map<string, Address[]> } = { at: -Infinity, byIf: new Map() };
  private readonly inv: Inventory;
  private readonly interfaces: string[];

  constructor(inv: Inventory, interfaces: string[]) {
    this.inv = inv;
    this.interfaces = interfaces;
  }

  /** The inventory's subnets, at most SUBNET_CACHE_MS old. */
  async listSubnets(): Promise<Subnet[]> {
    if (performance.now() - this.subnets.at > SUBNET_CACHE_MS)
      this.subnets = { at: performance.now(), list: await this.inv.listSubnets() };
    return this.subnets.list;
  }

  /** Our IPv4 addresses on `ifname`, at most ADDRESS_CACHE_MS old. */
  addresses(ifname: string): Address[] {
    if (performance.now() - this.addrs.at > ADDRESS_CACHE_MS) {
      const byIf = new Map(
        Object.entries(os.networkInterfaces()).map(([n, l]) => [
          n,
          (l ?? [])
            .filter((a) => a.family === 'IPv4' && !a.internal)
            .map((a) => ({ address: a.address, netmask: a.netmask })),
        ]),
      );
      // Node lists no address of an interface without carrier (a switch port down, a bridge
      // settling): ask the kernel for its primary one.
      for (const i of this.interfaces) {
        const primary = byIf.get(i)?.length ? undefined : interfaceIpv4(i);
        if (primary) byIf.set(i, [primary]);
      }
      this.addrs = { at: performance.now(), byIf };
    }
    return this.addrs.byIf.get(ifname) ?? [];
  }

  /** Our address on `ifname` and the inventory subnet it lies in (the first address that has one). */
  linkView(ifname: string, list: Subnet[]): { serverIp: string; subnet: Subnet | undefined } | undefined {
    const a = this.addresses(ifname);
    for (const x of a) {
      const s = list.find((sub) => inSubnet(x.address, sub));
      if (s) return { serverIp: x.address, subnet: s };
    }
    return a[0] ? { serverIp: a[0].address, subnet: undefined } : undefined;
  }

  /** Our address facing `peer` (a relay or a PXE client): the served interface on its network, else the first. */
  addressFacing(peer: string): string | undefined {
    for (const ifname of this.interfaces) {
      for (const a of this.addresses(ifname))
        if (inSubnet(peer, { id: '', gateway: a.address, mask: a.netmask, dnsServers: [], manage: false }))
          return a.address;
    }
    return this.interfaces.map((i) => this.addresses(i)[0]?.address).find(Boolean);
  }
}
