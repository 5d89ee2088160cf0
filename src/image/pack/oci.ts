// Reads container images into a TreeBuilder: an OCI image layout (a directory with `oci-layout`,
// `index.json` and `blobs/`) or a `docker save` archive (a tar with `manifest.json` and layer
// tars). Layers are applied in order with OCI whiteouts. Every blob named by a digest is hashed
// and compared before anything in it is used, so a corrupt or tampered blob cannot enter the store.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { digestHex, digestOf, hasherDigest, isDigest, newHasher, type Digest } from '../model/digest.ts';
import type { Ingest } from '../store/ingest.ts';
import type { PackWarnings } from './dir.ts';
import { applyTarEntries, compressionOf, inContext, openDecompressed, peek, readTarFile, tarEntriesOf } from './tar.ts';
import { TarError } from './tar-headers.ts';
import { TreeBuilder } from '../model/tree.ts';

/** The platform picked from multi-platform images. */
const PLATFORM = { os: 'linux', architecture: 'amd64' };
const MAX_JSON_BYTES = 4 * 1024 * 1024;
const MAX_INDEX_DEPTH = 4;
const LAYER_MEDIA_TYPE =
  /^application\/vnd\.(oci\.image\.layer(\.nondistributable)?\.v1\.tar(\+gzip|\+zstd)?|docker\.image\.rootfs\.(foreign\.)?diff\.tar(\.gzip)?)$/;

export class ImageFormatError extends Error {
  override name = 'ImageFormatError';
}

