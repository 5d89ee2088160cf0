// The DHCP server's bounded queue of received requests, and which it sheds when more arrive than
// it can answer. Answering everything late is worse than answering some on time: a reply after
// the client gave up (perfdhcp's 1 s, PXE firmware's 4 s before it retransmits) is wasted work,
// and an unbounded backlog made every reply late and the server's memory grow (issue 18: completed
// exchanges fell from 248/s to 23/s as the offered load rose). So requests wait in three lanes,
// answered in this order and shed in the reverse one:
// 1. REQUESTs: the second half of an exchange already begun; dropping one throws away the OFFER
//    sent for it;
// 2. DISCOVERs and the rarer messages (INFORM, RELEASE, DECLINE) of registered machines (the
//    inventory's, as last looked up);
// 3. the others': unknown MACs, the first to go.
// A packet with no DHCP message type (BOOTP, or junk) is never queued: Cradle answers DHCP only.
// REQUESTs from unknown MACs still take the first lane, even those answering no OFFER: telling
// them apart would need the OFFERs sent remembered here.
// A full queue drops the oldest request of the lowest lane not above the newcomer's (or the
// newcomer itself), and a request that waited longer than maxAgeMs is dropped when its turn comes.
import { MessageType } from '../../protocols/dhcp/packet.ts';

export type Lane = 0 | 1 | 2;
export const LANE = { request: 0, registered: 1, other: 2 } as const;

/**
 * The lane of a received packet of DHCP message type `type` (option 53; undefined: none), or
 * undefined for one never queued. `registered` is asked only when it matters.
 */
export function laneOf(type: number | undefined, registered: () => boolean): Lane | undefined {
  if (type === undefined) return undefined;
  if (type === MessageType.REQUEST) return LANE.request;
  return registered() ? LANE.registered : LANE.other;
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
