// The batch object stream (`POST /v1/objects/batch`, docs/imageserver-api.md): for each requested
// object, in request order, a 40-byte frame header (32 raw sha256 bytes, then the stored length as
// a big-endian u64) followed by the object exactly as stored, a zstd frame. The receiver verifies
// every object against its digest after decompression, so the stream needs no checksum of its own.
import { digestBytes, digestFromBytes, type Digest } from '../model/digest.ts';
import type { StoredFrame } from '../model/objects.ts';
import { ImageServerError } from './errors.ts';

export const OBJECT_STREAM_TYPE = 'application/vnd.cradle.object-stream.v1';
export const FRAME_HEADER_BYTES = 40;

export function frameHeader(digest: Digest, storedLength: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  digestBytes(digest).copy(header, 0);
  header.writeBigUInt64BE(BigInt(storedLength), 32);
  return header;
}

/** A frame of the stream: one object as stored (the object contract's StoredFrame). */
export type Frame = StoredFrame;

/**
 * The most bytes a zstd frame of `size` content bytes can take: zstd's ZSTD_compressBound plus
 * room for the frame header and checksum.
 */
export function zstdBound(size: number): number {
  return size + (size >> 8) + (size < 128 * 1024 ? (128 * 1024 - size) >> 11 : 0) + 64;
}

/** Incremental parser: push chunks as they arrive, get whole frames back. */
export class ObjectStreamParser {
  private readonly maxStored: (digest: Digest) => number;
  private readonly origin: string;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = FRAME_HEADER_BYTES;
  private digest: Digest | undefined;
  /** `maxStored` bounds each frame's stored length (see zstdBound), so no frame is buffered blindly. */
  constructor(maxStored: (digest: Digest) => number, origin: string) {
    this.maxStored = maxStored;
    this.origin = origin;
  }

  /** Bytes of the frame in progress; a retry restarts that object from scratch. */
  get partialBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    while (this.buffered >= this.need) {
      const data = this.take(this.need);
      if (this.digest === undefined) {
        this.digest = digestFromBytes(data.subarray(0, 32));
        const length = data.readBigUInt64BE(32);
        const max = this.maxStored(this.digest);
        if (length > BigInt(max)) {
          throw new ImageServerError(
            `image server ${this.origin} sent a frame of ${length} bytes for object ${this.digest}, more than its content could take (${max}): refusing it`,
          );
        }
        this.need = Number(length);
      } else {
        frames.push({ digest: this.digest, stored: data });
        this.digest = undefined;
        this.need = FRAME_HEADER_BYTES;
      }
    }
    return frames;
  }

  /**
   * The next `n` buffered bytes. Within one chunk, a view of it; across chunks, only those bytes
   * are copied, and what follows stays a view of its chunk. (Joining everything buffered on every
   * straddle copied most of the stream once more, a tenth of a small tree's download in garbage.)
   */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0); // an empty object's frame; nothing may be buffered
    const first = this.chunks[0];
    this.buffered -= n;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    for (let at = 0; at < n; ) {
      const chunk = this.chunks[0];
      const k = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, k);
      at += k;
      if (k === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(k);
    }
    return out;
  }
}

/** Reads the content size a zstd frame header declares, if it declares one. */
export function zstdContentSize(frame: Buffer): number | undefined {
  if (frame.length < 6 || frame.readUInt32LE(0) !== 0xfd2fb528) return undefined;
  const descriptor = frame[4];
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const dictIdBytes = [0, 1, 2, 4][descriptor & 3];
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag];
  if (fcsBytes === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + dictIdBytes;
  if (frame.length < at + fcsBytes) return undefined;
  switch (fcsBytes) {
    case 1:
      return frame[at];
    case 2:
      return frame.readUInt16LE(at) + 256;
    case 4:
      return frame.readUInt32LE(at);
    default:
      return Number(frame.readBigUInt64LE(at));
  }
}
