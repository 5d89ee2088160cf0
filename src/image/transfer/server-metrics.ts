// The image server's Prometheus metrics (`GET /metrics`). A cached small object's request costs a
// few microseconds, so what each request adds is plain arithmetic on numbers held here, and
// prom-client sees totals only when metrics are read: its labelled inc() and observe() (a label
// check and a hash of the labels on every call) cost more than the rest of such a request.
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ObjectCaches } from './single-object.ts';

/** prom-client's default buckets, in seconds. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface RouteStats {
  /** Requests by status. */
  byStatus: Map<number, number>;
  /** Durations: how many fell in each bucket (the last past every bound), their sum. */
  buckets: number[];
  seconds: number;
  count: number;
}

export interface ImageServerMetrics {
  registry: Registry;
  /** One request answered, by route (what the route returned), status and duration. */
  request(route: string, status: number, seconds: number): void;
  /** Objects and their stored bytes sent. */
  sent(objects: number, bytes: number): void;
}

/** `batchesWaiting`: batch requests waiting for their client's earlier batch to be looked up. */
export function imageServerMetrics(caches: ObjectCaches, batchesWaiting: () => number = () => 0): ImageServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const routes = new Map<string, RouteStats>();
  const sent = { objects: 0, bytes: 0 };
  new Counter({
    name: 'cradle_imageserver_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [route, r] of routes) for (const [status, n] of r.byStatus) this.inc({ route, status }, n);
    },
  });
  /** A counter read from a running total kept here. */
  const total = (name: string, help: string, value: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  total('cradle_imageserver_objects_sent_total', 'Objects sent', () => sent.objects);
  total('cradle_imageserver_object_bytes_sent_total', 'Object bytes sent (as stored, compressed)', () => sent.bytes);
  registry.registerMetric(routeHistogram('cradle_imageserver_request_seconds', 'Request duration', routes) as never);
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  gauge(
    'cradle_imageserver_cache_bytes',
    'Bytes of objects held in memory',
    () => caches.stored.size + caches.content.size,
  );
  gauge('cradle_imageserver_cache_hits', 'Object reads served from memory', () => caches.stored.hits);
  gauge('cradle_imageserver_cache_misses', 'Object reads that went to disk', () => caches.stored.misses);
  gauge(
    'cradle_imageserver_batches_waiting',
    "Batch requests waiting for the same client's earlier batch to be looked up",
    batchesWaiting,
  );

  return {
    registry,
    request(route, status, seconds) {
      let r = routes.get(route);
      if (!r) {
        r = { byStatus: new Map(), buckets: new Array(BUCKETS.length + 1).fill(0), seconds: 0, count: 0 };
        routes.set(route, r);
      }
      r.byStatus.set(status, (r.byStatus.get(status) ?? 0) + 1);
      let i = 0;
      while (i < BUCKETS.length && seconds > BUCKETS[i]) i++;
      r.buckets[i]++;
      r.seconds += seconds;
      r.count++;
    },
    sent(objects, bytes) {
      sent.objects += objects;
      sent.bytes += bytes;
    },
  };
}

/**
 * A histogram labelled by route, in the form prom-client's registry reads (as its own Histogram
 * writes it: cumulative `_bucket` lines with `le`, then `_sum` and `_count`).
 */
function routeHistogram(name: string, help: string, routes: Map<string, RouteStats>) {
  const values = () => {
    const out: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const [route, r] of routes) {
      let cumulative = 0;
      BUCKETS.forEach((le, i) => {
        cumulative += r.buckets[i];
        out.push({ metricName: `${name}_bucket`, labels: { le, route }, value: cumulative });
      });
      out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', route }, value: r.count });
      out.push({ metricName: `${name}_sum`, labels: { route }, value: r.seconds });
      out.push({ metricName: `${name}_count`, labels: { route }, value: r.count });
    }
    return out;
  };
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: values() }),
    reset: () => routes.clear(),
  };
}
