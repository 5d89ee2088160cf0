// Node groups (Kusu's: the head node, compute nodes, ...) and the kits they are made of. Choosing
// is a pure function from the depot's kits to the group's pins, so every refusal (no OS kit, two,
// a component for another OS or architecture) is decided and tested before anything is written.
// Building composes the group's image from its OS kit's image and its components' layers: only a
// new manifest is written, every file object is shared with the kits.
import { type Digest, digestOf } from '../image/model/digest.ts';
import { encodeManifest, neededObjects } from '../image/model/manifest.ts';
import { checkFullImageName } from '../image/model/names.ts';
import { type ImageRecord, type ImageStore, newRecord } from '../image/store/store.ts';
import type { KitPin, NodeGroup } from '../inventory/types.ts';
import { overlay } from './compose.ts';
import type { Depot, KitRecord } from './depot.ts';
import { KitError, type KitComponent, kitLabel } from './format.ts';

/** A component an add-on kit offers for any OS (the Cradle kit's, which bring their own runtime). */
export const ANY_OS = 'any';

export interface KitChoice {
  osKit: KitPin;
  components: (KitPin & { component: string })[];
}

const pin = (r: KitRecord): KitPin => ({ name: r.kit.name, version: r.kit.version, digest: r.digest });

/** `KIT:COMPONENT` as operators name a component, KIT being `NAME` or `NAME/VERSION`. */
export function parseComponentRef(text: string): { kit: string; component: string } {
  const m = /^([^:\s]+):([a-z0-9][a-z0-9._+-]*)$/.exec(text);
  if (!m) throw new KitError(`component '${text}': write KIT:COMPONENT, e.g. slurm/24.05:slurmd`);
  return { kit: m[1], component: m[2] };
}

function supports(c: KitComponent, os: string): boolean {
  return c.os.includes(os) || c.os.includes(ANY_OS);
}

/**
 * The kits and components of node group `group`: `kits` are the kits named for it (exactly one OS
 * kit among them), `components` the chosen ones (`KIT:COMPONENT`, their kits found in `lookup`);
 * without any, every component of the named kits that is for this group is taken. Each must
 * support the OS kit's OS and architecture; a refusal names the component and the reason.
 */
export function chooseKits(
  group: string,
  kits: KitRecord[],
  components: string[],
  lookup: (label: string) => KitRecord,
): KitChoice {
  const osKits = kits.filter((r) => r.kit.kind === 'os');
  if (osKits.length === 0)
    throw new KitError(
      `node group '${group}' has no OS kit: name one with --kit (an OS kit brings the operating system, see 'cradle kit list')`,
    );
  if (osKits.length > 1)
    throw new KitError(
      `node group '${group}' names two OS kits (${osKits.map((r) => kitLabel(r.kit)).join(', ')}): a group installs one operating system, name only one`,
    );
  const osKit = osKits[0];
  const os = osKit.kit.os as string;
  const chosen: { record: KitRecord; component: KitComponent }[] = [];
  if (components.length) {
    for (const text of components) {
      const ref = parseComponentRef(text);
      const record = kits.find((r) => r.kit.name === ref.kit || kitLabel(r.kit) === ref.kit) ?? lookup(ref.kit);
      const component = record.kit.components.find((c) => c.name === ref.component);
      if (!component)
        throw new KitError(
          `kit ${kitLabel(record.kit)} has no component '${ref.component}' (it has: ${record.kit.components.map((c) => c.name).join(', ') || 'none'})`,
        );
      chosen.push({ record, component });
    }
  } else {
    for (const record of kits) {
      const mine = record.kit.components.filter((c) => c.nodeGroups.includes(group));
      if (record.kit.kind === 'addon' && !mine.length)
        throw new KitError(
          `kit ${kitLabel(record.kit)} has no component for node group '${group}' (its components are for: ${[...new Set(record.kit.components.flatMap((c) => c.nodeGroups))].join(', ')}): choose some with --component KIT:COMPONENT`,
        );
      for (const component of mine) chosen.push({ record, component });
    }
  }
  const seen = new Set<string>();
  for (const { record, component } of chosen) {
    const label = `${kitLabel(record.kit)}:${component.name}`;
    if (seen.has(`${record.kit.name}:${component.name}`))
      throw new KitError(`component ${label} is chosen twice for node group '${group}'`);
    seen.add(`${record.kit.name}:${component.name}`);
    if (record.kit.kind === 'os' && record !== osKit)
      throw new KitError(
        `component ${label} belongs to another OS kit than node group '${group}''s (${kitLabel(osKit.kit)})`,
      );
    const componentOs = record.kit.kind === 'os' ? [record.kit.os as string] : component.os;
    if (!supports({ ...component, os: componentOs }, os))
      throw new KitError(
        `component ${label} supports ${componentOs.join(', ')}, not ${os} (the OS of node group '${group}', from kit ${kitLabel(osKit.kit)})`,
      );
    if (record.kit.arch !== osKit.kit.arch)
      throw new KitError(
        `component ${label} is for ${record.kit.arch}, node group '${group}''s OS kit ${kitLabel(osKit.kit)} for ${osKit.kit.arch}`,
      );
  }
  return {
    osKit: pin(osKit),
    components: chosen.map(({ record, component }) => ({ ...pin(record), component: component.name })),
  };
}

