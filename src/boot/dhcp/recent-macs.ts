// A bounded set of the MACs seen most recently, for the DHCP receive queue's lanes
// (receive-queue.ts): a stream of random MACs must not grow memory, and reaching the bound must
// not forget every machine at once (a flood would then push registered machines' requests into
// the unknown lane all together). Two generations: when the newer is full, the older is dropped
// and the newer takes its place, so a MAC seen within the last `capacity / 2` additions is kept.

export class RecentMacs {
  private newer = new Set<string>();
  private older = new Set<string>();
  private readonly generation: number;

  constructor(capacity: number) {
    if (!(capacity >= 2)) throw new Error(`RecentMacs capacity must be at least 2, not ${capacity}`);
    this.generation = Math.floor(capacity / 2);
  }

  has(mac: string): boolean {
    return this.newer.has(mac) || this.older.has(mac);
  }

  add(mac: string): void {
    if (this.newer.has(mac)) return;
    this.older.delete(mac);
    if (this.newer.size >= this.generation) {
      this.older = this.newer;
      this.newer = new Set();
    }
    this.newer.add(mac);
  }

  delete(mac: string): void {
    this.newer.delete(mac);
    this.older.delete(mac);
  }

  get size(): number {
    return this.newer.size + this.older.size;
  }
}