const descriptorSchema = z.object({
  mediaType: z.string().optional(),
  digest: z.string(),
  size: z.number().int().min(0),
  platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
type Descriptor = z.infer<typeof descriptorSchema>;
const indexSchema = z.object({ manifests: z.array(descriptorSchema) });
const imageManifestSchema = z.object({ layers: z.array(descriptorSchema) });
const dockerManifestSchema = z
  .array(
    z.object({ Layers: z.array(z.string()), RepoTags: z.array(z.string()).nullish(), Config: z.string().optional() }),
  )
  .min(1);

function parseWith<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new ImageFormatError(`${what}: field '${issue.path.join('.')}' is invalid: ${issue.message}`);
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ImageFormatError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

// ---- OCI image layout ---------------------------------------------------------------------------

export function isOciLayout(dir: string): boolean {
  const isFile = (name: string) => fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.isFile() ?? false;
  return isFile('oci-layout') && isFile('index.json');
}

export async function packOciLayout(dir: string, ingest: Ingest, log: PackWarnings): Promise<TreeBuilder> {
  const where = `OCI layout '${dir}'`;
  const index = parseJson(fs.readFileSync(path.join(dir, 'index.json')), `${where}: index.json`);
  const manifest = resolveImageManifest(dir, index, `${where}: index.json`, 0);
  const tree = new TreeBuilder();
  for (const [i, layer] of manifest.layers.entries()) {
    const what = `${where}: layer ${i + 1} (${layer.digest})`;
    if (!LAYER_MEDIA_TYPE.test(layer.mediaType ?? '')) {
      throw new ImageFormatError(
        `${what} has media type '${layer.mediaType}', which is not a plain, gzip or zstd tar layer (encrypted layers are not supported)`,
      );
    }
    const file = blobPath(dir, layer, what);
    await verifyBlob(file, layer.digest as Digest, layer.size, what);
    await inContext(what, applyTarEntries(tarEntriesOf(file), tree, ingest, log, { whiteouts: true }));
  }
  return tree;
}

/** Follows indexes down to one image manifest, choosing the platform when there are several. */
function resolveImageManifest(
  dir: string,
  json: unknown,
  where: string,
  depth: number,
): z.infer<typeof imageManifestSchema> {
  const { manifests } = parseWith(indexSchema, json, where);
  const chosen = chooseManifest(manifests, where);
  const what = `manifest ${chosen.digest} (from ${where})`;
  const file = blobPath(dir, chosen, what);
  const bytes = fs.readFileSync(file);
  if (bytes.length > MAX_JSON_BYTES)
    throw new ImageFormatError(`${what} is ${bytes.length} bytes, too large for a manifest`);
  if (digestOf(bytes) !== chosen.digest) throw blobMismatch(what, file, digestOf(bytes));
  const inner = parseJson(bytes, what);
  if (inner && typeof inner === 'object' && 'manifests' in inner) {
    if (depth >= MAX_INDEX_DEPTH)
      throw new ImageFormatError(`${what}: image indexes are nested more than ${MAX_INDEX_DEPTH} deep`);
    return resolveImageManifest(dir, inner, `image index ${chosen.digest}`, depth + 1);
  }
  return parseWith(imageManifestSchema, inner, what);
}

function chooseManifest(manifests: Descriptor[], where: string): Descriptor {
  // Build attestations (buildx) sit beside the images in an index; they are not images.
  const images = manifests.filter((d) => d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest');
  if (images.length === 0) throw new ImageFormatError(`${where} lists no image manifest`);
  if (images.length === 1) return images[0];
  const describe = (d: Descriptor) => {
    const ref = d.annotations?.['org.opencontainers.image.ref.name'];
    const platform = d.platform
      ? `${d.platform.os}/${d.platform.architecture}${d.platform.variant ? `/${d.platform.variant}` : ''}`
      : undefined;
    return [d.digest, ref && `ref '${ref}'`, platform].filter(Boolean).join(' ');
  };
  if (images.every((d) => !d.platform)) {
    throw new ImageFormatError(
      `${where} lists ${images.length} images without platforms: ${images.map(describe).join('; ')}; ` +
        `copy the one you want into its own layout (e.g. skopeo copy oci:DIR:REF oci:NEWDIR) and add that`,
    );
  }
  const match = images.find((d) => d.platform?.os === PLATFORM.os && d.platform.architecture === PLATFORM.architecture);
  if (!match) {
    throw new ImageFormatError(
      `${where} has no ${PLATFORM.os}/${PLATFORM.architecture} image, only: ${images.map(describe).join('; ')}`,
    );
  }
  return match;
}

function blobPath(dir: string, desc: Descriptor, what: string): string {
  // The digest becomes a path, so it must be exactly "sha256:<hex>" (no "/" or "..").
  if (!isDigest(desc.digest))
    throw new ImageFormatError(
      `${what} has digest '${desc.digest}': only sha256 digests (sha256:<64 lowercase hex>) are supported`,
    );
  const file = path.join(dir, 'blobs', 'sha256', digestHex(desc.digest));
  if (!fs.existsSync(file))
    throw new ImageFormatError(`${what}: blob ${file} is missing; the layout is incomplete, copy it again`);
  return file;
}

async function verifyBlob(
  file: string,
  digest: Digest,
  size: number | undefined,
  what: string,
  range?: { start: number; end: number },
): Promise<void> {
  const actualSize = range ? range.end - range.start : fs.statSync(file).size;
  if (size !== undefined && actualSize !== size) {
    throw new ImageFormatError(
      `${what}: blob ${file} is ${actualSize} bytes but its descriptor says ${size}; the blob is corrupt or truncated, copy the image again`,
    );
  }
  const actual = await hashFile(file, range);
  if (actual !== digest) throw blobMismatch(what, file, actual);
}

async function hashFile(file: string, range?: { start: number; end: number }): Promise<Digest> {
  const hasher = newHasher();
  if (range && range.end === range.start) return hasherDigest(hasher);
  for await (const chunk of fs.createReadStream(file, range ? { start: range.start, end: range.end - 1 } : {}))
    hasher.update(chunk as Buffer);
  return hasherDigest(hasher);
}

function blobMismatch(what: string, file: string, actual: Digest): ImageFormatError {
  return new ImageFormatError(
    `${what}: blob ${file} has digest ${actual}, not the one its descriptor names; the blob is corrupt or was tampered with, copy the image again`,
  );
}

// ---- docker save archives ------------------------------------------------------------------------

/**
 * True if `file` is a tar (maybe compressed) with a top-level manifest.json. Gives up at the first
 * member that no `docker save` archive has (deeper than `<id>/layer.tar`, outside `blobs/`), so a
 * root file-system tar is recognised as such after a few headers.
 */
export async function isDockerArchive(file: string): Promise<boolean> {
  try {
    for await (const entry of tarEntriesOf(file)) {
      const parts = entry.path.split('/').filter((p) => p !== '' && p !== '.');
      if (parts.length === 1 && parts[0] === 'manifest.json' && entry.type === 'file') return true;
      if (parts.length > 3 || (parts.length === 3 && parts[0] !== 'blobs')) return false;
    }
  } catch {
    return false; // not a readable tar: reading it as a plain tar will report what is wrong
  }
  return false;
}

export async function packDockerArchive(file: string, ingest: Ingest, log: PackWarnings): Promise<TreeBuilder> {
  const compression = compressionOf(peek(file, 0, 6), `'${file}'`);
  if (compression === 'none') return packPlainDockerArchive(file, file, ingest, log);
  // Layers are reached by offset, which a compressed stream cannot do: decompress to a temp file.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-docker-'));
  try {
    const plain = path.join(tmp, 'archive.tar');
    await inContext(
      `decompressing '${file}'`,
      pipeline(openDecompressed(file, compression), fs.createWriteStream(plain)),
    );
    return await packPlainDockerArchive(plain, file, ingest, log);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

interface Member {
  type: string;
  linkname: string;
  start: number;
  end: number;
}

async function packPlainDockerArchive(
  file: string,
  shownName: string,
  ingest: Ingest,
  log: PackWarnings,
): Promise<TreeBuilder> {
  const where = `docker archive '${shownName}'`;
  const members = await inContext(where, indexMembers(file));
  const manifestMember = resolveMember(members, 'manifest.json', where);
  const json = parseJson(readRange(file, manifestMember), `${where}: manifest.json`);
  const images = parseWith(dockerManifestSchema, json, `${where}: manifest.json`);
  const image = images[0];
  if (images.length > 1) {
    const names = images.map((im, i) => im.RepoTags?.join(', ') || `image ${i + 1}`);
    log.warn(`${where} holds ${images.length} images (${names.join('; ')}); using the first, ${names[0]}`);
  }
  const tree = new TreeBuilder();
  for (const [i, ref] of image.Layers.entries()) {
    const what = `${where}: layer ${i + 1} ('${ref}')`;
    const name = layerRef(ref, where);
    const member = resolveMember(members, name, what);
    // Newer docker saves name layers by digest (blobs/sha256/HEX): check it like an OCI blob.
    const byDigest = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
    if (byDigest) await verifyBlob(file, `sha256:${byDigest[1]}`, undefined, what, member);
    await inContext(what, applyTarEntries(tarEntriesOf(file, member), tree, ingest, log, { whiteouts: true }));
  }
  return tree;
}

/** One pass over the outer tar's headers (content is skipped by seeking), recording where members are. */
async function indexMembers(file: string): Promise<Map<string, Member>> {
  const members = new Map<string, Member>();
  for await (const entry of readTarFile(file)) {
    const name = entry.path.split('/').filter((p) => p !== '' && p !== '.');
    if (name.includes('..')) continue; // never referenced: layer references with '..' are refused
    members.set(name.join('/'), {
      type: entry.type,
      linkname: entry.linkname,
      start: entry.dataOffset,
      end: entry.dataOffset + entry.size,
    });
  }
  return members;
}

function layerRef(ref: string, where: string): string {
  const parts = ref.split('/').filter((p) => p !== '' && p !== '.');
  if (ref.startsWith('/') || parts.includes('..') || parts.length === 0) {
    throw new ImageFormatError(
      `${where}: manifest.json names layer '${ref}', which is not a plain relative path inside the archive: refusing it`,
    );
  }
  return parts.join('/');
}

/** Finds a member, following the symlinks and hard links older docker versions use to share layers. */
function resolveMember(members: Map<string, Member>, name: string, what: string): Member {
  let current = name;
  for (let hops = 0; hops < 16; hops++) {
    const member = members.get(current);
    if (!member)
      throw new ImageFormatError(
        `${what}: the archive has no member '${current}'; it is incomplete or not a 'docker save' archive`,
      );
    if (member.type === 'file') return member;
    if (member.type !== 'symlink' && member.type !== 'hardlink')
      throw new ImageFormatError(`${what}: member '${current}' is a ${member.type}, not a file`);
    const base = member.type === 'symlink' ? path.posix.dirname(current) : '.';
    const next = path.posix.normalize(path.posix.join(base, member.linkname));
    if (next.startsWith('../') || next === '..' || path.posix.isAbsolute(next)) {
      throw new ImageFormatError(`${what}: member '${current}' links outside the archive ('${member.linkname}')`);
    }
    current = next;
  }
  throw new ImageFormatError(`${what}: member '${name}' is a chain of more than 16 links`);
}

function readRange(file: string, member: Member): Buffer {
  const size = member.end - member.start;
  if (size > MAX_JSON_BYTES)
    throw new ImageFormatError(`'${file}': manifest.json is ${size} bytes, too large for a manifest`);
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size);
    if (fs.readSync(fd, buf, 0, size, member.start) !== size)
      throw new TarError(`'${file}' is truncated inside manifest.json`);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}
