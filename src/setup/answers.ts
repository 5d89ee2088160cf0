// The head node's answer file: what `cradle setup` installs from. One schema, two front ends: the
// wizard only writes one, the install only reads one (Kusu's wizard wrote a kickstart instead).
// YAML or JSON, checked strictly at the boundary: an unknown key is refused (a misspelt key must
// not be silently ignored on a machine about to be wiped), and every error names the key and the
// fix. Every section is optional here, so a partial file can pre-fill the wizard; `missing()`
// says what a zero-touch install still needs. docs/setup.md.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export const ANSWERS_FORMAT = 1;

export class AnswersError extends Error {
  override name = 'AnswersError';
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** "40GB", "12 GiB", "512MiB", 1073741824: bytes, or undefined. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = SIZE_UNITS[(m?.[2] || 'b').toLowerCase()];
  if (!m || !unit) return undefined;
  const bytes = Math.round(Number(m[1]) * unit);
  return bytes > 0 ? bytes : undefined;
}

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const bytes = parseSize(v);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a size: write e.g. 40GB, 12GiB or 512MiB` });
    return z.NEVER;
  }
  return bytes;
});

const ipv4Re = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ipv4 = z.string().regex(ipv4Re, 'expected an IPv4 address such as 10.1.0.1');
const cidr = z
  .string()
  .regex(
    /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([1-9]|[12]\d|3[0-2])$/,
    'expected an address with its prefix length, e.g. 10.1.0.1/24',
  );
const label = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const domain = z
  .string()
  .max(253)
  .regex(new RegExp(`^${label}(\\.${label})+$`, 'i'), 'expected a DNS domain such as cluster.example.com');

/** Shell-style patterns (`*`, `?`) for disk and NIC filters. */
const pattern = z.string().min(1).max(256);

const TIME_ZONES = new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/UTC']);

const interfaceSchema = z.strictObject({
  /** Which NIC: by name, MAC or driver (patterns allowed); every key given must match. */
  match: z
    .strictObject({ name: pattern.optional(), mac: pattern.optional(), driver: pattern.optional() })
    .refine((m) => m.name || m.mac || m.driver, 'give name, mac or driver, e.g. {name: eth1}'),
  /** Kusu's roles: the world, the cluster's own network (compute nodes boot on it), or neither. */
  role: z.enum(['public', 'provisioning', 'unused']),
  /** `dhcp` (public only) or a static address with its prefix. */
  ipv4: z.union([z.literal('dhcp'), cidr]).optional(),
  /** Provisioning: the addresses handed to compute nodes (default: the upper half of the subnet). */
  pool: z.strictObject({ start: ipv4, end: ipv4 }).optional(),
});

const volumeSchema = z.strictObject({
  /** A mount point, or `swap`. */
  mount: z.string().regex(/^(\/[A-Za-z0-9._/-]*|swap)$/, 'expected a mount point such as /var, or swap'),
  /** A size, or `rest` for what is left (one volume of the partitions, one of LVM). */
  size: z.union([z.literal('rest'), size]),
  fs: z.enum(['ext4', 'xfs', 'swap']).optional(),
  /** In the volume group (default), or a plain partition (/boot must be). */
  lvm: z.boolean().optional(),
});

const kitSourceSchema = z.strictObject({
  // Only https: nothing else would tell the kit a site meant from one put on the network's path.
  url: z
    .string()
    .regex(
      /^https:\/\/\S+$/,
      "expected an https:// URL of a kit file (its server's certificate checked against the system's CAs, or pinned by 'fingerprint')",
    ),
  /** The server certificate's SHA-256 fingerprint, when it is not signed by a CA the setup trusts. */
  fingerprint: z
    .string()
    .regex(/^(sha256:)?([0-9a-fA-F]{2}:?){32}$/, 'expected a SHA-256 fingerprint: 64 hex digits, colons allowed')
    .optional(),
});

const nodeGroupSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._+-]{0,63}$/, 'a node group name such as compute'),
  /** Kits by name (or name/version): one OS kit, and add-ons. */
  kits: z.array(z.string().min(1)).min(1, 'name at least the OS kit'),
  components: z.array(z.string()).optional(),
  description: z.string().max(2000).optional(),
});

// Host names as the machine database keeps them (lower-case labels joined by dots), typed in any case.
const hostLabel = '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?';

/** A compute node registered before it first boots (Kusu's addhost pre-populated its nodes so). */
const nodeSchema = z.strictObject({
  /** A name (node07) or a fully qualified one (node07.cluster.example); kept in lower case. */
  hostname: z
    .string()
    .max(253)
    .regex(
      new RegExp(`^${hostLabel}(\\.${hostLabel})*$`),
      "expected a host name of letters, digits and '-' (not first or last), dots between labels, e.g. node07",
    )
    .transform((h) => h.toLowerCase()),
  /** The MAC it network-boots from; kept in lower case. */
  mac: z
    .string()
    .regex(/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/, 'expected a MAC address of six hex bytes such as 52:54:00:aa:00:01')
    .transform((m) => m.toLowerCase()),
  /** Its address on the provisioning network, outside the pool; without one it takes a pool address. */
  ip: ipv4.optional(),
  nodeGroup: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._+-]{0,63}$/, 'a node group name such as compute')
    .default('compute'),
});

export const answersSchema = z.strictObject({
  cradleSetup: z.literal(ANSWERS_FORMAT, { error: `write 'cradleSetup: ${ANSWERS_FORMAT}' at the top` }),
  /** A locale such as en_US.UTF-8. */
  language: z
    .string()
    .regex(/^[a-z]{2,3}(_[A-Z]{2})?(\.UTF-8)?$/, 'expected a locale such as en_US.UTF-8')
    .optional(),
  /** A console keymap such as us, de or fr-latin9. */
  keyboard: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'expected a keymap name such as us or de-latin1')
    .optional(),
  timezone: z
    .string()
    .refine((t) => TIME_ZONES.has(t), 'expected a time zone name such as Europe/Berlin or UTC')
    .optional(),
  /** The fully qualified host name, e.g. head.cluster.example.com. */
  hostname: domain.optional(),
  rootPassword: z
    .strictObject({
      /** Hashed (SHA-512 crypt) before it is written anywhere; the saved file holds only the hash. */
      plain: z.string().min(8, 'a root password has at least 8 characters').max(256).optional(),
      hash: z
        .string()
        .regex(/^\$(6|5|y|2b)\$\S+$/, 'expected a crypt(3) hash such as $6$salt$... (mkpasswd -m sha-512)')
        .optional(),
    })
    .refine((p) => !!p.plain !== !!p.hash, 'give either plain or hash, not both')
    .optional(),
  network: z
    .strictObject({
      interfaces: z.array(interfaceSchema).min(1, 'list the interfaces, at least one provisioning'),
      gateway: z.union([z.literal('dhcp'), ipv4]).optional(),
      dns: z.union([z.literal('dhcp'), z.array(ipv4).min(1).max(3)]).optional(),
      /** The cluster's DNS domain (default: the host name's). */
      domain: domain.optional(),
    })
    .optional(),
  disks: z
    .strictObject({
      /** Which disks: every one matching all the given filters; never the medium setup booted from. */
      match: z
        .strictObject({
          path: pattern.optional(),
          model: pattern.optional(),
          serial: pattern.optional(),
          minSize: size.optional(),
          maxSize: size.optional(),
        })
        .optional(),
      /** Of the matching disks: all, or the smallest or largest `count` of them. */
      pick: z.enum(['all', 'smallest', 'largest']).default('all'),
      count: z.number().int().min(1).max(64).optional(),
      /** `default` (Kusu's, with /depot taking the rest), or the volumes to make. */
      layout: z.union([z.literal('default'), z.array(volumeSchema).min(1)]).default('default'),
    })
    .optional(),
  kits: z
    .strictObject({
      /** Add every kit on the installation medium (default), or only these, by name or name/version. */
      fromMedia: z.union([z.literal('all'), z.array(z.string().min(1))]).default('all'),
      urls: z.array(kitSourceSchema).default([]),
    })
    .optional(),
  /** Node groups to create (default: `compute` from the first OS kit). */
  nodeGroups: z.array(nodeGroupSchema).optional(),
  /** Compute nodes in the machine database from the start, in state birth: their first network boot installs them. */
  nodes: z.array(nodeSchema).optional(),
  /** Operators beside the site CA's: an existing PKI's client certificates read the machine API and the dashboard. */
  operators: z
    .strictObject({
      /** The PEM certificate(s) of that CA; its certificates are operators', never the installer's. */
      ca: z
        .string()
        .max(256 * 1024)
        .regex(/-----BEGIN CERTIFICATE-----/, 'expected the PEM certificate of a CA (-----BEGIN CERTIFICATE----- ...)'),
    })
    .optional(),
});

export type Answers = z.output<typeof answersSchema>;
export type InterfaceAnswer = z.output<typeof interfaceSchema>;
export type VolumeAnswer = z.output<typeof volumeSchema>;
export type NodeAnswer = z.output<typeof nodeSchema>;

/** The key path of an issue as an operator reads it: network.interfaces[1].ipv4. */
export function keyPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)),
    '',
  );
}

/** Parses an answer file (YAML, of which JSON is a subset). Every problem is named, up to five. */
export function parseAnswers(text: string, where = 'the answer file'): Answers {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    throw new AnswersError(`${where} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new AnswersError(`${where}: expected keys such as 'cradleSetup: 1', 'hostname: ...' at the top level`);
  const r = answersSchema.safeParse(doc);
  if (r.success) return r.data;
  const problems = r.error.issues.slice(0, 5).map((i) => {
    if (i.code === 'unrecognized_keys')
      return `${i.keys.map((k) => `'${keyPath([...i.path, k])}'`).join(', ')}: unknown key${i.keys.length > 1 ? 's' : ''} (see docs/setup.md for the keys of ${keyPath(i.path) || 'the top level'})`;
    return `'${keyPath(i.path) || 'the file'}': ${i.message}`;
  });
  throw new AnswersError(`${where}:\n  ${problems.join('\n  ')}`);
}

/** The sections a zero-touch install needs that the answers leave out (the wizard asks them). */
export function missing(a: Answers): string[] {
  const needed: (keyof Answers)[] = [
    'language',
    'keyboard',
    'timezone',
    'hostname',
    'rootPassword',
    'network',
    'disks',
  ];
  return needed.filter((k) => a[k] === undefined);
}
