// Content digests name objects and images: `sha256:<64 lowercase hex>`. The algorithm is part of the
// name so a future algorithm can live beside this one in the same store.
import { createHash, type Hash } from 'node:crypto';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function digestOf(data: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function newHasher(): Hash {
  return createHash('sha256');
}

export function hasherDigest(hasher: Hash): Digest {
  return `sha256:${hasher.digest('hex')}`;
}

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

/** The 32 raw bytes of a digest, as the batch object stream carries them. */
export function digestBytes(digest: Digest): Buffer {
  return Buffer.from(digestHex(digest), 'hex');
}

export function digestFromBytes(bytes: Uint8Array): Digest {
  return `sha256:${Buffer.from(bytes).toString('hex')}`;
}
