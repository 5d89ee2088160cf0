// The thread side of ObjectWriterPool (object-writer.ts): stores the contents it is sent, a batch
// at a time, and answers each batch with one message. A file job is read here, hashed (SHA-256 of
// the bytes read), looked up in the store, and only when absent compressed and published; a
// content job arrives with the digest its sender computed from the same bytes. Everything runs
// synchronously: one read buffer, one zstd context and one output buffer serve every object.
// Looking up is skipped where it cannot find anything: under a fan-out directory that was empty
// when the add began (WriterSetup.occupied), an object is either one this thread wrote (it keeps
// their names) or one written since by another thread or add, with the same bytes under the same
// name, which publishing again replaces harmlessly.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { objectFile, publishObject, touchObject } from './object-files.ts';
import { newObjectCompressor } from './zstd.ts';

export type WriterJob =
  | { id: number; file: string; size: number }
  | { id: number; content: Uint8Array; digest: `sha256:${string}` };

export type WriterResult =
  | { id: number; digest: `sha256:${string}`; storedBytes: number; added: boolean }
  | { id: number; error: { message: string; code?: string } };

export interface WriterSetup {
  /** The store's root directory. */
  root: string;
  level: number;
  /** Fan-out directories (objects/sha256/<2 hex>) that held objects when the add began. */
  occupied: string[];
}

const setup = workerData as WriterSetup;
const objectsDir = path.join(setup.root, 'objects', 'sha256');
const tmpDir = path.join(setup.root, 'tmp');
const compressor = newObjectCompressor(setup.level);
const occupied = new Set(setup.occupied);
/** Objects this thread published, by hex digest, with their stored sizes. */
const published = new Map<string, number>();
let readBuf = Buffer.allocUnsafe(1024 * 1024);

/** Reads a whole file whose lstat said `size` bytes; a file that grew or shrank is refused. */
function readFile(file: string, size: number): Buffer {
  // One byte more than expected is asked for, so a file that grew is noticed; a regular file's
  // read returns less than asked only at its end, so most files take a single read.
  const want = size + 1;
  if (readBuf.length < want) readBuf = Buffer.allocUnsafe(Math.max(want, readBuf.length * 2));
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  let got = 0;
  try {
    while (got < want) {
      const n = fs.readSync(fd, readBuf, got, want - got, null);
      got += n;
      if (n === 0 || got === size) break;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (got !== size) throw new Error(`'${file}' changed size while being read`);
  return readBuf.subarray(0, size);
}

function store(content: Uint8Array, hex: string): { storedBytes: number; added: boolean } {
  const ours = published.get(hex);
  if (ours !== undefined) return { storedBytes: ours, added: false };
  const final = objectFile(objectsDir, hex);
  if (occupied.has(hex.slice(0, 2))) {
    const existing = touchObject(final);
    if (existing !== undefined) return { storedBytes: existing, added: false };
  }
  const compressed = compressor.compress(content);
  publishObject(tmpDir, compressed, final, `obj${threadId}`);
  published.set(hex, compressed.length);
  return { storedBytes: compressed.length, added: true };
}

function run(job: WriterJob): WriterResult {
  try {
    if ('file' in job) {
      const content = readFile(job.file, job.size);
      const hex = crypto.hash('sha256', content, 'hex');
      return { id: job.id, digest: `sha256:${hex}`, ...store(content, hex) };
    }
    return { id: job.id, digest: job.digest, ...store(job.content, job.digest.slice('sha256:'.length)) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { id: job.id, error: { message: e.message, code: e.code } };
  }
}

parentPort!.on('message', (jobs: WriterJob[]) => {
  parentPort!.postMessage(jobs.map(run));
});
