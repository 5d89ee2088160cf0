// `cradle imageserver`: serves a store over HTTP(S). API: docs/imageserver-api.md. Objects are sent
// as stored (zstd) whenever the client accepts zstd, so the server does no compression work; the
// batch endpoint streams many objects in one response, which is what makes a 20,000-file install
// fast. Plain node:http rather than a framework: the routes are few and the object path is the hot
// one (see bench/); a plain GET of an object in memory is answered before node:http, by the fast
// lane (util/http/fast-lane.ts). With a CA file, clients must present a certificate that CA signed.
import fs from 'node:fs';
import type http from 'node:http';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import type { Logger } from 'pino';
import { isDigest, type Digest } from '../model/digest.ts';
import { FRAME_HEADER_BYTES, frameHeader, OBJECT_STREAM_TYPE } from './object-stream.ts';
import {
  type ConnectionLimits,
  DEFAULT_LIMITS,
  guardConnections,
  HTTP_SERVER_OPTIONS,
} from '../../util/http/connections.ts';
import { addFastLane } from '../../util/http/fast-lane.ts';
import { type RequestRecord, safeListener } from '../../util/http/listener.ts';
import type { SimpleRequest } from '../../util/http/simple-head.ts';
import { sendJson, readJsonBody, HttpError, type Req, type Res } from '../../util/http/respond.ts';
import { SERVER_TLS_PROFILE } from '../../util/http/tls.ts';
import { NameError } from '../model/names.ts';
import { StoredObjectCache } from './memory-cache.ts';
import { imageServerMetrics } from './server-metrics.ts';
import { sendObject, SYNC_READ_LIMIT, WHOLE_READ_LIMIT, type WholeAnswer, wholeAnswer } from './single-object.ts';
import { type ImageStore, StoreError } from '../store/store.ts';
import { httpModule, httpsModule } from '../../util/http/node-http.ts';
import { TurnsByKey } from '../../util/turns-by-key.ts';

export { IMAGESERVER_PORT } from '../../util/ports.ts';
const MAX_BATCH = 100_000;
/** Digests looked up in the store between two turns of the event loop (sendBatch). */
const LOOKUPS_PER_TURN = 1_000;
/** 100,000 digests of 71 characters, quoted and separated (7.4 MB), and room to spare. */
const BATCH_BODY_LIMIT = 8 * 1024 * 1024;
const WRITE_CHUNK = 512 * 1024;
/** A single-object path with no query, dot segment or escape: the form every client sends. */
const PLAIN_SINGLE = /^\/v1\/(objects|manifests)\/(sha256:[0-9a-f]{64})$/;

export interface TlsFiles {
  cert: string;
  key: string;
  ca?: string;
}

export interface ImageServerOptions {
  store: ImageStore;
  tls?: TlsFiles;
  /**
   * Memory for recently served objects (default 256 MiB; 0 disables): three quarters for stored
   * frames, a quarter for decompressed content (objects up to a quarter of that; single-object.ts).
   */
  cacheMiB?: number;
  /** Structured log of failures (error) and of every request (debug). */
  logger?: Logger;
  /** Connection limits (util/http/connections.ts), over the defaults. */
  limits?: Partial<ConnectionLimits>;
  /**
   * Answer plain GETs of objects in memory before node:http (util/http/fast-lane.ts; default on).
   * Off, every request takes node:http's path: the tests compare the two.
   */
  fastLane?: boolean;
}

