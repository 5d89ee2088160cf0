// A byte-bounded cache of stored objects in the image server's memory. Objects are immutable, so a
// cached copy can never be stale; when a rack of machines installs the same image at once, each
// object is read from disk once instead of once per machine.
//
// Eviction is second chance (CLOCK), an approximation of least recently used: a hit only sets a
// flag, and the oldest entry is evicted unless it was read since it was last passed over, in
// which case it moves to the back. A strict LRU would move the entry on every hit (a delete and a
// set of its 71-character key), a measurable share of a cached small object's request.
import type { Digest } from '../model/digest.ts';

interface Entry {
  data: Buffer;
  /** Read since it was inserted or last given a second chance. */
  used: boolean;
}

export class StoredObjectCache {
  private readonly entries = new Map<Digest, Entry>();
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
    const entry = this.entries.get(digest);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    entry.used = true;
    return entry.data;
  }

  set(digest: Digest, data: Buffer): void {
    if (data.length > this.maxEntry || this.entries.has(digest)) return;
    this.entries.set(digest, { data, used: false });
    this.bytes += data.length;
    // Each pass either evicts the oldest entry or clears its flag and moves it back, so it ends
    // within two passes over the entries (the new entry, unread, is never moved back; being no
    // larger than the limit, it is never reached either).
    while (this.bytes > this.limit) {
      const [oldest, entry] = this.entries.entries().next().value as [Digest, Entry];
      this.entries.delete(oldest);
      if (entry.used) {
        entry.used = false;
        this.entries.set(oldest, entry);
      } else this.bytes -= entry.data.length;
    }
  }

  get size(): number {
    return this.bytes;
  }
}
