// `GET`/`HEAD /v1/objects/<digest>` and `/v1/manifests/<digest>` (docs/imageserver-api.md): one
// object, as stored (`Content-Encoding: zstd`) or decompressed, with ETags, immutable caching and
// one byte range. This is the path caches, proxies and peers hit once per object, so it is built
// like a static file server's (bench/imageserver-get.ts measures it against nginx):
// - stored frames up to WHOLE_READ_LIMIT are read whole once (small ones synchronously, with no
//   thread-pool round trip) and kept in the server's memory cache, which the batch endpoint
//   shares; a request then costs no system call but the socket write;
// - objects whose content fits the content cache's entry limit (a quarter of its budget: 16 MiB by
//   default) are kept decompressed there, after their content was hashed once against the digest
//   (a corrupt stored copy is refused with a 500, never served); decompression of one object is
//   shared by the requests that wait for it;
// - larger objects are decompressed as they are sent, by native zstd in 1 MiB steps, so a
//   request's memory stays bounded whatever the object's size (and they are not checked: the
//   body is under way before the end of the content; clients that verify, as Cradle's do, ask
//   for the stored frame and hash what they decompress);
// - frames over WHOLE_READ_LIMIT are streamed from disk in 1 MiB reads.
// Objects never change, so nothing cached can be stale; gc may remove an object, and a cached copy
// of a removed object is still its correct content.
import fs from 'node:fs';
import type http from 'node:http';
import { pipeline, Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { digestOf, isDigest, type Digest } from '../model/digest.ts';
import { HttpError, type Req, type Res } from '../../util/http/respond.ts';
import type { StoredObjectCache } from './memory-cache.ts';
import { zstdContentSize } from './object-stream.ts';
import { decompress, type ImageStore } from '../store/store.ts';

/** Stored frames up to this size are read synchronously: a pool round trip costs more. */
export const SYNC_READ_LIMIT = 256 * 1024;
/** Stored frames up to this size are read whole (and cached); larger ones are streamed from disk. */
export const WHOLE_READ_LIMIT = 16 * 1024 * 1024;
/** Read and decompression step for streamed objects: few calls, bounded memory. */
const STREAM_CHUNK = 1024 * 1024;

export interface ObjectCaches {
  /** Stored frames (shared with the batch endpoint). */
  stored: StoredObjectCache;
  /** Decompressed content of small objects, each checked against its digest once. */
  content: StoredObjectCache;
}

/**
 * Sends one object; returns the stored bytes it stands for (0 for HEAD, 304). An object the
 * memory caches hold is answered at once, with no promise: on a cached small object, each await
 * and promise reaction costs a measurable share of the request (bench/imageserver-get.ts).
 */
export function sendObject(
  store: ImageStore,
  caches: ObjectCaches,
  digestText: string,
  req: Req,
  res: Res,
  asManifest: boolean,
): number | Promise<number> {
  if (!isDigest(digestText))
    throw new HttpError(400, 'bad digest', `'${digestText}' is not a digest: expected sha256:<64 hex>`);
  const digest = digestText as Digest;
  const cached = caches.stored.get(digest);
  if (cached) return respond(store, caches, digest, frameOf(cached), req, res, asManifest);
  return storedFrame(store, caches.stored, digest).then((stored) =>
    respond(store, caches, digest, stored, req, res, asManifest),
  );
}

/** The part of sendObject once the stored frame is known. */
function respond(
  store: ImageStore,
  caches: ObjectCaches,
  digest: Digest,
  stored: StoredFrame,
  req: Req,
  res: Res,
  asManifest: boolean,
): number | Promise<number> {
  const zstd = wantsZstd(req.headers['accept-encoding']);
  const headers: http.OutgoingHttpHeaders = representationHeaders(digest, zstd, asManifest);
  const etag = headers.etag as string;
  const ifNoneMatch = req.headers['if-none-match'];
  if (
    ifNoneMatch &&
    (ifNoneMatch === '*' || ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag))
  ) {
    res.writeHead(304, headers);
    res.end();
    return 0;
  }
  if (zstd) headers['content-encoding'] = 'zstd';
  const total = zstd ? stored.size : stored.contentSize;
  // An object whose decompressed size is unknown (stored by streaming) cannot state a Content-Range
  // for the decompressed form: such a request gets the whole body, as HTTP allows.
  const range = total === undefined ? undefined : parseRange(req.headers.range, total);
  let status = 200;
  const start = range?.start ?? 0;
  const end = range?.end ?? (total === undefined ? undefined : total - 1);
  if (range) {
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${total}`;
  }
  if (end !== undefined) headers['content-length'] = end - start + 1;
  const head = req.method === 'HEAD';
  const send = (content: Buffer | undefined): number => {
    res.writeHead(status, headers);
    if (head) {
      res.end();
      return 0;
    }
    const last = end === undefined ? undefined : end + 1;
    if (content) res.end(range ? content.subarray(start, last) : content);
    else if (zstd && stored.data) res.end(range ? stored.data.subarray(start, last) : stored.data);
    else sendStream(store, digest, stored, zstd, range && { start, end: end! }, res);
    return stored.size;
  };
  // The content of an object the content cache can hold: from memory, or decompressed now and
  // checked against its digest before a byte of it is sent.
  const cacheable = stored.contentSize !== undefined && stored.contentSize <= caches.content.maxEntry;
  if (zstd || head || !cacheable) return send(undefined);
  const content = caches.content.get(digest);
  return content ? send(content) : decompressedContent(store, caches.content, digest, stored).then(send);
}

/**
 * The fields of every answer about an object's representation but its coding (not on a 304),
 * length and range. Each representation has its own strong ETag (RFC 9110: ranges of one must not
 * be mixed with the other): the digest for the content, the digest plus "+zstd" for the stored
 * frame.
 */
function representationHeaders(digest: Digest, zstd: boolean, asManifest: boolean): Record<string, string> {
  return {
    etag: zstd ? `"${digest}+zstd"` : `"${digest}"`,
    'cache-control': 'public, max-age=31536000, immutable',
    'content-type': asManifest ? 'application/json' : 'application/octet-stream',
    'accept-ranges': 'bytes',
    vary: 'accept-encoding',
  };
}

/** A whole 200 answer from memory, for the image server's fast lane (util/http/fast-lane.ts). */
export interface WholeAnswer {
  headers: Record<string, string>;
  body: Buffer;
  /** The stored bytes it stands for, as sendObject returns them (0 for HEAD). */
  storedBytes: number;
}

/**
 * A plain GET or HEAD of an object (no condition, no range: simple-head.ts), answered whole from
 * memory with the fields sendObject sends: now when the caches hold it, once read (and, for the
 * content, decompressed and checked against its digest) when they can. Undefined when it cannot be
 * held whole (sendObject then streams it), is no object of this store (sendObject answers 404), or
 * is a HEAD of content not in memory.
 */
export function wholeAnswer(
  store: ImageStore,
  caches: ObjectCaches,
  digest: Digest,
  acceptEncoding: string | undefined,
  head: boolean,
  asManifest: boolean,
): WholeAnswer | undefined | Promise<WholeAnswer | undefined> {
  const zstd = wantsZstd(acceptEncoding);
  const answer = (stored: StoredFrame, content: Buffer | undefined): WholeAnswer | undefined => {
    const body = zstd ? stored.data : content;
    if (!body) return undefined;
    const headers = representationHeaders(digest, zstd, asManifest);
    if (zstd) headers['content-encoding'] = 'zstd';
    return { headers, body, storedBytes: head ? 0 : stored.size };
  };
  const withFrame = (stored: StoredFrame): WholeAnswer | undefined | Promise<WholeAnswer | undefined> => {
    if (zstd || !stored.data) return answer(stored, undefined);
    if (stored.contentSize === undefined || stored.contentSize > caches.content.maxEntry) return undefined;
    const content = caches.content.get(digest);
    if (content) return answer(stored, content);
    // A HEAD needs only the length, which sendObject takes from the frame's header: it is not
    // worth decompressing and hashing an object for.
    if (head) return undefined;
    return decompressedContent(store, caches.content, digest, stored).then((c) => answer(stored, c));
  };
  const cached = caches.stored.get(digest);
  if (cached) return withFrame(frameOf(cached));
  return storedFrame(store, caches.stored, digest).then(withFrame, () => undefined);
}

/** Streams an object that is not held whole in memory: from its frame, or from disk. */
function sendStream(
  store: ImageStore,
  digest: Digest,
  stored: StoredFrame,
  zstd: boolean,
  range: { start: number; end: number } | undefined,
  res: Res,
): void {
  // A failure half way (the object removed by gc, say) can only cut the connection: pipeline
  // destroys the response, and the client sees a truncated body.
  const source = stored.data
    ? Readable.from([stored.data], { objectMode: false })
    : fs.createReadStream(store.objectPath(digest), {
        highWaterMark: STREAM_CHUNK,
        ...(zstd && range ? range : {}),
      });
  const done = () => {};
  if (zstd) pipeline(source, res, done);
  else {
    const inflate = zlib.createZstdDecompress({ chunkSize: STREAM_CHUNK });
    if (range) pipeline(source, inflate, sliceStream(range.start, range.end), res, done);
    else pipeline(source, inflate, res, done);
  }
}

/** Decompressions in flight, so that concurrent requests for one object decompress it once. */
const decompressing = new Map<Digest, Promise<Buffer>>();

/**
 * An object's content that `cache` lacks, decompressed (store.ts `decompress`: inline when small)
 * and hashed once, then kept in `cache`. A stored copy that does not hash to its digest is an error, never sent.
 */
async function decompressedContent(
  store: ImageStore,
  cache: StoredObjectCache,
  digest: Digest,
  stored: StoredFrame,
): Promise<Buffer> {
  let pending = decompressing.get(digest);
  if (!pending) {
    const frame = stored.data ?? fs.readFileSync(store.objectPath(digest));
    pending = decompress(frame).then((content) => {
      const actual = digestOf(content);
      if (actual !== digest)
        throw new Error(
          `object ${digest} is corrupt in the store: its content hashes to ${actual} (run 'cradle image verify')`,
        );
      cache.set(digest, content);
      return content;
    });
    decompressing.set(digest, pending);
    void pending.finally(() => decompressing.delete(digest)).catch(() => {});
  }
  return pending;
}

interface StoredFrame {
  size: number;
  /** Decompressed size, when the frame header states it. */
  contentSize: number | undefined;
  /** The whole frame, when it is small enough to hold. */
  data: Buffer | undefined;
}

/** Reads of large frames in flight, so that concurrent requests for one object read it once. */
const reading = new Map<string, Promise<Buffer>>();

/** The stored frame of an object the memory cache lacks, read and cached; a 404 when the store lacks it. */
async function storedFrame(store: ImageStore, cache: StoredObjectCache, digest: Digest): Promise<StoredFrame> {
  const file = store.objectPath(digest);
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    throw new HttpError(404, 'unknown object', `object ${digest} is not in this store`);
  }
  if (size > WHOLE_READ_LIMIT) {
    const head = Buffer.alloc(18);
    const fd = fs.openSync(file, 'r');
    try {
      fs.readSync(fd, head, 0, 18, 0);
    } finally {
      fs.closeSync(fd);
    }
    return { size, contentSize: zstdContentSize(head), data: undefined };
  }
  let data: Buffer;
  if (size <= SYNC_READ_LIMIT) data = fs.readFileSync(file);
  else {
    let pending = reading.get(file);
    if (!pending) {
      pending = fs.promises.readFile(file).finally(() => reading.delete(file));
      reading.set(file, pending);
    }
    data = await pending;
  }
  cache.set(digest, data);
  return frameOf(data);
}

function frameOf(data: Buffer): StoredFrame {
  return { size: data.length, contentSize: zstdContentSize(data), data };
}

/** Accept-Encoding lists zstd with a non-zero weight. */
export function wantsZstd(header: string | undefined): boolean {
  if (!header) return false;
  if (header === 'zstd') return true;
  return header.split(',').some((item) => {
    const [coding, ...params] = item.trim().split(';');
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find(Boolean);
    return coding.trim().toLowerCase() === 'zstd' && (!q || Number(q[1]) > 0);
  });
}

function parseRange(header: string | undefined, total: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (!m) throw new HttpError(416, 'bad range', `only one 'bytes=START-[END]' range is supported, got '${header}'`);
  const start = Number(m[1]);
  const end = m[2] ? Number(m[2]) : undefined;
  if ((end !== undefined && end < start) || start >= total) {
    throw new HttpError(416, 'range not satisfiable', `range ${header} is outside the ${total} bytes of the object`);
  }
  return { start, end: end === undefined ? total - 1 : Math.min(end, total - 1) };
}

function sliceStream(start: number, end: number | undefined) {
  let pos = 0;
  return new Transform({
    transform(chunk: Buffer, _e: string, done: (e: null, c?: Buffer) => void) {
      const from = Math.max(0, start - pos);
      const to = end === undefined ? chunk.length : Math.min(chunk.length, end + 1 - pos);
      pos += chunk.length;
      done(null, from < to ? chunk.subarray(from, to) : undefined);
    },
  });
}
