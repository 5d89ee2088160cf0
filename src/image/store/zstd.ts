// zstd compression of store objects with one compression context kept for many objects.
// node:zlib makes a new context (a stream object, a native handle, zstd's tables) for every call,
// about 30-70 µs: for a tree of small files that costs more than compressing them. So zstd's own
// API is called (system/zstd-native.ts) with one context per thread, as the zstd CLI does; where
// it cannot be bound, node:zlib's one-shot call does the same job, only slower.
// Either way the frame declares its content size (the image server reads it from the header).
import zlib from 'node:zlib';
import { type NativeZstd, nativeZstd } from '../../system/zstd-native.ts';

export const ZSTD_LEVEL = 3;

export interface ObjectCompressor {
  /** One zstd frame of `content`. The result may be a view of a buffer reused by the next call. */
  compress(content: Uint8Array): Uint8Array;
}

/** zstd with a context reused across calls (ZSTD_compressCCtx sizes its tables to each input). */
class ContextCompressor implements ObjectCompressor {
  private readonly z: NativeZstd;
  private readonly cctx: bigint;
  private readonly level: number;
  private out = Buffer.allocUnsafe(256 * 1024);

  constructor(z: NativeZstd, level: number) {
    this.z = z;
    this.level = level;
    const cctx = z.ZSTD_createCCtx() as bigint;
    if (!cctx) throw new Error('ZSTD_createCCtx failed: out of memory');
    this.cctx = cctx;
  }

  compress(content: Uint8Array): Uint8Array {
    const bound = Number(this.z.ZSTD_compressBound(BigInt(content.length)));
    if (this.out.length < bound) this.out = Buffer.allocUnsafe(Math.max(bound, this.out.length * 2));
    const n = this.z.ZSTD_compressCCtx(
      this.cctx,
      this.out,
      BigInt(this.out.length),
      content,
      BigInt(content.length),
      this.level,
    ) as bigint;
    if (this.z.ZSTD_isError(n)) throw new Error(`zstd compression failed (error code ${-n & 0xffffn})`);
    return this.out.subarray(0, Number(n));
  }
}

/** node:zlib, one context per call: the fallback where zstd's API cannot be bound. */
class ZlibCompressor implements ObjectCompressor {
  private readonly level: number;
  constructor(level: number) {
    this.level = level;
  }
  compress(content: Uint8Array): Uint8Array {
    // The pledged size lets zstd size its tables to the input and puts the size in the header.
    return zlib.zstdCompressSync(content, {
      params: { [zlib.constants.ZSTD_c_compressionLevel]: this.level },
      pledgedSrcSize: content.length,
    });
  }
}

/** A compressor for this thread: zstd's own API with a kept context, node:zlib's otherwise. */
export function newObjectCompressor(level = ZSTD_LEVEL): ObjectCompressor {
  const z = nativeZstd();
  return z ? new ContextCompressor(z, level) : new ZlibCompressor(level);
}
