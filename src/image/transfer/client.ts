// Client of the image server API (docs/imageserver-api.md). Everything it returns is verified:
// manifests against the digest that named them, objects against theirs, before a caller sees a
// byte; the one exception, fetchStored, hands on frames as stored to a caller that verifies each
// itself before using it (the unpacker's writer threads). Batch downloads survive a dropped or truncated connection: objects already received are
// kept and only the rest is asked for again, with backoff. A corrupt object is not retried: the
// server's copy is bad, and the error names it.
import type http from 'node:http';
import zlib from 'node:zlib';
import { digestOf, type Digest } from '../model/digest.ts';
import type { Manifest } from '../model/manifest.ts';
import { type Frame, ObjectStreamParser, OBJECT_STREAM_TYPE, zstdBound } from './object-stream.ts';
import { IMAGESERVER_PORT } from '../../util/ports.ts';
import type { ImageRecord } from '../store/store.ts';
import type { ObjectFetcher, ObjectSink, StoredObjectSource, WantedObject } from '../model/objects.ts';
import { BatchDecoder } from './batch-decoder.ts';
import { CorruptObjectError } from '../model/objects.ts';
import { ImageServerError } from './errors.ts';
import { readTlsFiles } from '../../util/request.ts';
import { httpModule, httpModuleFor, httpsModule } from '../../util/http/node-http.ts';

export { CorruptObjectError, ImageServerError };

const BATCH_SIZE = 4096;
/** A manifest of a million entries is about 200 MB; anything larger is not a manifest. */
const MAX_MANIFEST_BYTES = 512 * 1024 * 1024;

