// zstd decompression of stored objects with one decompression context kept for many objects, into
// one output buffer reused by the next call. node:zlib makes a new context (a native handle and
// zstd's tables) for every call and a new output buffer, which for a tree of small files costs
// more than decompressing them; so zstd's own API is called (system/zstd-native.ts), as the store
// does for compression (store/zstd.ts). Where it cannot be bound, node:zlib's one-shot call does
// the same job, only slower. Either way the output is capped at the size the manifest
// gives: a frame that would inflate past it fails instead of filling memory.
import zlib from 'node:zlib';
import { type NativeZstd, nativeZstd } from '../../system/zstd-native.ts';

export interface ObjectDecompressor {
  /**
   * The content of one zstd frame that must be exactly `size` bytes; undefined when the frame is
   * not valid zstd or its content is not exactly `size` bytes. The result may be a view of a
   * buffer reused by the next call.
   */
  decompress(frame: Uint8Array, size: number): Buffer | undefined;
}

class ContextDecompressor implements ObjectDecompressor {
  private readonly z: NativeZstd;
  private readonly dctx: bigint;
  // One byte more than the expected size is offered, so content longer than the manifest says is
  // told apart from content of exactly that size.
  private out = Buffer.allocUnsafe(1024 * 1024 + 1);

  constructor(z: NativeZstd) {
    this.z = z;
    const dctx = z.ZSTD_createDCtx() as bigint;
    if (!dctx) throw new Error('ZSTD_createDCtx failed: out of memory');
    this.dctx = dctx;
  }

  decompress(frame: Uint8Array, size: number): Buffer | undefined {
    if (this.out.length < size + 1) this.out = Buffer.allocUnsafe(Math.max(size + 1, this.out.length * 2));
    const n = this.z.ZSTD_decompressDCtx(this.dctx, this.out, BigInt(size + 1), frame, BigInt(frame.length)) as bigint;
    if (this.z.ZSTD_isError(n) || Number(n) !== size) return undefined;
    return this.out.subarray(0, size);
  }
}

/** node:zlib, one context per call: the fallback where zstd's API cannot be bound. */
class ZlibDecompressor implements ObjectDecompressor {
  decompress(frame: Uint8Array, size: number): Buffer | undefined {
    try {
      const out = zlib.zstdDecompressSync(frame, { maxOutputLength: Math.max(size, 1) });
      return out.length === size ? out : undefined;
    } catch {
      return undefined;
    }
  }
}

/** A decompressor for this thread: zstd's own API with a kept context, node:zlib's otherwise. */
export function newObjectDecompressor(): ObjectDecompressor {
  const z = nativeZstd();
  return z ? new ContextDecompressor(z) : new ZlibDecompressor();
}