/** A pinned kit as it is in the depot now; refused when it is missing or is not the kit pinned. */
function pinned(depot: Depot, group: string, p: KitPin): KitRecord {
  const label = `${p.name}/${p.version}`;
  const r = depot.find(label);
  if (!r)
    throw new KitError(
      `node group '${group}' uses kit ${label}, which is not in ${depot.root}: add it again ('cradle kit add') or change the group ('cradle nodegroup set')`,
    );
  if (r.digest !== p.digest)
    throw new KitError(
      `kit ${label} in ${depot.root} is not the one node group '${group}' was made with (${r.digest}, the group pins ${p.digest}): re-choose its kits with 'cradle nodegroup set ${group} --kit …'`,
    );
  return r;
}

/** The store's stream of a group's images; a name alone resolves to its newest build. */
export const nodeGroupStream = (group: string) => `nodegroup/${group}`;

/** The group's builds in the store, oldest first. */
export function groupImages(store: ImageStore, group: string): ImageRecord[] {
  return store
    .listRecords()
    .filter((r) => r.name.startsWith(`${nodeGroupStream(group)}/`))
    .sort((a, b) => a.created.localeCompare(b.created));
}

export interface BuiltNodeGroup {
  record: ImageRecord;
  /** Objects the image needs, and how many the build wrote (its manifest, when new). */
  objects: number;
  written: number;
}

/**
 * Composes the group's image into the depot's store as `nodegroup/NAME/<time>`: the OS kit's image
 * with the components' layers on top, in the group's order. Writes one manifest and one record
 * (each atomically), so a kill leaves either the previous builds or one more.
 */
export async function buildNodeGroup(depot: Depot, group: NodeGroup, now = new Date()): Promise<BuiltNodeGroup> {
  const osKit = pinned(depot, group.name, group.osKit);
  const layers: Digest[] = [];
  for (const c of group.components) {
    const r = pinned(depot, group.name, c);
    const component = r.kit.components.find((x) => x.name === c.component);
    if (!component) throw new KitError(`kit ${kitLabel(r.kit)} has no component '${c.component}'`);
    layers.push(component.manifest);
  }
  const store = depot.store;
  const base = await store.readManifest(osKit.kit.image as Digest);
  const composed = overlay(
    base,
    await Promise.all(layers.map((d) => store.readManifest(d))),
    `node group ${group.name}`,
  );
  const known = store.storedSize(digestOf(encodeManifest(composed))) !== undefined;
  const manifest = await store.putManifest(composed);
  const name = checkFullImageName(`${nodeGroupStream(group.name)}/${now.toISOString()}`);
  const sources = [kitLabel(osKit.kit), ...group.components.map((c) => `${c.name}/${c.version}:${c.component}`)];
  const record = newRecord(name, manifest, composed, `nodegroup:${group.name} from ${sources.join(' + ')}`);
  const needed = [manifest, ...neededObjects(composed).keys()];
  store.commitImage(record, needed);
  return { record, objects: needed.length, written: known ? 0 : 1 };
}
