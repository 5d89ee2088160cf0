// Dominator's machine configuration (`config.json`, Dominator's GetMachineInfoResponse), validated
// at the boundary. Every field of Dominator's types (proto/fleetmanager Machine, MachineData,
// NetworkEntry; proto/hypervisor Subnet) is read with Dominator's encodings, so a Dominator user's
// files, and what Dominator's own tools write, work unchanged: IPs may be "" (Go's nil net.IP),
// null is absent, MACs take Go's spellings, ArchitectureType is text or its number. A key that is
// no field of Dominator's is kept (Go would ignore it) and reported in the notes (a typo, mostly).
import { z } from 'zod';
import { nullAsAbsent } from '../util/go-json.ts';
import { parseJsonWith } from '../util/parse-json.ts';

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export const ipv4 = z.string().regex(IPV4_RE, 'expected a dotted IPv4 address such as 192.168.1.2');

/** An address field as Go's net.IP reads it: "" is no address (nil). */
const optionalIp = z
  .union([z.literal(''), ipv4], {
    error: (i) => `'${String(i.input)}' is not a dotted IPv4 address such as 192.168.1.2`,
  })
  .transform((ip) => ip || undefined)
  .optional();

/**
 * A MAC as Dominator's HardwareAddr reads it, lower-cased and written back as colon pairs:
 * colon groups of 1-2 hex digits (de:ad:be:ef:0:1), else Go's net.ParseMAC (pairs joined by ':'
 * or '-', or groups of four joined by '.'), for 6, 8 or 20 bytes. Undefined when it is none.
 */
export function parseHardwareAddress(text: string): string | undefined {
  const s = text.toLowerCase();
  let bytes: string[] | undefined;
  if (/^[0-9a-f]{1,2}(:[0-9a-f]{1,2})+$/.test(s)) bytes = s.split(':').map((g) => g.padStart(2, '0'));
  else if (/^[0-9a-f]{2}([:-][0-9a-f]{2})+$/.test(s) && new Set(s.replace(/[0-9a-f]/g, '')).size === 1)
    bytes = s.split(/[:-]/);
  else if (/^[0-9a-f]{4}(\.[0-9a-f]{4})+$/.test(s)) bytes = s.replace(/\./g, '').match(/../g) ?? [];
  return bytes && [6, 8, 20].includes(bytes.length) ? bytes.join(':') : undefined;
}

