import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { StoredObjectCache } from './memory-cache.ts';
import { imageServerMetrics } from './server-metrics.ts';

const lines = (text: string, prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix));

test("the request histogram reads exactly as prom-client's own Histogram of the same requests", async () => {
  const m = imageServerMetrics({ stored: new StoredObjectCache(1024), content: new StoredObjectCache(1024) });
  const reference = new Registry();
  const h = new Histogram({
    name: 'cradle_imageserver_request_seconds',
    help: 'Request duration',
    labelNames: ['route'],
    registers: [reference],
  });
  const requests: [string, number, number][] = [
    ['objects', 200, 0.0001],
    ['objects', 200, 0.005], // on a bound: counted in it (le means "at most")
    ['objects', 304, 0.3],
    ['batch', 200, 12],
    ['unknown', 404, 0.02],
    ['objects', 200, 0.0051],
  ];
  for (const [route, status, seconds] of requests) {
    m.request(route, status, seconds);
    h.observe({ route }, seconds);
  }
  const ours = await m.registry.metrics();
  const theirs = await reference.metrics();
  const sorted = (t: string) => lines(t, 'cradle_imageserver_request_seconds').sort();
  assert.deepEqual(sorted(ours), sorted(theirs));
  assert.ok(ours.includes('# TYPE cradle_imageserver_request_seconds histogram'));
  assert.deepEqual(lines(ours, 'cradle_imageserver_requests_total').sort(), [
    'cradle_imageserver_requests_total{route="batch",status="200"} 1',
    'cradle_imageserver_requests_total{route="objects",status="200"} 3',
    'cradle_imageserver_requests_total{route="objects",status="304"} 1',
    'cradle_imageserver_requests_total{route="unknown",status="404"} 1',
  ]);
  // Read twice, the totals stay totals.
  m.sent(2, 100);
  m.sent(1, 5);
  await m.registry.metrics();
  const again = await m.registry.metrics();
  assert.deepEqual(lines(again, 'cradle_imageserver_objects_sent_total '), ['cradle_imageserver_objects_sent_total 3']);
  assert.deepEqual(lines(again, 'cradle_imageserver_object_bytes_sent_total '), [
    'cradle_imageserver_object_bytes_sent_total 105',
  ]);
  assert.deepEqual(lines(again, 'cradle_imageserver_requests_total{route="objects",status="200"}'), [
    'cradle_imageserver_requests_total{route="objects",status="200"} 3',
  ]);
});

test('the batches waiting for their client are read when metrics are', async () => {
  let waiting = 3;
  const m = imageServerMetrics(
    { stored: new StoredObjectCache(1024), content: new StoredObjectCache(1024) },
    () => waiting,
  );
  assert.deepEqual(lines(await m.registry.metrics(), 'cradle_imageserver_batches_waiting'), [
    'cradle_imageserver_batches_waiting 3',
  ]);
  waiting = 0;
  assert.deepEqual(lines(await m.registry.metrics(), 'cradle_imageserver_batches_waiting'), [
    'cradle_imageserver_batches_waiting 0',
  ]);
});
