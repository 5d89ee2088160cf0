// The machine lookups a boot server makes on every packet (by MAC for DHCP and iPXE, by address
// for /tftpdata), remembered in front of the SQL store: a lookup costs four statements on a miss
// (the MAC's row, the machine's, its MACs, its tags), and under a DHCP flood those statements
// queued behind the lease commits were most of a request's time.
//
// When a remembered answer is dropped:
// - a write through this process's store that may change a machine, its interfaces or a subnet:
//   SqlInventory.write calls invalidate() after every such transaction, committed or not (the one
//   place; a write that touches none of them has to say so);
// - a commit by another connection (the CLI's `cradle machine add` while the server runs, another
//   boot server): `changed()` is asked once per turn of the event loop before a lookup is
//   answered; SQLite's adapter answers it from PRAGMA data_version, which moves exactly when
//   another connection commits. PostgreSQL has no such per-connection counter without a trigger
//   and a table of its own in the schema (LISTEN/NOTIFY needs the same, and a held connection),
//   so there an answer is kept at most `ttlMs` (sql-store.ts: 1 s): another writer's change is
//   seen within a second, less than a DHCP client's first retransmission (4 s) and than the way
//   from a machine's DHCP to its iPXE script.
// A lookup that was running while the cache was dropped does not store what it found (it may have
// read the row before the commit): `generation` tells. Answers are copies; a caller may change one.
import type { Machine } from './types.ts';

export interface LookupCacheOptions {
  /** Remembered machines per key kind (MAC, address), least recently used dropped first. */
  maxEntries: number;
  /** Remembered "no such machine" answers per key kind, apart: a flood of unknown MACs cannot push registered machines out. */
  maxMisses: number;
  /** How long an answer is kept; Infinity when `changed` sees every other writer's commit. */
  ttlMs: number;
  /** Whether another connection committed since the last call (undefined: rely on ttlMs). */
  changed?: () => boolean;
}

interface Entry {
  machine: Machine | undefined;
  at: number;
}

/** One key kind's remembered answers: found machines and misses apart, each bounded, oldest use first out. */
class Answers {
  readonly found = new Map<string, Entry>();
  readonly missing = new Map<string, Entry>();
  private readonly o: LookupCacheOptions;
  constructor(o: LookupCacheOptions) {
    this.o = o;
  }

  get(key: string, now: number): Entry | undefined {
    const map = this.found.has(key) ? this.found : this.missing;
    const e = map.get(key);
    if (!e) return undefined;
    map.delete(key);
    if (now - e.at > this.o.ttlMs) return undefined;
    map.set(key, e); // most recently used last
    return e;
  }

  set(key: string, e: Entry): void {
    const map = e.machine ? this.found : this.missing;
    (e.machine ? this.missing : this.found).delete(key);
    map.delete(key);
    const max = e.machine ? this.o.maxEntries : this.o.maxMisses;
    if (map.size >= max) map.delete(map.keys().next().value as string);
    map.set(key, e);
  }

  clear(): void {
    this.found.clear();
    this.missing.clear();
  }
}

export class LookupCache {
  private readonly byMac: Answers;
  private readonly byIp: Answers;
  private readonly o: LookupCacheOptions;
  /** Moves on every invalidation: a lookup that saw it move keeps what it read to itself. */
  private generation = 0;
  /** Set once `changed` was asked during this turn of the event loop. */
  private checkedThisTurn = false;
  hits = 0;
  misses = 0;

  constructor(o: LookupCacheOptions) {
    this.o = o;
    this.byMac = new Answers(o);
    this.byIp = new Answers(o);
  }

  /** Forgets every answer: something they were read from may have changed. */
  invalidate(): void {
    this.generation++;
    this.byMac.clear();
    this.byIp.clear();
  }

  /** The machine with this (normalized) MAC: remembered, else `load`ed and remembered. */
  machineByMac(mac: string, load: () => Promise<Machine | undefined>): Promise<Machine | undefined> {
    return this.lookup(this.byMac, mac, load);
  }

  /** The machine whose own address is `ip`: remembered, else `load`ed and remembered. */
  machineByIp(ip: string, load: () => Promise<Machine | undefined>): Promise<Machine | undefined> {
    return this.lookup(this.byIp, ip, load);
  }

  /** Answers remembered (found machines and misses), for tests and the server's view of itself. */
  get size(): number {
    return this.byMac.found.size + this.byMac.missing.size + this.byIp.found.size + this.byIp.missing.size;
  }

  private checkOtherWriters(): void {
    if (!this.o.changed || this.checkedThisTurn) return;
    this.checkedThisTurn = true;
    setImmediate(() => {
      this.checkedThisTurn = false;
    });
    if (this.o.changed()) this.invalidate();
  }

  private async lookup(
    answers: Answers,
    key: string,
    load: () => Promise<Machine | undefined>,
  ): Promise<Machine | undefined> {
    this.checkOtherWriters();
    const now = performance.now();
    const e = answers.get(key, now);
    if (e) {
      this.hits++;
      return e.machine && structuredClone(e.machine);
    }
    this.misses++;
    const generation = this.generation;
    const machine = await load();
    if (generation === this.generation) answers.set(key, { machine: machine && structuredClone(machine), at: now });
    return machine;
  }
}
