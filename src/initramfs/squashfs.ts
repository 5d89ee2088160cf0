// The installer image's second stage as a file: its planned files written to a scratch tree, made
// into a squashfs by squashfs-tools' mksquashfs, and wrapped as the one file of a cpio archive in
// a zstd frame (stage2.img), so a boot loader can load it as an initrd.
//
// The frame is zstd level 1 over data squashfs has compressed already: stored blocks, a copy for
// the kernel. It is there because Linux finds a compressed archive at any offset after the one
// before it, but a plain cpio archive only at a multiple of 4 bytes, and iPXE's UEFI loader hands
// the kernel its initrds end to end, unpadded (measured: the second stage was lost on UEFI).
//
// zstd in 1 MiB blocks: measured under QEMU's emulation, Node's start through a squashfs
// compressed with xz (and its x86 filter: 3 MB smaller) took 5-9 s longer than with zstd, since
// each page Node touches is decompressed when first read.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { run } from '../system/run.ts';
import { type CpioEntry, cpioNewc } from './cpio.ts';
import { SECOND_STAGE_FILE } from './installer-files.ts';
import { hostProgram } from './resolve.ts';

/** mksquashfs's options: deterministic (one time for everything, root's files, no xattrs). */
export function mksquashfsArgs(tree: string, out: string, mtime: number): string[] {
  return [
    tree,
    out,
    '-noappend',
    '-comp',
    'zstd',
    '-Xcompression-level',
    '19',
    '-b',
    '1M',
    '-all-root',
    '-no-xattrs',
    '-mkfs-time',
    String(mtime),
    '-all-time',
    String(mtime),
    '-processors',
    String(os.availableParallelism()),
    '-quiet',
    '-no-progress',
  ];
}

/**
 * Writes `entries` (paths under `mountPoint`) as a squashfs, then as stage2.img at `out`.
 * Returns the squashfs's SHA-256 (hex), which the first stage carries, and stage2.img's size.
 */
export async function writeSecondStage(
  entries: CpioEntry[],
  mountPoint: string,
  out: string,
  opts: { work: string; mtime: number },
): Promise<{ sha256: string; bytes: number }> {
  const mksquashfs = hostProgram('mksquashfs', 'squashfs-tools');
  const tree = path.join(opts.work, 'second-stage');
  fs.rmSync(tree, { recursive: true, force: true });
  fs.mkdirSync(tree, { recursive: true });
  for (const e of entries) {
    const rel = path.posix.relative(mountPoint, e.path);
    if (!rel || rel.startsWith('..')) throw new Error(`second stage: ${e.path} is not under ${mountPoint}`);
    const to = path.join(tree, rel);
    if (e.type === 'dir') fs.mkdirSync(to, { recursive: true, mode: e.mode ?? 0o755 });
    else if (e.type === 'file') {
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.writeFileSync(to, e.data, { mode: e.mode ?? 0o644 });
    } else if (e.type === 'symlink') fs.symlinkSync(e.target, to);
    else throw new Error(`second stage: ${e.path}: a device node has no place in it`);
  }
  const squashfs = path.join(opts.work, 'stage2.squashfs');
  await run(mksquashfs, mksquashfsArgs(tree, squashfs, opts.mtime));
  const data = fs.readFileSync(squashfs);
  const cpio = Buffer.concat(cpioNewc([{ type: 'file', path: SECOND_STAGE_FILE, data, mode: 0o444 }], opts.mtime));
  const framed = zlib.zstdCompressSync(cpio, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } });
  fs.writeFileSync(out, framed);
  return { sha256: createHash('sha256').update(data).digest('hex'), bytes: framed.length };
}
