// Group commit of the DHCP server's lease writes. Every allocation (a DISCOVER's offer hold, a
// REQUEST's lease) is a database transaction, and a durable commit waits for the disk (SQLite's
// WAL is synced on every COMMIT): one commit per packet caps the server at the disk's sync rate
// and blocks the event loop while it syncs. Here the writes asked for during one turn of the event
// loop (and while the previous batch commits) run in one transaction of the inventory: one sync
// for the lot. Each caller's promise settles only after that commit, so no OFFER or ACK leaves
// before its lease is on disk, and a crash cannot hand one address to two machines.
//
// If the batch's transaction fails (one write refused, a lost connection), every write in it is
// retried alone, so one bad request never takes the others' answers with it.
import type { Inventory, Lease } from '../../inventory/types.ts';

export interface LeaseWrites {
  allocate(mac: string, subnetId: string, seconds: number, now: Date, hostname?: string): Promise<Lease | undefined>;
  release(mac: string): Promise<void>;
  /** Writes queued or committing (for the server's load view and its close). */
  readonly pending: number;
  /** Resolves once everything queued so far has committed or failed. */
  drain(): Promise<void>;
}

type Write = (inv: Inventory) => Promise<unknown>;
interface Job {
  write: Write;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

/** Writes at most this many in one transaction: a long transaction holds the database's write lock. */
const MAX_BATCH = 256;

interface Transactional {
  transaction<T>(fn: (inv: Inventory) => Promise<T>): Promise<T>;
}
const transactional = (inv: Inventory): inv is Inventory & Transactional =>
  typeof (inv as Partial<Transactional>).transaction === 'function';

export function leaseBatcher(inv: Inventory): LeaseWrites {
  const queue: Job[] = [];
  let committing = 0;
  let scheduled = false;
  const idle: (() => void)[] = [];

  const schedule = () => {
    if (scheduled || committing) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void flush();
    });
  };

  async function flush(): Promise<void> {
    const jobs = queue.splice(0, MAX_BATCH);
    if (!jobs.length) return;
    committing = jobs.length;
    try {
      if (!transactional(inv) || jobs.length === 1) await alone(jobs);
      else {
        let results: unknown[] | undefined;
        try {
          results = await inv.transaction(async (tx) => {
            const out: unknown[] = [];
            for (const j of jobs) out.push(await j.write(tx));
            return out;
          });
        } catch {
          await alone(jobs);
        }
        if (results) for (const [i, j] of jobs.entries()) j.resolve(results[i]);
      }
    } finally {
      committing = 0;
      if (queue.length) schedule();
      else for (const f of idle.splice(0)) f();
    }
  }

  async function alone(jobs: Job[]): Promise<void> {
    for (const j of jobs) await j.write(inv).then(j.resolve, j.reject);
  }

  const enqueue = <T>(write: (inv: Inventory) => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
      schedule();
    });

  return {
    allocate: (mac, subnetId, seconds, now, hostname) =>
      enqueue((i) => i.allocateLease(mac, subnetId, seconds, now, hostname)),
    release: (mac) => enqueue((i) => i.releaseLease(mac)),
    get pending() {
      return queue.length + committing;
    },
    drain: () => (queue.length || committing || scheduled ? new Promise<void>((r) => idle.push(r)) : Promise.resolve()),
  };
}
