// zstd's own API through node:ffi, so a thread can keep one context for many objects (node:zlib
// makes a new context, a native handle and zstd's tables, for every call). The functions bound are
// the zstd that Node itself carries for node:zlib, which the node binary exports: dlopen(null)
// finds them. The system's libzstd.so.1 is deliberately not loaded: in a process whose executable
// already exports zstd's symbols, the executable's copies interpose on the library's own internal
// calls, so code of two zstd versions runs on one context. Under QEMU's qemu64 CPU that mix took a
// BMI2 path the CPU lacks and the installer died with SIGILL; on other CPUs it only worked by luck.
import { dlopen } from 'node:ffi';

function bindZstd() {
  return dlopen(null, {
    ZSTD_versionNumber: { arguments: [], return: 'uint32' },
    ZSTD_isError: { arguments: ['uint64'], return: 'uint32' },
    ZSTD_createCCtx: { arguments: [], return: 'pointer' },
    ZSTD_compressCCtx: { arguments: ['pointer', 'buffer', 'uint64', 'buffer', 'uint64', 'int32'], return: 'uint64' },
    ZSTD_compressBound: { arguments: ['uint64'], return: 'uint64' },
    ZSTD_createDCtx: { arguments: [], return: 'pointer' },
    ZSTD_decompressDCtx: { arguments: ['pointer', 'buffer', 'uint64', 'buffer', 'uint64'], return: 'uint64' },
  }).functions;
}

export type NativeZstd = ReturnType<typeof bindZstd>;

let bound: NativeZstd | null | undefined;

/**
 * Node's own zstd functions, or undefined where this Node does not export them (a build linked
 * against a shared libzstd exports none; dlopen(null) then finds that library's, which is the
 * only zstd in the process and so just as safe). Callers fall back to node:zlib's one-shot calls.
 */
export function nativeZstd(): NativeZstd | undefined {
  if (bound === undefined) {
    try {
      bound = bindZstd();
    } catch {
      bound = null;
    }
  }
  return bound ?? undefined;
}
