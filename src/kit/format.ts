// A kit (Kusu's unit of cluster software): a named, versioned bundle of components, each saying
// which OS it supports and which node groups it is for. An OS kit also brings an operating system.
// In Cradle a kit's content is in Cradle's image format: the OS is an image (its manifest digest),
// each component a layer of files (a manifest too), every file an object. `kit.json` names them
// all by digest, so its own digest is the kit's identity and covers every byte. docs/kits.md.
import { z } from 'zod';
import { digestOf, isDigest, type Digest } from '../image/model/digest.ts';
import { parseJsonWith } from '../util/parse-json.ts';

export const KIT_FORMAT = 1;

export class KitError extends Error {
  override name = 'KitError';
}

const digest = z.string().refine(isDigest, 'expected a digest such as sha256:<64 hex>') as unknown as z.ZodType<Digest>;
const word = (what: string) =>
  z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9._+-]{0,63}$/,
      `${what}: 1-64 lowercase letters, digits, '.', '_', '+' or '-', starting with a letter or digit`,
    );

export const componentSchema = z.strictObject({
  name: word('a component name'),
  description: z.string().max(500).default(''),
  /** The node groups this component is for (Kusu: installer, compute, ...). */
  nodeGroups: z.array(word('a node group name')).min(1, 'name at least one node group, e.g. ["compute"]'),
  /** The OS (as OS kits name it, e.g. debian-12) this component supports; empty for an OS kit's own. */
  os: z.array(word('an OS name')).default([]),
  /** The component's files: the manifest of a layer. */
  manifest: digest,
});

export const kitSchema = z
  .strictObject({
    cradleKit: z.literal(KIT_FORMAT, { error: `this is not a Cradle kit of format ${KIT_FORMAT}` }),
    name: word('a kit name'),
    version: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, "a version such as 12.8-1: letters, digits, '.', '_', '+', '-'"),
    kind: z.enum(['os', 'addon']),
    /** For an OS kit: the OS it brings (e.g. debian-12). For an add-on: unused. */
    os: word('an OS name').optional(),
    arch: z.enum(['x86_64', 'aarch64']),
    description: z.string().max(2000).default(''),
    /** An OS kit's operating system image (its manifest). */
    image: digest.optional(),
    components: z.array(componentSchema).default([]),
  })
  .superRefine((k, ctx) => {
    if (k.kind === 'os' && (!k.image || !k.os))
      ctx.addIssue({
        code: 'custom',
        path: ['image'],
        message: 'an OS kit needs "os" (e.g. debian-12) and "image" (its OS image)',
      });
    if (k.kind === 'addon' && k.image)
      ctx.addIssue({ code: 'custom', path: ['image'], message: 'an add-on kit brings no OS image: use components' });
    if (k.kind === 'addon' && !k.components.length)
      ctx.addIssue({ code: 'custom', path: ['components'], message: 'an add-on kit needs at least one component' });
    const names = new Set<string>();
    for (const [i, c] of k.components.entries()) {
      if (names.has(c.name))
        ctx.addIssue({
          code: 'custom',
          path: ['components', i, 'name'],
          message: `component '${c.name}' appears twice`,
        });
      names.add(c.name);
      if (k.kind === 'addon' && !c.os.length)
        ctx.addIssue({
          code: 'custom',
          path: ['components', i, 'os'],
          message: 'an add-on component names the OS it supports, e.g. ["debian-12"]',
        });
    }
  });

export type Kit = z.output<typeof kitSchema>;
export type KitComponent = z.output<typeof componentSchema>;

export function parseKit(bytes: Uint8Array, where = 'kit.json'): Kit {
  return parseJsonWith(Buffer.from(bytes).toString('utf8'), kitSchema, where, (m) => new KitError(m));
}

/** kit.json as written: stable key order, so the same kit has the same identity. */
export function encodeKit(kit: Kit): Buffer {
  return Buffer.from(`${JSON.stringify(kit, null, 2)}\n`);
}

/** The kit's identity: the digest of its kit.json bytes. */
export const kitDigest = (bytes: Uint8Array): Digest => digestOf(bytes);

/** Every manifest the kit names: its OS image first, then its components'. */
export function kitManifests(kit: Kit): Digest[] {
  return [...(kit.image ? [kit.image] : []), ...kit.components.map((c) => c.manifest)];
}

/** `name/version`, how operators name a kit. */
export const kitLabel = (k: Pick<Kit, 'name' | 'version'>) => `${k.name}/${k.version}`;
