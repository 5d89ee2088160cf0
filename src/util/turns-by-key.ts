// Work that must not run twice at once for the same key, taken in the order it came. The DHCP
// server answers each client's requests this way (a retransmitted DISCOVER must not race its
// REQUEST), and the image server looks up batches one client address at a time (a client that
// sends many batches at once gets their look-ups one after another, not a share of the CPU for
// each).

/** Runs tasks one at a time per key, in the order they were given; other keys are not held up. */
export class TurnsByKey {
  /** Per key, what settles once its last task given so far has finished. */
  private readonly tails = new Map<string, Promise<void>>();
  private queued = 0;

  /** Keys with a task running or waiting: only those are held. */
  get keys(): number {
    return this.tails.size;
  }

  /** Tasks waiting for an earlier task of their key to finish. */
  get waiting(): number {
    return this.queued;
  }

  async run<T>(key: string, task: () => T | Promise<T>): Promise<T> {
    const before = this.tails.get(key);
    let finished!: () => void;
    const tail = new Promise<void>((resolve) => (finished = resolve));
    this.tails.set(key, tail);
    try {
      if (before) {
        this.queued++;
        try {
          await before; // never rejects: a tail only resolves
        } finally {
          this.queued--;
        }
      }
      return await task();
    } finally {
      finished();
      // Nothing given after this task: the key is forgotten, so the map holds only keys in use.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
