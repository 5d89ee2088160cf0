// Dominator's machine configuration (`config.json`, Dominator's GetMachineInfoResponse), validated
// at the boundary. Field names are Dominator's, so a Dominator user's files work unchanged. Only the
// fields the installer uses are typed strictly; the rest pass through.
import { z } from 'zod';
import { parseJsonWith } from '../util/parse-json.ts';

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export const ipv4 = z.string().regex(IPV4_RE, 'expected a dotted IPv4 address such as 192.168.1.2');

/** MAC addresses as Dominator writes them: colon groups of 1-2 hex digits, any case. */
export const macAddress = z
  .string()
  .regex(/^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$/, 'expected a MAC address such as de:ad:be:ef:00:01')
  .transform((mac) =>
    mac
      .split(':')
      .map((g) => g.toLowerCase().padStart(2, '0'))
      .join(':'),
  );

const networkEntry = z.looseObject({
  Hostname: z.string().optional(),
  HostIpAddress: ipv4.optional(),
  HostMacAddress: macAddress.optional(),
  SubnetId: z.string().optional(),
  VlanTrunk: z.boolean().optional(),
});

export const subnetSchema = z.looseObject({
  Id: z.string().min(1),
  IpGateway: ipv4,
  IpMask: ipv4,
  DomainName: z.string().optional(),
  DomainNameServers: z.array(ipv4).optional(),
  Manage: z.boolean().optional(),
  VlanId: z.number().int().min(0).max(4094).optional(),
});

export const machineConfigSchema = z.looseObject({
  Machine: networkEntry.extend({
    GatewaySubnetId: z.string().optional(),
    IPMI: networkEntry.optional(),
    SecondaryNetworkEntries: z.array(networkEntry).optional(),
    Tags: z.record(z.string(), z.string()).optional(),
  }),
  Subnets: z.array(subnetSchema).default([]),
});

export type MachineConfig = z.infer<typeof machineConfigSchema>;
export type Subnet = z.infer<typeof subnetSchema>;
export type NetworkEntry = z.infer<typeof networkEntry>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses config.json text; errors name the file, the field and what it should be. */
export function parseMachineConfig(text: string, file = 'config.json'): MachineConfig {
  return parseJsonWith(text, machineConfigSchema, file, (m) => new ConfigError(m));
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

/** Dominator's subnet matching: the first subnet with ip & mask == gateway & mask. */
export function subnetOf(ip: string, subnets: Subnet[]): Subnet | undefined {
  const addr = ipToInt(ip);
  return subnets.find((s) => {
    const mask = ipToInt(s.IpMask);
    return (addr & mask) >>> 0 === (ipToInt(s.IpGateway) & mask) >>> 0;
  });
}
