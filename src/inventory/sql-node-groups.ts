// Node groups in SQL (both dialects): a group's row, its components in order, and the machines
// that belong to it. Called by sql-store.ts inside its transactions.
import { ConflictError, type NewNodeGroup, type NodeGroup, NotFoundError } from './types.ts';
import { byKey, fromJson, json, type Row, type SqlConn, someOf } from './sql-rows.ts';

export const noNodeGroup = (name: string) =>
  new NotFoundError(`no node group '${name}': see 'cradle nodegroup list', or add it with 'cradle nodegroup add'`);

function toNodeGroup(r: Row, components: Row[]): NodeGroup {
  return {
    name: r.name as string,
    description: r.description as string,
    osKit: {
      name: r.os_kit_name as string,
      version: r.os_kit_version as string,
      digest: r.os_kit_digest as string,
    },
    components: components.map((c) => ({
      name: c.kit_name as string,
      version: c.kit_version as string,
      digest: c.kit_digest as string,
      component: c.component as string,
    })),
    ...(r.storage_layout != null ? { storageLayout: fromJson(r.storage_layout) } : {}),
    installerFlags: fromJson(r.installer_flags) as string[],
    createdAt: r.created_at as string,
    updatedAt: r.updated_at as string,
  };
}

export async function nodeGroupOn(c: SqlConn, name: string, lock = ''): Promise<NodeGroup | undefined> {
  const [row] = await c.query(`SELECT * FROM node_groups WHERE name = $1${lock}`, [name]);
  if (!row) return undefined;
  const components = await c.query('SELECT * FROM node_group_components WHERE node_group = $1 ORDER BY position', [
    name,
  ]);
  return toNodeGroup(row, components);
}

export async function nodeGroupsOn(c: SqlConn): Promise<NodeGroup[]> {
  const rows = await c.query('SELECT * FROM node_groups');
  const components = new Map<string, Row[]>();
  for (const r of await c.query('SELECT * FROM node_group_components ORDER BY node_group, position'))
    components.set(r.node_group as string, [...(components.get(r.node_group as string) ?? []), r]);
  return rows.map((r) => toNodeGroup(r, components.get(r.name as string) ?? [])).sort(byKey((g) => g.name));
}

/** Writes a group whole: its row (inserted, or updated when `existing`), then its components afresh. */
export async function writeNodeGroupOn(c: SqlConn, g: NewNodeGroup, existing: NodeGroup | undefined): Promise<void> {
  const now = new Date().toISOString();
  const fields = [
    g.description ?? '',
    g.osKit.name,
    g.osKit.version,
    g.osKit.digest,
    json(g.storageLayout),
    json(g.installerFlags ?? []),
  ];
  if (existing) {
    await c.run(
      `UPDATE node_groups SET description = $2, os_kit_name = $3, os_kit_version = $4, os_kit_digest = $5,
         storage_layout = $6, installer_flags = $7, updated_at = $8 WHERE name = $1`,
      [g.name, ...fields, now],
    );
    await c.run('DELETE FROM node_group_components WHERE node_group = $1', [g.name]);
  } else {
    await c.run(
      `INSERT INTO node_groups (name, description, os_kit_name, os_kit_version, os_kit_digest, storage_layout,
         installer_flags, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [g.name, ...fields, now, now],
    );
  }
  for (const [i, comp] of g.components.entries())
    await c.run(
      `INSERT INTO node_group_components (node_group, position, kit_name, kit_version, kit_digest, component)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [g.name, i, comp.name, comp.version, comp.digest, comp.component],
    );
}

/** Removes a group no machine belongs to; otherwise refuses, naming (up to five of) them. */
export async function removeNodeGroupOn(c: SqlConn, name: string, lock = ''): Promise<void> {
  if (!(await c.query(`SELECT name FROM node_groups WHERE name = $1${lock}`, [name])).length) throw noNodeGroup(name);
  const members = (await c.query<{ hostname: string }>('SELECT hostname FROM machines WHERE node_group = $1', [name]))
    .map((r) => r.hostname)
    .sort();
  if (members.length) {
    throw new ConflictError(
      `node group '${name}' still has ${members.length} machine(s) (${someOf(members)}): move them to another group ('cradle machine set NAME --node-group …') or remove them first`,
    );
  }
  await c.run('DELETE FROM node_groups WHERE name = $1', [name]); // its components go with it
}

export async function nodeGroupsUsingKitOn(c: SqlConn, kit: string, version: string): Promise<string[]> {
  const rows = await c.query<{ name: string }>(
    `SELECT name FROM node_groups WHERE os_kit_name = $1 AND os_kit_version = $2
     UNION SELECT node_group AS name FROM node_group_components WHERE kit_name = $1 AND kit_version = $2`,
    [kit, version],
  );
  return rows.map((r) => r.name).sort();
}
