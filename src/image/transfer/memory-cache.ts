// A byte-bounded LRU of stored objects in the image server's memory. Objects are immutable, so a
// cached copy can never be stale; when a rack of machines installs the same image at once, each
// object is read from disk once instead of once per machine.
import type { Digest } from '../model/digest.ts';

export class StoredObjectCache {
  private readonly entries = new Map<Digest, Buffer>();
  private bytes = 0;
  private readonly limit: number;
  /** The largest object kept: bigger ones would flush everything. */
  readonly maxEntry: number;
  hits = 0;
  misses = 0;

  constructor(limitBytes: number, maxEntryBytes = limitBytes / 8) {
    this.limit = limitBytes;
    this.maxEntry = Math.min(maxEntryBytes, limitBytes);
  }

  get(digest: Digest): Buffer | undefined {
    const data = this.entries.get(digest);
    if (data === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-insert to mark it most recently used (a Map iterates in insertion order).
    this.entries.delete(digest);
    this.entries.set(digest, data);
    return data;
  }

  set(digest: Digest, data: Buffer): void {
    if (data.length > this.maxEntry || this.entries.has(digest)) return;
    this.entries.set(digest, data);
    this.bytes += data.length;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.limit) break;
      this.entries.delete(oldest);
      this.bytes -= old.length;
    }
  }

  get size(): number {
    return this.bytes;
  }
}