/** MAC addresses in Dominator's spellings ("" is none), normalised to lower-case colon pairs. */
export const macAddress = z.string().transform((text, ctx) => {
  if (text === '') return undefined;
  const mac = parseHardwareAddress(text);
  if (mac === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a MAC address such as de:ad:be:ef:00:01, not '${text}'` });
    return z.NEVER;
  }
  return mac;
});

const uint = (what: string) =>
  z
    .number()
    .int(`${what} is a whole number`)
    .min(0, `${what} is not negative`)
    .max(Number.MAX_SAFE_INTEGER, `${what} is too large`);

export const ARCHITECTURE_TYPES = ['auto', 'amd64', 'arm64'] as const;

/** Dominator's ArchitectureType: text, or its number (0 auto, 1 amd64, 2 arm64). */
const architectureType = z
  .union([z.enum(ARCHITECTURE_TYPES), z.literal(0), z.literal(1), z.literal(2)], {
    error: (i) =>
      `'${JSON.stringify(i.input)}' is not an architecture: use auto, amd64 or arm64 (or Dominator's numbers 0, 1, 2)`,
  })
  .transform((a) => (typeof a === 'number' ? ARCHITECTURE_TYPES[a] : a));

const strings = z.array(z.string());
const tags = z.record(z.string(), z.string());

/** Dominator's NetworkEntry: one interface's name, address, MAC and subnet. */
const networkEntryFields = {
  Hostname: z.string().optional(),
  HostIpAddress: optionalIp,
  HostMacAddress: macAddress.optional(),
  SubnetId: z.string().optional(),
  VlanTrunk: z.boolean().optional(),
};
const networkEntry = z.looseObject(nullAsAbsent(networkEntryFields));

/** Dominator's MachineData: the hardware as the fleet manager knows it (unused by installers). */
const machineDataFields = {
  ArchitectureType: architectureType.optional(),
  MemoryInMiB: uint('MemoryInMiB').optional(),
  NumCPUs: uint('NumCPUs').optional(),
  TotalVolumeBytes: uint('TotalVolumeBytes').optional(),
};

const machineFields = {
  ...machineDataFields,
  ...networkEntryFields,
  GatewaySubnetId: z.string().optional(),
  IPMI: networkEntry.optional(),
  Location: z.string().optional(),
  OwnerGroups: strings.optional(),
  OwnerUsers: strings.optional(),
  SecondaryNetworkEntries: z.array(networkEntry).optional(),
  Tags: tags.optional(),
};

const subnetFields = {
  Id: z.string().min(1),
  IpGateway: ipv4,
  IpMask: ipv4,
  DomainName: z.string().optional(),
  DomainNameServers: z.array(ipv4).optional(),
  DisableMetadata: z.boolean().optional(),
  Manage: z.boolean().optional(),
  VlanId: z.number().int().min(0).max(4094).optional(),
  AllowedGroups: strings.optional(),
  AllowedUsers: strings.optional(),
  FirstDynamicIP: optionalIp,
  LastDynamicIP: optionalIp,
  Tags: tags.optional(),
};

export const subnetSchema = z.looseObject(nullAsAbsent(subnetFields));

const responseFields = {
  Error: z.string().optional(),
  Location: z.string().optional(),
  Machine: z.looseObject(nullAsAbsent(machineFields)),
  Subnets: z.array(subnetSchema).default([]),
};

export const machineConfigSchema = z.looseObject(nullAsAbsent(responseFields));

export type MachineConfig = z.infer<typeof machineConfigSchema>;
export type Subnet = z.infer<typeof subnetSchema>;
export type NetworkEntry = z.infer<typeof networkEntry>;

/** The field names of Dominator's types, by level: what is not among them is not Dominator's. */
export const DOMINATOR_FIELDS = {
  response: Object.keys(responseFields),
  machine: Object.keys(machineFields),
  networkEntry: Object.keys(networkEntryFields),
  subnet: Object.keys(subnetFields),
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Keys of `o` that are not in `known`, as paths under `at`. */
export function unknownKeys(o: object | undefined, known: string[], at: string): string[] {
  return o
    ? Object.keys(o)
        .filter((k) => !known.includes(k))
        .map((k) => (at ? `${at}.${k}` : k))
    : [];
}

/** Every key of a parsed config.json that is no field of Dominator's, as a path (Machine.Foo). */
export function unknownConfigFields(c: MachineConfig): string[] {
  const f = DOMINATOR_FIELDS;
  return [
    ...unknownKeys(c, f.response, ''),
    ...unknownKeys(c.Machine, f.machine, 'Machine'),
    ...unknownKeys(c.Machine.IPMI, f.networkEntry, 'Machine.IPMI'),
    ...(c.Machine.SecondaryNetworkEntries ?? []).flatMap((e, i) =>
      unknownKeys(e, f.networkEntry, `Machine.SecondaryNetworkEntries.${i}`),
    ),
    ...c.Subnets.flatMap((s, i) => unknownKeys(s, f.subnet, `Subnets.${i}`)),
  ];
}

/** Dominator's fields for its fleet tools, which its installer does not read, and Cradle's neither. */
const FLEET_FIELDS = {
  response: ['Location'],
  machine: [...Object.keys(machineDataFields), 'IPMI', 'Location', 'OwnerGroups', 'OwnerUsers', 'Tags'],
  subnet: ['DisableMetadata', 'AllowedGroups', 'AllowedUsers', 'FirstDynamicIP', 'LastDynamicIP', 'Tags'],
};

/** The fleet tools' fields a parsed config.json holds, as paths (Subnets[].Tags once for all). */
function fleetFieldsOf(c: MachineConfig): string[] {
  const has = (o: object, key: string) => (o as Record<string, unknown>)[key] !== undefined;
  return [
    ...FLEET_FIELDS.response.filter((k) => has(c, k)),
    ...FLEET_FIELDS.machine.filter((k) => has(c.Machine, k)).map((k) => `Machine.${k}`),
    ...FLEET_FIELDS.subnet.filter((k) => c.Subnets.some((s) => has(s, k))).map((k) => `Subnets[].${k}`),
  ];
}

/** What the installer should log about a parsed config.json: what it ignores, and why. */
export function machineConfigNotes(c: MachineConfig, file = 'config.json'): string[] {
  const notes = unknownConfigFields(c).map(
    (p) => `${file}: field '${p}' is not one of Dominator's (GetMachineInfoResponse): ignored`,
  );
  if (c.Error) notes.push(`${file}: field 'Error' says the server that wrote it failed ('${c.Error}'): ignored`);
  const fleet = fleetFieldsOf(c);
  if (fleet.length)
    notes.push(
      `${file}: ${fleet.join(', ')}: for fleet tools; the installer does not use them (as Dominator's does not)`,
    );
  return notes;
}

/** Parses config.json text; errors name the file, the field and what it should be. */
export function parseMachineConfig(text: string, file = 'config.json'): MachineConfig {
  return parseJsonWith(text, machineConfigSchema, file, (m) => new ConfigError(m));
}

/** parseMachineConfig, with the notes the installer logs (machineConfigNotes). */
export function parseMachineConfigWithNotes(
  text: string,
  file = 'config.json',
): { config: MachineConfig; notes: string[] } {
  const config = parseMachineConfig(text, file);
  return { config, notes: machineConfigNotes(config, file) };
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
