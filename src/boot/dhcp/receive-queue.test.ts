import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Inventory, Lease } from '../../inventory/types.ts';
import { leaseBatcher } from './lease-batch.ts';
import { MessageType } from '../../protocols/dhcp/packet.ts';
import { LANE, laneOf, ReceiveQueue } from './receive-queue.ts';
import { RecentMacs } from './recent-macs.ts';
import { requestHandler, type RequestHandlerDeps } from './request-handler.ts';

describe('ReceiveQueue', () => {
  it('answers REQUESTs first, then registered machines, then unknown MACs, each oldest first', () => {
    const q = new ReceiveQueue<string>(10, 1000);
    q.push('unknown-1', LANE.other, 0);
    q.push('known-1', LANE.registered, 0);
    q.push('request-1', LANE.request, 0);
    q.push('unknown-2', LANE.other, 0);
    q.push('request-2', LANE.request, 0);
    const order = [];
    for (let x = q.shift(1).item; x; x = q.shift(1).item) order.push(x);
    assert.deepEqual(order, ['request-1', 'request-2', 'known-1', 'unknown-1', 'unknown-2']);
    assert.equal(q.size, 0);
  });

  it('lanes: REQUESTs continuing an exchange first; then everything else of registered machines; BOOTP never queued', () => {
    const client = (registered: boolean, answered: boolean) => ({
      registered: () => registered,
      answered: () => answered,
    });
    const unknown = client(false, false);
    assert.equal(laneOf(MessageType.REQUEST, client(false, true)), LANE.request, 'answers our OFFER');
    assert.equal(laneOf(MessageType.REQUEST, client(true, false)), LANE.request, 'a registered machine');
    // A flood of REQUESTs from random MACs, answering no OFFER, must not take the first lane.
    assert.equal(laneOf(MessageType.REQUEST, unknown), LANE.other);
    assert.equal(laneOf(MessageType.DISCOVER, client(true, false)), LANE.registered);
    assert.equal(laneOf(MessageType.DISCOVER, client(false, true)), LANE.other);
    for (const t of [MessageType.INFORM, MessageType.RELEASE, MessageType.DECLINE]) {
      assert.equal(laneOf(t, unknown), LANE.other);
      assert.equal(laneOf(t, client(true, false)), LANE.registered);
    }
    assert.equal(laneOf(undefined, client(true, true)), undefined);
  });

  it('when full, sheds the oldest unknown DISCOVER first and never a REQUEST for a DISCOVER', () => {
    const q = new ReceiveQueue<string>(3, 1000);
    q.push('request', LANE.request, 0);
    q.push('known', LANE.registered, 0);
    q.push('unknown-old', LANE.other, 0);
    assert.equal(q.push('unknown-new', LANE.other, 0), 'unknown-old');
    assert.equal(q.push('known-2', LANE.registered, 0), 'unknown-new');
    assert.equal(q.push('unknown-3', LANE.other, 0), 'unknown-3', 'no room below it: the newcomer goes');
    assert.equal(q.push('request-2', LANE.request, 0), 'known', 'a REQUEST displaces the oldest DISCOVER');
    assert.equal(q.size, 3);
  });

  it('drops what waited longer than its age limit when its turn comes', () => {
    const q = new ReceiveQueue<string>(10, 100);
    q.push('old', LANE.request, 0);
    q.push('fresh', LANE.other, 150);
    assert.deepEqual(q.shift(160), { item: 'fresh', stale: ['old'] });
    assert.throws(() => new ReceiveQueue(0, 1), /capacity must be at least 1/);
  });
});

describe('RecentMacs', () => {
  it('keeps the MACs of the last half of its capacity, and never more than its capacity', () => {
    const m = new RecentMacs(4);
    for (const mac of ['a', 'b', 'c', 'd']) m.add(mac);
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((x) => m.has(x)),
      [true, true, true, true],
    );
    m.add('a'); // seen again: moves to the newer generation
    m.add('e');
    assert.deepEqual(
      ['a', 'b', 'c', 'd', 'e'].map((x) => m.has(x)),
      [true, false, true, true, true],
    );
    assert.ok(m.size <= 4);
    for (let i = 0; i < 1000; i++) m.add(`x${i}`);
    assert.ok(m.size <= 4);
    assert.ok(m.has('x999') && m.has('x998'), 'the newest are kept');
    m.delete('x999');
    assert.equal(m.has('x999'), false);
  });
});