export function createImageServer(opts: ImageServerOptions): http.Server {
  const { store } = opts;
  const cacheBytes = (opts.cacheMiB ?? 256) * 1024 * 1024;
  const cache = new StoredObjectCache(Math.floor(cacheBytes * 0.75));
  const contentBytes = Math.floor(cacheBytes * 0.25);
  const caches = { stored: cache, content: new StoredObjectCache(contentBytes, contentBytes / 4) };
  // A client's batches are looked up one at a time (sendBatch): many sent at once by one address
  // take their turns one after another, never more than one look-up's share of the CPU at a time,
  // and other clients' requests go between them. (Machines behind one address share its turns.)
  const lookups = new TurnsByKey();
  const metrics = imageServerMetrics(caches, () => lookups.waiting);
  const { registry } = metrics;

  const counted = (kind: string, n: number): string => {
    if (n > 0) metrics.sent(1, n);
    return kind;
  };
  // Synchronous when the object is in memory (single-object.ts sendObject says why).
  const sendSingle = (kind: string, digest: string, req: Req, res: Res): string | Promise<string> => {
    const n = sendObject(store, caches, digest, req, res, kind === 'manifests');
    return typeof n === 'number' ? counted(kind, n) : n.then((sent) => counted(kind, sent));
  };
  const handle = (req: Req, res: Res): string | Promise<string> => {
    const method = req.method ?? 'GET';
    // The hot path, a plain single-object path, skips URL parsing (nothing in it to normalise).
    const plain = PLAIN_SINGLE.exec(req.url ?? '');
    if (plain && (method === 'GET' || method === 'HEAD')) return sendSingle(plain[1], plain[2], req, res);
    return handleOther(req, res, method);
  };
  const handleOther = async (req: Req, res: Res, method: string): Promise<string> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = decodeURIComponent(url.pathname);
    if (p === '/metrics' && method === 'GET') {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(await registry.metrics());
      return 'metrics';
    }
    if (p === '/healthz') {
      sendJson(res, 200, { ok: true });
      return 'healthz';
    }
    if (p === '/v1/images' && method === 'GET') {
      sendJson(res, 200, { images: store.listRecords() });
      return 'images';
    }
    if (p === '/v1/streams' && method === 'GET') {
      sendJson(res, 200, { streams: store.streams() });
      return 'streams';
    }
    if (p.startsWith('/v1/images/') && method === 'GET') {
      sendJson(res, 200, store.resolve(p.slice('/v1/images/'.length)));
      return 'image';
    }
    const single = /^\/v1\/(objects|manifests)\/([^/]+)$/.exec(p);
    if (single && (method === 'GET' || method === 'HEAD')) return sendSingle(single[1], single[2], req, res);
    if (p === '/v1/objects/batch' && method === 'POST') {
      const batch = await sendBatch(store, cache, lookups, req, res);
      metrics.sent(batch.objects, batch.bytes);
      return 'batch';
    }
    throw new HttpError(404, 'not found', `no route for ${method} ${p}; see docs/imageserver-api.md`);
  };

  const log = opts.logger;
  const recordRequest = (r: RequestRecord<string>) => {
    const route = r.result ?? 'unknown';
    metrics.request(route, r.status, r.seconds);
    if (log?.isLevelEnabled('debug'))
      log.debug(
        { method: r.method, url: r.url, status: r.status, route, seconds: r.seconds, client: r.client },
        'request',
      );
  };
  const listener = safeListener(handle, {
    maxBodyBytes: BATCH_BODY_LIMIT,
    mapError: (err, req) =>
      asHttpError(err, (e) => log?.error({ err: e, method: req.method, url: req.url }, 'request failed')),
    onDone: recordRequest,
  });
  // The fast lane's route: a plain single-object request answered whole from memory, or node:http's.
  const fromMemory = (request: SimpleRequest) => {
    const plain = PLAIN_SINGLE.exec(request.target);
    if (!plain) return undefined;
    const kind = plain[1];
    const laneAnswer = (a: WholeAnswer | undefined) =>
      a && { headers: a.headers, body: a.body, result: counted(kind, a.storedBytes) };
    const head = request.method === 'HEAD';
    // PLAIN_SINGLE matched a digest's form: `sha256:` and 64 lower-case hex digits.
    const a = wholeAnswer(store, caches, plain[2] as Digest, request.acceptEncoding, head, kind === 'manifests');
    return a instanceof Promise ? a.then(laneAnswer) : laneAnswer(a);
  };

  const server = opts.tls
    ? httpsModule.createServer(
        {
          ...HTTP_SERVER_OPTIONS,
          ...SERVER_TLS_PROFILE,
          cert: fs.readFileSync(opts.tls.cert),
          key: fs.readFileSync(opts.tls.key),
          ...(opts.tls.ca ? { ca: fs.readFileSync(opts.tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
        },
        listener,
      )
    : httpModule.createServer(HTTP_SERVER_OPTIONS, listener);
  // Every installer of a rack holds a few connections; nobody holds them idle.
  const guard = guardConnections(server, [server], { ...DEFAULT_LIMITS, ...opts.limits });
  if (opts.fastLane !== false) addFastLane(server, { route: fromMemory, guard, onDone: recordRequest });
  server.on('tlsClientError', () => {});
  return server;
}

/** Maps what a request can cause to its 4xx; anything else is a 500, and logged. */
function asHttpError(err: unknown, logUnexpected: (err: unknown) => void): unknown {
  if (err instanceof HttpError) return err;
  if (err instanceof StoreError) return new HttpError(404, 'not found', err.message);
  if (err instanceof NameError) return new HttpError(400, 'bad name', err.message);
  if (err instanceof URIError)
    return new HttpError(400, 'bad path', `the request path is not valid percent-encoding: ${err.message}`);
  logUnexpected(err);
  return err;
}

/**
 * Streams the requested objects in order. Every digest is checked to exist before the first byte,
 * so a client asking for an unknown object gets a clear 404 rather than a truncated stream. The
 * check takes its turn among the client address's other batches (`lookups`).
 */
async function sendBatch(
  store: ImageStore,
  cache: StoredObjectCache,
  lookups: TurnsByKey,
  req: Req,
  res: Res,
): Promise<{ objects: number; bytes: number }> {
  const body = await readJsonBody(req, BATCH_BODY_LIMIT);
  const digests = body !== null && typeof body === 'object' ? (body as { digests?: unknown }).digests : undefined;
  if (!Array.isArray(digests) || digests.length === 0 || digests.length > MAX_BATCH) {
    throw new HttpError(400, 'bad request', `field 'digests' must be a list of 1 to ${MAX_BATCH} digests`);
  }
  // A client gone while its batch waited, or while it is looked up, costs no more look-ups.
  const sizes = await lookups.run(req.socket.remoteAddress ?? '', () => storedSizes(store, digests, res));
  if (!sizes) return { objects: 0, bytes: 0 };
  res.writeHead(200, { 'content-type': OBJECT_STREAM_TYPE, 'x-cradle-objects': String(digests.length) });
  // Small objects are read synchronously (one syscall sequence, no pool round trips) and frames
  // are gathered into large socket writes; big objects are read on the pool.
  let pendingOut: Buffer[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  const flush = async () => {
    if (!pendingOut.length) return;
    const ok = res.write(pendingOut.length === 1 ? pendingOut[0] : Buffer.concat(pendingOut, pendingBytes));
    pendingOut = [];
    pendingBytes = 0;
    if (!ok && !res.destroyed) await drained(res);
  };
  for (let i = 0; i < digests.length; i++) {
    if (res.destroyed) return { objects: i, bytes };
    const digest = digests[i] as Digest;
    const file = store.objectPath(digest);
    if (sizes[i] > WHOLE_READ_LIMIT) {
      // A large object is streamed from disk, so a request's memory stays bounded.
      pendingOut.push(frameHeader(digest, sizes[i]));
      pendingBytes += FRAME_HEADER_BYTES;
      await flush();
      await pipelineAsync(fs.createReadStream(file), res, { end: false });
      bytes += sizes[i];
      continue;
    }
    let data = cache.get(digest);
    if (!data) {
      data = sizes[i] <= SYNC_READ_LIMIT ? fs.readFileSync(file) : await fs.promises.readFile(file);
      cache.set(digest, data);
    }
    pendingOut.push(frameHeader(digest, data.length), data);
    pendingBytes += FRAME_HEADER_BYTES + data.length;
    bytes += data.length;
    if (pendingBytes >= WRITE_CHUNK) await flush();
  }
  await flush();
  res.end();
  return { objects: digests.length, bytes };
}

/**
 * The stored size of each digest, in order; a 404 naming how many the store lacks; undefined once
 * the client has gone.
 */
async function storedSizes(store: ImageStore, digests: unknown[], res: Res): Promise<number[] | undefined> {
  const sizes: number[] = [];
  let missing = 0;
  let firstMissing = '';
  for (let i = 0; i < digests.length; i++) {
    // A turn for the other requests every so many look-ups: one batch of 100,000 digests is
    // a second of file-system calls, which must not hold every other client up.
    if (i % LOOKUPS_PER_TURN === 0) {
      if (i > 0) await new Promise((r) => setImmediate(r));
      if (res.destroyed) return undefined;
    }
    const d = digests[i];
    if (!isDigest(d))
      throw new HttpError(
        400,
        'bad digest',
        `'${String(d)}' in field 'digests' is not a digest: expected sha256:<64 hex>`,
      );
    const size = store.storedSize(d);
    if (size === undefined) {
      if (!missing++) firstMissing = d;
    } else sizes.push(size);
  }
  if (missing)
    throw new HttpError(
      404,
      'unknown object',
      `${missing} of ${digests.length} objects are not in this store, the first being ${firstMissing}`,
    );
  return sizes;
}

/** Resolves when the socket wants more data, or is gone. */
function drained(res: Res): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

// Callers of the image server listen with this.
export { listen } from '../../util/listen.ts';
