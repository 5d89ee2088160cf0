// Early writeback of object files. An add writes thousands of small files and then syncs the
// store's file system once (ImageStore.commitImage); left alone, the kernel writes none of them
// back before that syncfs, so the sync waits for every file's block allocation and write at the
// very end, on one core, with the writer threads idle (Debian's tree: 0.3-0.7 s at the end of the
// add). sync_file_range(2) with SYNC_FILE_RANGE_WRITE queues a file's writes at once and waits for
// nothing, so writeback runs alongside compression and the final syncfs finds little left to do.
// It is only a hint: durability is still that one syncfs, and where the call is missing or fails
// nothing changes.
import { dlopen } from 'node:ffi';

const SYNC_FILE_RANGE_WRITE = 2;

function openLibc() {
  return dlopen('libc.so.6', {
    sync_file_range: { arguments: ['int32', 'int64', 'int64', 'uint32'], return: 'int32' },
  }).functions;
}

let libc: ReturnType<typeof openLibc> | null | undefined;

/** Queues the writeback of everything written to `fd` so far; never throws, never waits. */
export function startWriteback(fd: number): void {
  if (libc === undefined) {
    try {
      libc = openLibc();
    } catch {
      libc = null; // no glibc (or no node:ffi): writeback happens at the final syncfs, as before
    }
  }
  libc?.sync_file_range(fd, 0n, 0n, SYNC_FILE_RANGE_WRITE);
}
