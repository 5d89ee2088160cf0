// IPv4 arithmetic for the DHCP server: addresses as 32-bit numbers and back, whether an address
// is inside a subnet, and a subnet's broadcast address. Pure, shared by the policy, the served
// networks and the tests' in-memory inventory.
import type { Subnet } from '../../inventory/types.ts';
import { ipv4ToInt } from '../../protocols/dhcp/packet.ts';

export const ipToInt = (ip: string): number => ipv4ToInt(ip);
export const intToIp = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** Is `ip` inside `subnet` (gateway & mask)? */
export function inSubnet(ip: string, subnet: Subnet): boolean {
  const mask = ipToInt(subnet.mask);
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(subnet.gateway) & mask) >>> 0;
}

export const broadcastOf = (s: Subnet): string => intToIp((ipToInt(s.gateway) | ~ipToInt(s.mask)) >>> 0);
