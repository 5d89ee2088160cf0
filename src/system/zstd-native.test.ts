import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { nativeZstd } from './zstd-native.ts';

test("binds the zstd Node itself carries, not a second library's (two versions on one context crashed the installer)", () => {
  const z = nativeZstd();
  assert.ok(z, 'this Node exports zstd');
  const v = z.ZSTD_versionNumber();
  assert.equal(`${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`, process.versions.zstd);
});

test("compresses and decompresses with kept contexts, node:zlib's frames included", () => {
  const z = nativeZstd()!;
  const content = Buffer.from('cradle '.repeat(10_000));
  const out = Buffer.alloc(content.length + 1);
  const zframe = zlib.zstdCompressSync(content);
  const dctx = z.ZSTD_createDCtx();
  const n = z.ZSTD_decompressDCtx(dctx, out, BigInt(out.length), zframe, BigInt(zframe.length));
  assert.equal(Number(n), content.length);
  assert.deepEqual(out.subarray(0, content.length), content);
  const frame = Buffer.alloc(Number(z.ZSTD_compressBound(BigInt(content.length))));
  const m = z.ZSTD_compressCCtx(z.ZSTD_createCCtx(), frame, BigInt(frame.length), content, BigInt(content.length), 3);
  assert.equal(z.ZSTD_isError(m), 0);
  assert.deepEqual(zlib.zstdDecompressSync(frame.subarray(0, Number(m))), content);
});
