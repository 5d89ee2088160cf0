// The contract between where objects come from (the image server, the local object cache, a tree
// unpacked earlier) and what consumes them (the unpacker): in a module of its own that imports
// nothing but the digest, so both sides depend on it and never on each other.
import type { Digest } from './digest.ts';

/** A wanted object: its digest and its (uncompressed) size, which the manifest gives. */
export interface WantedObject {
  digest: Digest;
  size: number;
}

/** Receives one verified object's content; may be called in any order. */
export type ObjectSink = (digest: Digest, content: Buffer) => void | Promise<void>;

/** Delivers verified object contents. */
export interface ObjectFetcher {
  fetch(objects: WantedObject[], onObject: (digest: Digest, content: Buffer) => void): Promise<void>;
}

/** Finds objects in local trees (unpack/local-cache.ts); same contract as ObjectFetcher, for what it has. */
export interface ObjectFinder {
  find(wanted: Map<Digest, { size: number; paths: string[] }>, onObject: ObjectSink): Promise<void>;
}

/** One object as the image server stores it: its digest and its stored (zstd or raw) bytes. */
export interface StoredFrame {
  digest: Digest;
  stored: Buffer;
}

/**
 * Objects as stored, not yet verified: for an unpacker that decompresses and verifies every object
 * itself on threads of its own (unpack/tree-writer.ts), so the receiving thread only hands frames on.
 */
export interface StoredObjectSource {
  fetchStored(objects: WantedObject[], onFrame: (frame: StoredFrame) => void | Promise<void>): Promise<void>;
  /** Where the objects come from, for errors. */
  origin: string;
}

/** An object's bytes do not match its digest: the source's copy is bad, so it is not retried. */
export class CorruptObjectError extends Error {
  override name = 'CorruptObjectError';
}
