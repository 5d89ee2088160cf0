// The DHCP server's bounded queue of received requests, and which it sheds when more arrive than
// it can answer. Answering everything late is worse than answering some on time: a reply after
// the client gave up (perfdhcp's 1 s, PXE firmware's 4 s before it retransmits) is wasted work,
// and an unbounded backlog made every reply late and the server's memory grow (issue 18: completed
// exchanges fell from 248/s to 23/s as the offered load rose). So requests wait in three lanes,
// answered in this order and shed in the reverse one:
// 1. REQUESTs that continue an exchange: from a MAC recently sent an OFFER or ACK (dropping the
//    REQUEST throws away the OFFER sent for it), or from a registered machine (renewing, or
//    rebooting with its address);
// 2. DISCOVERs and the rarer messages (INFORM, RELEASE, DECLINE) of registered machines (the
//    inventory's, as last looked up);
// 3. the others': unknown MACs, the first to go. A REQUEST from a MAC neither answered nor
//    registered waits here too, so a flood of them from random MACs cannot take the first lane.
//    A pool client renewing after the server restarted is one of them until its first answer.
// A packet with no DHCP message type (BOOTP, or junk) is never queued: Cradle answers DHCP only.
// A full queue drops the oldest request of the lowest lane not above the newcomer's (or the
// newcomer itself), and a request that waited longer than maxAgeMs is dropped when its turn comes.
import { MessageType } from '../../protocols/dhcp/packet.ts';

export type Lane = 0 | 1 | 2;
export const LANE = { request: 0, registered: 1, other: 2 } as const;

/** What the server remembers of a client, asked only when it matters to the lane. */
export interface ClientMemory {
  /** Registered in the inventory when last looked up. */
  registered(): boolean;
  /** Sent an OFFER or ACK recently. */
  answered(): boolean;
}

/**
 * The lane of a received packet of DHCP message type `type` (option 53; undefined: none), or
 * undefined for one never queued.
 */
export function laneOf(type: number | undefined, client: ClientMemory): Lane | undefined {
  if (type === undefined) return undefined;
  if (type === MessageType.REQUEST) return client.answered() || client.registered() ? LANE.request : LANE.other;
  return client.registered() ? LANE.registered : LANE.other;
}

interface Entry<T> {
  item: T;
  at: number;
}

export class ReceiveQueue<T> {
  private readonly lanes: Entry<T>[][] = [[], [], []];
  private count = 0;
  readonly capacity: number;
  readonly maxAgeMs: number;

  constructor(capacity: number, maxAgeMs: number) {
    if (!(capacity >= 1)) throw new Error(`receive queue capacity must be at least 1, not ${capacity}`);
    this.capacity = capacity;
    this.maxAgeMs = maxAgeMs;
  }

  get size(): number {
    return this.count;
  }

  /** Queues `item`; returns what was shed to make room (possibly `item` itself), if anything. */
  push(item: T, lane: Lane, now: number): T | undefined {
    let shed: T | undefined;
    if (this.count >= this.capacity) {
      let victim = -1;
      for (let l = 2; l >= lane; l--)
        if (this.lanes[l].length) {
          victim = l;
          break;
        }
      if (victim < 0) return item;
      shed = this.lanes[victim].shift()!.item;
      this.count--;
    }
    this.lanes[lane].push({ item, at: now });
    this.count++;
    return shed;
  }

  /** The next request to answer, and those dropped on the way for having waited too long. */
  shift(now: number): { item?: T; stale: T[] } {
    const stale: T[] = [];
    for (const lane of this.lanes) {
      while (lane.length) {
        const e = lane.shift()!;
        this.count--;
        if (now - e.at > this.maxAgeMs) stale.push(e.item);
        else return { item: e.item, stale };
      }
    }
    return { stale };
  }

  /** Empties the queue, returning what it held. */
  clear(): T[] {
    const all = this.lanes.flatMap((l) => l.splice(0).map((e) => e.item));
    this.count = 0;
    return all;
  }
}
