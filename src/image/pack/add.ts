// `cradle image add NAME SOURCE`: reads a source (directory, tar / tar.gz / tar.zst, OCI image
// layout, `docker save` archive) into the store and records it under NAME. The record is written
// last, so an add killed at any point leaves no image, only objects that gc may collect.
import fs from 'node:fs';
import { Ingest, type IngestStats } from '../store/ingest.ts';
import { neededObjects, validateTree } from '../model/manifest.ts';
import { checkFullImageName } from '../model/names.ts';
import { packDirectory, type PackWarnings } from './dir.ts';
import { isDockerArchive, isOciLayout, packDockerArchive, packOciLayout } from './oci.ts';
import { packTarFile } from './tar.ts';
import { newRecord, StoreError, type ImageRecord, type ImageStore } from '../store/store.ts';
import type { TreeBuilder } from '../model/tree.ts';

export type SourceKind = 'directory' | 'oci-layout' | 'docker-archive' | 'tar';

export async function detectSourceKind(source: string): Promise<SourceKind> {
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch {
    throw new StoreError(
      `image source '${source}' does not exist: give a directory, a tar/tar.gz/tar.zst archive, an OCI image layout or a 'docker save' archive`,
    );
  }
  if (st.isDirectory()) return isOciLayout(source) ? 'oci-layout' : 'directory';
  if (!st.isFile()) throw new StoreError(`image source '${source}' is neither a directory nor a file`);
  return (await isDockerArchive(source)) ? 'docker-archive' : 'tar';
}

export interface AddResult {
  record: ImageRecord;
  kind: SourceKind;
  ingest: IngestStats;
}

export async function addImage(store: ImageStore, name: string, source: string, log: PackWarnings): Promise<AddResult> {
  checkFullImageName(name);
  if (store.getRecord(name)) {
    throw new StoreError(
      `image '${name}' already exists: images are immutable, so add it under a new leaf name (or 'cradle image rm' it first)`,
    );
  }
  store.init();
  const kind = await detectSourceKind(source);
  const ingest = new Ingest(store);
  let tree: TreeBuilder;
  let stats: IngestStats;
  try {
    switch (kind) {
      case 'directory':
        tree = await packDirectory(source, ingest, log);
        break;
      case 'oci-layout':
        tree = await packOciLayout(source, ingest, log);
        break;
      case 'docker-archive':
        tree = await packDockerArchive(source, ingest, log);
        break;
      case 'tar':
        tree = await packTarFile(source, ingest, log);
        break;
    }
    stats = await ingest.finish();
  } finally {
    await ingest.close(); // the writer threads, when reading the source failed part way
  }
  const manifest = tree.toManifest();
  validateTree(manifest, `image built from '${source}'`);
  const digest = await store.putManifest(manifest);
  const record = newRecord(name, digest, manifest, `${kind}:${fs.realpathSync(source)}`);
  store.commitImage(record, [digest, ...neededObjects(manifest).keys()]);
  return { record, kind, ingest: stats };
}
