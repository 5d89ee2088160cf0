// Validation at the machine database's boundary. Every write (CLI, import, boot server) passes
// through these zod schemas, so the stores only ever hold well-formed names and addresses in one
// canonical form (MACs lower-case with colons), and a mistake is reported with the field and how
// to fix it instead of surfacing later as a DHCP answer nobody can use.
import { z } from 'zod';
import { checkStorageLayout, storageLayoutSchema } from '../storage/layout.ts';
import { ARCHITECTURE_TYPES, ipv4 } from '../netconfig/machine-config.ts';
import {
  InventoryError,
  MACHINE_STATES,
  type InstallProgress,
  type MachinePatch,
  type MachineState,
  type NewMachine,
  type NewNodeGroup,
  type NodeGroupPatch,
  type Subnet,
} from './types.ts';

export class ValidationError extends InventoryError {
  override name = 'ValidationError';
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Prefix length of a contiguous netmask, or undefined for a non-contiguous one. */
export function prefixLength(mask: string): number | undefined {
  const inverted = ~ipToInt(mask) >>> 0;
  if ((inverted & (inverted + 1)) !== 0) return undefined;
  return 32 - Math.log2(inverted + 1);
}

/** The subnet's first and last address (network and broadcast), as integers. */
export function subnetRange(s: Pick<Subnet, 'gateway' | 'mask'>): { first: number; last: number } {
  const mask = ipToInt(s.mask);
  const first = (ipToInt(s.gateway) & mask) >>> 0;
  return { first, last: (first | (~mask >>> 0)) >>> 0 };
}

export function inSubnet(ip: string, s: Pick<Subnet, 'gateway' | 'mask'>): boolean {
  const { first, last } = subnetRange(s);
  const n = ipToInt(ip);
  return n >= first && n <= last;
}

/** "192.168.1.0/24", for messages. */
export function cidrOf(s: Pick<Subnet, 'gateway' | 'mask'>): string {
  return `${intToIp(subnetRange(s).first)}/${prefixLength(s.mask)}`;
}

const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const hostnameSchema = z
  .string()
  .max(253, 'a host name has at most 253 characters')
  .refine((h) => h.length > 253 || h.split('.').every((label) => LABEL_RE.test(label)), {
    error: (i) =>
      `'${i.input}' is not a host name: use lower-case labels of a-z, 0-9 and '-' (not first or last), joined by dots, e.g. rack1-node07`,
  });

/** A MAC in any usual spelling (colons, dashes, Cisco dots, bare hex), or undefined. */
export function normalizeMac(text: string): string | undefined {
  const s = text.trim().toLowerCase();
  let groups: string[];
  if (/^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}$/.test(s) || /^[0-9a-f]{1,2}(-[0-9a-f]{1,2}){5}$/.test(s))
    groups = s.split(/[:-]/);
  else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s) || /^[0-9a-f]{12}$/.test(s))
    groups = s.replace(/\./g, '').match(/../g) ?? [];
  else return undefined;
  return groups.map((g) => g.padStart(2, '0')).join(':');
}

export const macSchema = z.string().transform((text, ctx) => {
  const mac = normalizeMac(text);
  if (mac === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `'${text}' is not a MAC address: write six hex bytes such as de:ad:be:ef:00:01`,
    });
    return z.NEVER;
  }
  return mac;
});

export const ipv4Schema = ipv4;

export const stateSchema = z.enum(MACHINE_STATES, {
  error: (i) => `'${String(i.input)}' is not a machine state: use one of ${MACHINE_STATES.join(', ')}`,
});

export const subnetIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    "a subnet id is 1-63 letters, digits, '.', '_' or '-' (starting with a letter or digit), e.g. Hypervisors",
  );

/** As kits name node groups (Kusu's: installer, compute, ...). */
export const nodeGroupNameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._+-]{0,63}$/,
    "a node group name is 1-64 lowercase letters, digits, '.', '_', '+' or '-', starting with a letter or digit, e.g. compute",
  );

const tagsSchema = z.record(
  z.string().regex(/^[^=\s]+$/, "a tag name is non-empty, without '=' or spaces, e.g. RequiredImage"),
  z.string(),
);