describe('requestHandler.learnFromInventory', () => {
  it("learns the registered machines' MACs and the lease holders, so their requests go first after a restart", async () => {
    const inventory = {
      listMachines: async () => [{ hostname: 'n1', macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'] }],
      listLeases: async () => [
        { mac: '02:00:00:00:00:09', ip: '10.0.0.9', subnetId: 's', expiresAt: '2030-01-01T00:00:00Z' },
      ],
    } as unknown as Inventory;
    const h = requestHandler({ inventory } as unknown as RequestHandlerDeps);
    assert.equal(h.isRegistered('52:54:00:00:00:02'), false);
    await h.learnFromInventory();
    assert.equal(h.isRegistered('52:54:00:00:00:01'), true);
    assert.equal(h.isRegistered('52:54:00:00:00:02'), true, 'every interface of a machine');
    assert.equal(h.wasAnswered('02:00:00:00:00:09'), true, 'a lease holder renewing');
    assert.equal(h.isRegistered('02:00:00:00:00:09'), false);
    assert.equal(
      laneOf(MessageType.REQUEST, { registered: () => false, answered: () => h.wasAnswered('02:00:00:00:00:09') }),
      LANE.request,
    );
  });
});

describe('leaseBatcher', () => {
  const lease = (mac: string): Lease => ({ mac, ip: '10.0.0.1', subnetId: 's', expiresAt: '2030-01-01T00:00:00Z' });

  it('commits the writes asked for in one turn in one transaction, settling each only after it', async () => {
    const events: string[] = [];
    const inv = {
      allocateLease: async (mac: string) => {
        events.push(`allocate ${mac}`);
        return lease(mac);
      },
      releaseLease: async (mac: string) => void events.push(`release ${mac}`),
      transaction: async <T>(fn: (i: Inventory) => Promise<T>) => {
        events.push('begin');
        const r = await fn(inv as unknown as Inventory);
        events.push('commit');
        return r;
      },
    };
    const b = leaseBatcher(inv as unknown as Inventory);
    const settled: string[] = [];
    const all = Promise.all([
      b.allocate('a', 's', 60, new Date()).then((l) => settled.push(`a ${l?.mac} after ${events.at(-1)}`)),
      b.release('b').then(() => settled.push(`b after ${events.at(-1)}`)),
      b.allocate('c', 's', 60, new Date()).then((l) => settled.push(`c ${l?.mac} after ${events.at(-1)}`)),
    ]);
    assert.equal(b.pending, 3);
    await all;
    assert.deepEqual(events, ['begin', 'allocate a', 'release b', 'allocate c', 'commit']);
    assert.deepEqual(settled, ['a a after commit', 'b after commit', 'c c after commit']);
    await b.drain();
    assert.equal(b.pending, 0);
  });

  it('retries each write alone when the batch fails, so one refusal fails only its own caller', async () => {
    let inTx = false;
    const inv = {
      allocateLease: async (mac: string) => {
        if (mac === 'bad') throw new Error('refused');
        return lease(mac);
      },
      releaseLease: async () => {},
      transaction: async <T>(fn: (i: Inventory) => Promise<T>) => {
        inTx = true;
        try {
          return await fn(inv as unknown as Inventory);
        } finally {
          inTx = false;
        }
      },
    };
    const b = leaseBatcher(inv as unknown as Inventory);
    const [good, bad] = await Promise.allSettled([
      b.allocate('good', 's', 60, new Date()),
      b.allocate('bad', 's', 60, new Date()),
    ]);
    assert.equal(inTx, false);
    assert.deepEqual(good, { status: 'fulfilled', value: lease('good') });
    assert.equal(bad.status, 'rejected');
  });
});