export interface ClientTls {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface ClientOptions {
  tls?: ClientTls;
  retries?: number;
  /** First retry delay; doubles each time. */
  backoffMs?: number;
  /** A request with no data for this long fails (default 60 s). */
  timeoutMs?: number;
  log?: (line: string) => void;
}

/**
 * Accepts `host`, `host:port` (as Dominator's `imageserver` file holds) or a full URL; a bare host
 * gets `defaultPort` (the installer's -imageServerPortNum).
 */
export function imageServerUrl(address: string, defaultPort = IMAGESERVER_PORT): URL {
  const text = address.trim();
  if (/^https?:\/\//.test(text)) return new URL(text);
  const url = new URL(`http://${text}`);
  if (!url.port) url.port = String(defaultPort);
  return url;
}

/** What a batch's frames are handed to: each frame as it arrives, then `end` once the batch stops. */
interface FrameConsumer {
  push(frame: Frame): void | Promise<void>;
  end(): void | Promise<void>;
}

export interface FetchStats {
  objects: number;
  wireBytes: number;
  retries: number;
}

/**
 * The image server's client, and the unpacker's object source as it is: `fetch` gives verified
 * objects; `fetchStored` frames as stored, for an unpacker whose writer threads verify them.
 */
export class ImageServerClient implements ObjectFetcher, StoredObjectSource {
  readonly base: URL;
  readonly stats: FetchStats = { objects: 0, wireBytes: 0, retries: 0 };
  private readonly agent: http.Agent;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;
  readonly log: (line: string) => void;

  constructor(address: string, opts: ClientOptions = {}) {
    this.base = imageServerUrl(address);
    this.retries = opts.retries ?? 5;
    this.backoffMs = opts.backoffMs ?? 200;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.log = opts.log ?? (() => {});
    const tls = opts.tls ?? {};
    this.agent =
      this.base.protocol === 'https:'
        ? new httpsModule.Agent({ keepAlive: true, ...readTlsFiles(tls) })
        : new httpModule.Agent({ keepAlive: true });
  }

  close(): void {
    this.agent.destroy();
  }

  private request(
    path: string,
    init: { method?: string; body?: unknown; headers?: http.OutgoingHttpHeaders } = {},
    retried = false,
  ): Promise<http.IncomingMessage> {
    const url = new URL(path, this.base);
    const mod = httpModuleFor(url);
    const body = init.body === undefined ? undefined : Buffer.from(JSON.stringify(init.body));
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method: init.method ?? 'GET',
          agent: this.agent,
          headers: {
            ...(body ? { 'content-type': 'application/json', 'content-length': body.length } : {}),
            ...init.headers,
          },
        },
        resolve,
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed just as we reused it: the request never
        // reached the server, so sending it again on a fresh connection is safe (Node's advice).
        if (req.reusedSocket && !retried && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          resolve(this.request(path, init, true));
          return;
        }
        reject(new ImageServerError(`image server ${this.base.origin} unreachable: ${err.message}`));
      });
      // A server or switch that dies without a reset must not hang an unattended install: no byte
      // for `timeoutMs` (response body included) fails the request, and batches are then retried.
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no data for ${this.timeoutMs / 1000} s`)));
      req.end(body);
    });
  }

  private async json<T>(path: string): Promise<T> {
    const res = await this.request(path);
    const text = await readAll(res);
    if (res.statusCode !== 200) throw apiError(res, text, this.base);
    return JSON.parse(text.toString('utf8')) as T;
  }

  listImages(): Promise<ImageRecord[]> {
    return this.json<{ images: ImageRecord[] }>('/v1/images').then((r) => r.images);
  }

  /** An exact image, or the latest of a stream. */
  getImage(name: string): Promise<ImageRecord> {
    return this.json<ImageRecord>(`/v1/images/${name.split('/').map(encodeURIComponent).join('/')}`);
  }

  async getManifest(digest: Digest): Promise<Manifest> {
    const res = await this.request(`/v1/manifests/${digest}`, { headers: { 'accept-encoding': 'zstd' } });
    const raw = await readAll(res);
    if (res.statusCode !== 200) throw apiError(res, raw, this.base);
    this.stats.wireBytes += raw.length;
    // In one call on this thread, 1 MiB at a time: the manifest is on the critical path and small
    // enough (a few MB) that handing it to libuv's pool in 16 KiB chunks only adds latency.
    const bytes =
      res.headers['content-encoding'] === 'zstd'
        ? zlib.zstdDecompressSync(raw, { maxOutputLength: MAX_MANIFEST_BYTES, chunkSize: 1024 * 1024 })
        : raw;
    if (bytes.length > MAX_MANIFEST_BYTES)
      throw new ImageServerError(
        `manifest ${digest} from ${this.base.origin} is over ${MAX_MANIFEST_BYTES} bytes: refusing it`,
      );
    const actual = digestOf(bytes);
    if (actual !== digest)
      throw new CorruptObjectError(
        `manifest ${digest} from ${this.base.origin} is corrupt: its content hashes to ${actual}`,
      );
    // Loaded here, not at the top: most of the client's users never parse a manifest.
    const { parseManifest } = await import('../model/manifest.ts');
    return parseManifest(bytes, `manifest ${digest}`);
  }

  /** Where the objects come from, for errors. */
  get origin(): string {
    return this.base.origin;
  }

  /** The unpacker's name for fetchObjects (ObjectFetcher). */
  fetch(objects: WantedObject[], onObject: ObjectSink): Promise<void> {
    return this.fetchObjects(objects, onObject);
  }

  /** Downloads objects in batches, verified, retrying what a broken connection left out. */
  fetchObjects(objects: WantedObject[], onObject: ObjectSink): Promise<void> {
    return this.fetchInBatches(objects, (sizes) => {
      const decoder = new BatchDecoder(sizes, this.base.origin, (d, c) => {
        this.stats.objects++;
        return onObject(d, c);
      });
      return { push: (frame) => decoder.push(frame), end: () => decoder.flush() };
    });
  }

  /**
   * Downloads objects in batches exactly as stored (zstd frames), NOT verified: for a consumer
   * that decompresses and verifies each one against its digest before using a byte of it (the
   * unpacker's writer threads, unpack/tree-writer.ts). Each frame's length is bounded by what its
   * object could compress to. Retries as fetchObjects does; an object counts as received once its
   * frame is handed on, so an error of the consumer (a corrupt object, a full disk) must surface
   * from `onFrame` or after, and is never retried.
   */
  fetchStored(objects: WantedObject[], onFrame: (frame: Frame) => void | Promise<void>): Promise<void> {
    return this.fetchInBatches(objects, () => ({
      push: (frame) => {
        this.stats.objects++;
        return onFrame(frame);
      },
      end: () => {},
    }));
  }

  private async fetchInBatches(objects: WantedObject[], consumer: (sizes: Map<Digest, number>) => FrameConsumer) {
    const sizes = new Map(objects.map((o) => [o.digest, o.size]));
    for (let i = 0; i < objects.length; i += BATCH_SIZE) {
      let remaining = objects.slice(i, i + BATCH_SIZE).map((o) => o.digest);
      for (let attempt = 0; ; attempt++) {
        const received = new Set<Digest>();
        // An error of the consumer (a full disk, say) is not the network's: never retry it.
        let consumerError: unknown;
        const inner = consumer(sizes);
        const guarded = async <T>(work: () => T | Promise<T>): Promise<T> => {
          try {
            return await work();
          } catch (err) {
            consumerError = err;
            throw err;
          }
        };
        try {
          await this.fetchBatch(remaining, sizes, {
            push: (frame) =>
              guarded(() => {
                received.add(frame.digest);
                return inner.push(frame);
              }),
            end: () => guarded(() => inner.end()),
          });
          break;
        } catch (err) {
          if (consumerError) throw consumerError;
          remaining = remaining.filter((d) => !received.has(d));
          const status = err instanceof ImageServerError ? (err.status ?? 0) : 0;
          if (err instanceof CorruptObjectError || (status >= 400 && status < 500)) throw err;
          if (remaining.length === 0) break; // everything arrived whole before the failure
          // A link that keeps dropping but keeps making progress is not given up on: the retry
          // budget counts attempts in a row that brought nothing.
          if (received.size > 0) attempt = 0;
          if (attempt >= this.retries) {
            throw new ImageServerError(
              `download from ${this.base.origin} failed after ${attempt + 1} attempts, ${remaining.length} objects missing: ${(err as Error).message}`,
            );
          }
          this.stats.retries++;
          const delay = this.backoffMs * 2 ** attempt;
          this.log(
            `download interrupted (${(err as Error).message}); resuming ${remaining.length} objects in ${delay} ms`,
          );
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    }
  }

  private async fetchBatch(digests: Digest[], sizes: Map<Digest, number>, consumer: FrameConsumer): Promise<void> {
    const res = await this.request('/v1/objects/batch', { method: 'POST', body: { digests } });
    if (res.statusCode !== 200) throw apiError(res, await readAll(res), this.base);
    if (res.headers['content-type'] !== OBJECT_STREAM_TYPE)
      throw new ImageServerError(`image server sent '${res.headers['content-type']}', not an object stream`);
    // No frame may be larger than its object could compress to, so a faulty server cannot make
    // this process buffer gigabytes before a hash check could catch it.
    const parser = new ObjectStreamParser((d) => zstdBound(sizes.get(d) ?? 0), this.base.origin);
    const expected = new Set(digests);
    let count = 0;
    try {
      for await (const chunk of res) {
        this.stats.wireBytes += (chunk as Buffer).length;
        for (const frame of parser.push(chunk as Buffer)) {
          if (!expected.delete(frame.digest))
            throw new ImageServerError(
              `image server sent object ${frame.digest}, which was not asked for or was sent twice`,
            );
          count++;
          await consumer.push(frame);
        }
      }
    } finally {
      // Whatever arrived whole is still good: deliver it, so a retry asks only for the rest.
      await consumer.end();
    }
    if (count !== digests.length || parser.partialBytes) {
      throw new ImageServerError(`object stream ended early: ${count} of ${digests.length} objects received`);
    }
  }
}

function readAll(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('connection aborted')));
  });
}

function apiError(res: http.IncomingMessage, body: Buffer, base: URL): ImageServerError {
  let detail = body.toString('utf8').slice(0, 500);
  try {
    const parsed = JSON.parse(detail) as { error?: string; detail?: string };
    detail = parsed.detail ?? parsed.error ?? detail;
  } catch {
    // not JSON: keep the text
  }
  const err = new ImageServerError(`image server ${base.origin} answered ${res.statusCode}: ${detail}`);
  err.status = res.statusCode;
  return err;
}