// Checked as the installer checks it (storage/layout.ts), so a machine or node group never holds
// a layout its installer would refuse.
const layoutSchema = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const parsed = storageLayoutSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return void ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  }
  try {
    checkStorageLayout(parsed.data, 'the storage layout');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** Dominator's NetworkEntry: the IPMI and the secondary interfaces. */
const networkEntrySchema = z.object({
  hostname: hostnameSchema.optional(),
  ip: ipv4.optional(),
  mac: macSchema.optional(),
  subnetId: subnetIdSchema.optional(),
  vlanTrunk: z.boolean().optional(),
});

/** Group and user names (Dominator's OwnerGroups, AllowedUsers, ...). */
const namesSchema = z
  .array(z.string().min(1, 'a name is not empty').max(256, 'a name has at most 256 characters'))
  .max(1000, 'at most 1000 names');

const countSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const hardwareSchema = z.object({
  architecture: z
    .enum(ARCHITECTURE_TYPES, {
      error: (i) => `'${String(i.input)}' is not an architecture: use ${ARCHITECTURE_TYPES.join(', ')}`,
    })
    .optional(),
  memoryMiB: countSchema.optional(),
  cpus: countSchema.optional(),
  totalVolumeBytes: countSchema.optional(),
});

const locationSchema = z.string().max(1024, 'a location has at most 1024 characters');

const machineFields = {
  hostname: hostnameSchema,
  macs: z
    .array(macSchema)
    .min(1, 'a machine needs at least one MAC address (its boot interface first)')
    .refine((macs) => new Set(macs).size === macs.length, 'a MAC address is listed twice: list each interface once'),
  ip: ipv4.optional(),
  subnetId: subnetIdSchema.optional(),
  vlanTrunk: z.boolean().optional(),
  secondaryNetworkEntries: z.array(networkEntrySchema).max(64, 'at most 64 secondary network entries').optional(),
  gatewaySubnetId: subnetIdSchema.optional(),
  ipmi: networkEntrySchema.optional(),
  location: locationSchema.optional(),
  topologyLocation: locationSchema.optional(),
  ownerGroups: namesSchema.optional(),
  ownerUsers: namesSchema.optional(),
  hardware: hardwareSchema.optional(),
  tags: tagsSchema,
  storageLayout: layoutSchema.optional(),
  nodeGroup: nodeGroupNameSchema.optional(),
  firmware: z.enum(['uefi', 'bios']).optional(),
  state: stateSchema.optional(),
};

// A secondary interface's MAC is one the machine is known by (DHCP, HTTP by MAC): in `macs` too.
const newMachineSchema = z.object({ ...machineFields, tags: tagsSchema.default({}) }).superRefine((m, ctx) => {
  m.secondaryNetworkEntries?.forEach((e, i) => {
    if (e.mac && !m.macs.includes(e.mac))
      ctx.addIssue({
        code: 'custom',
        path: ['secondaryNetworkEntries', i, 'mac'],
        message: `${e.mac} is not one of the machine's MACs (${m.macs.join(', ')}): list it there too`,
      });
  });
});

const netmaskSchema = ipv4.refine((m) => prefixLength(m) !== undefined && m !== '0.0.0.0', {
  error: (i) => `'${i.input}' is not a netmask: use contiguous one bits such as 255.255.255.0`,
});

const subnetSchema = z
  .object({
    id: subnetIdSchema,
    gateway: ipv4,
    mask: netmaskSchema,
    domainName: z
      .string()
      .regex(
        /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/,
        'expected a DNS domain such as dev.example.com',
      )
      .optional(),
    dnsServers: z.array(ipv4).default([]),
    manage: z.boolean().default(false),
    vlanId: z
      .number()
      .int()
      .min(1, 'a VLAN id is 1-4094 (leave it out for an untagged subnet)')
      .max(4094, 'a VLAN id is 1-4094')
      .optional(),
    pool: z.object({ start: ipv4, end: ipv4 }).optional(),
    disableMetadata: z.boolean().optional(),
    allowedGroups: namesSchema.optional(),
    allowedUsers: namesSchema.optional(),
    tags: tagsSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const prefix = prefixLength(s.mask);
    const wellFormed = [s.gateway, s.mask, s.pool?.start ?? '0.0.0.0', s.pool?.end ?? '0.0.0.0'].every(
      (ip) => ipv4.safeParse(ip).success,
    );
    if (prefix === undefined || !wellFormed) return; // already reported on the field
    const { first, last } = subnetRange(s);
    const edges = prefix <= 30 ? [first, last] : []; // /31 and /32 have no network and broadcast addresses
    const cidr = cidrOf(s);
    if (edges.includes(ipToInt(s.gateway))) {
      ctx.addIssue({
        code: 'custom',
        path: ['gateway'],
        message: `${s.gateway} is the network or broadcast address of ${cidr}: use the router's own address`,
      });
    }
    if (!s.pool) return;
    const start = ipToInt(s.pool.start);
    const end = ipToInt(s.pool.end);
    for (const [key, ip] of [
      ['start', s.pool.start],
      ['end', s.pool.end],
    ] as const) {
      if (!inSubnet(ip, s))
        ctx.addIssue({
          code: 'custom',
          path: ['pool', key],
          message: `${ip} is outside the subnet ${cidr}: pick pool addresses inside it`,
        });
    }
    const range = `${s.pool.start}-${s.pool.end}`;
    if (start > end)
      ctx.addIssue({ code: 'custom', path: ['pool'], message: `${range} runs backwards: write it low-high` });
    const gw = ipToInt(s.gateway);
    if (gw >= start && gw <= end)
      ctx.addIssue({
        code: 'custom',
        path: ['pool'],
        message: `${range} contains the gateway ${s.gateway}: start or end the pool beside it`,
      });
    if (edges.some((e) => e >= start && e <= end)) {
      ctx.addIssue({
        code: 'custom',
        path: ['pool'],
        message: `${range} contains the network or broadcast address of ${cidr}: keep the pool inside ${intToIp(first + 1)}-${intToIp(last - 1)}`,
      });
    }
  });

const kitPinSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._+-]{0,63}$/, 'expected a kit name such as debian'),
  version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, 'expected a kit version such as 12.8-1'),
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, "expected the kit's digest, sha256:<64 hex>"),
});

/** An installer flag as the kernel command line carries it: no spaces, no quotes. */
const installerFlagSchema = z
  .string()
  .max(1024, 'an installer flag has at most 1024 characters')
  .regex(
    /^[a-z][a-zA-Z0-9-]*(=[^\s"'\\]*)?$/,
    "an installer flag is NAME or NAME=VALUE without spaces or quotes, e.g. failure-wait=60 (see 'cradle installer --help')",
  );

const nodeGroupFields = {
  name: nodeGroupNameSchema,
  description: z.string().max(2000, 'a description has at most 2000 characters').default(''),
  osKit: kitPinSchema,
  components: z
    .array(
      kitPinSchema.extend({ component: z.string().regex(/^[a-z0-9][a-z0-9._+-]{0,63}$/, 'expected a component name') }),
    )
    .max(256, 'a node group has at most 256 components')
    .refine(
      (cs) => new Set(cs.map((c) => `${c.name}/${c.component}`)).size === cs.length,
      'a component is listed twice: list each once',
    ),
  storageLayout: layoutSchema.optional(),
  installerFlags: z.array(installerFlagSchema).max(64, 'at most 64 installer flags').default([]),
};

const nodeGroupSchema = z.strictObject(nodeGroupFields);

/** Objects and bytes of an install from the old system's cache vs the network. */
export const objectCountsSchema = z.object({
  objectsFromCache: z.number().min(0),
  bytesFromCache: z.number().min(0),
  objectsFetched: z.number().min(0),
  bytesFetched: z.number().min(0),
});

const progressSchema = z.object({
  hostname: hostnameSchema,
  phase: z.string().min(1, 'a phase name is required'),
  bytesDone: z.number().min(0).optional(),
  bytesTotal: z.number().min(0).optional(),
  etaSeconds: z.number().nullable().optional(),
  bytesPerSecond: z.number().min(0).optional(),
  result: z
    .object({
      ok: z.boolean(),
      error: z.string().optional(),
      seconds: z.number().min(0).optional(),
      phaseSeconds: z.record(z.string(), z.number().min(0)).optional(),
      objects: objectCountsSchema.optional(),
    })
    .optional(),
  updatedAt: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time such as 2026-11-22T20:25:18.000Z' }),
});

/** Parses `value` with `schema`, or throws a ValidationError naming each bad field (up to three). */
export function check<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `field '${i.path.join('.')}' is invalid: ${i.message}` : i.message));
  throw new ValidationError(`${what}: ${problems.join('; ')}`);
}

export function checkNewMachine(m: NewMachine): NewMachine {
  return check(newMachineSchema, m, `machine '${m?.hostname ?? '?'}'`) as NewMachine;
}

export function checkSubnet(s: Subnet): Subnet {
  return check(subnetSchema, s, `subnet '${s?.id ?? '?'}'`) as Subnet;
}

export function checkNodeGroup(g: NewNodeGroup): NewNodeGroup {
  return check(nodeGroupSchema, g, `node group '${g?.name ?? '?'}'`) as NewNodeGroup;
}

export function checkNodeGroupPatchKeys(patch: NodeGroupPatch): void {
  for (const key of Object.keys(patch)) {
    if (!(key in nodeGroupFields) || key === 'name')
      throw new ValidationError(`node group patch: field '${key}' cannot be changed (a group's name is its identity)`);
  }
}

export function checkPatchKeys(patch: MachinePatch): void {
  const allowed = new Set(Object.keys(machineFields));
  for (const key of Object.keys(patch)) {
    if (!allowed.has(key) || key === 'hostname' || key === 'state') {
      throw new ValidationError(
        `machine patch: field '${key}' cannot be changed this way${key === 'state' ? ": use setState ('cradle machine set-state')" : ''}`,
      );
    }
  }
}

export function checkState(state: string): MachineState {
  return check(stateSchema, state, 'state');
}

export function checkMac(mac: string): string {
  return check(macSchema, mac, 'MAC address');
}

export function checkHostname(hostname: string): string {
  return check(hostnameSchema, hostname, 'host name');
}

export function checkProgress(p: InstallProgress): InstallProgress {
  return check(progressSchema, p, `progress of '${p?.hostname ?? '?'}'`) as InstallProgress;
}
