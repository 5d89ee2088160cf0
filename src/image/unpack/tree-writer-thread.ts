// The thread side of TreeWriterPool (tree-writer.ts): writes the files of an image, a batch of
// objects at a time, and answers each batch with one message. An object arrives as stored (a zstd
// frame from the image server: decompressed here and hashed against its digest before a byte is
// written), as content the sender verified, or as a file of a tree this installer verified when it
// wrote it (read here; not used unless it is a regular file of the expected size). Everything runs
// synchronously: one zstd context, one output buffer and one read buffer serve every object.
import crypto from 'node:crypto';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { InodeEntry } from '../model/manifest.ts';
import { createNonRegular, type FileTarget, readExactly, writeFileTarget } from './file-ops.ts';
import { newObjectDecompressor, type ObjectDecompressor } from './zstd-decompressor.ts';

export type WriteJob =
  /** A zstd frame, bytes [start, end) of the batch's buffer, unverified. */
  | { kind: 'stored'; digest: `sha256:${string}`; start: number; end: number; size: number; targets: FileTarget[] }
  /** Verified content, bytes [start, end) of the batch's buffer. */
  | { kind: 'content'; start: number; end: number; size: number; targets: FileTarget[] }
  /** A file holding exactly the object, if it is still a regular file of `size` bytes. */
  | { kind: 'file'; file: string; size: number; targets: FileTarget[] }
  /** A symlink, device node, FIFO or empty file (no content) at `path`. */
  | { kind: 'node'; path: string; entry: InodeEntry };

export interface WriteBatch {
  jobs: WriteJob[];
  buffer?: ArrayBuffer;
  /** Where stored objects came from, for the error naming a corrupt one. */
  origin?: string;
}

export interface WriteAnswer {
  /** The batch's buffer, handed back for the next batch. */
  buffer?: ArrayBuffer;
  /** Bytes written (each target counted). */
  bytes: number;
  /** Indices of `file` jobs whose file could not be used: their objects must come from elsewhere. */
  missing: number[];
  error?: { name: string; message: string; code?: string; path?: string };
}

let decompressor: ObjectDecompressor | undefined;
let readBuf: Buffer = Buffer.allocUnsafe(1024 * 1024);

class CorruptObjectError extends Error {
  override name = 'CorruptObjectError';
}

function contentOf(
  job: Exclude<WriteJob, { kind: 'node' }>,
  buffer: Buffer | undefined,
  origin: string,
): Buffer | undefined {
  switch (job.kind) {
    case 'content':
      return buffer!.subarray(job.start, job.end);
    case 'file': {
      const r = readExactly(job.file, job.size, readBuf);
      if (!r) return undefined;
      readBuf = r.buf;
      return r.content;
    }
    case 'stored': {
      decompressor ??= newObjectDecompressor();
      const content = decompressor.decompress(buffer!.subarray(job.start, job.end), job.size);
      if (!content) {
        throw new CorruptObjectError(
          `object ${job.digest} from ${origin} is corrupt: it does not decompress to the ${job.size} bytes its manifest gives; nothing was written from it`,
        );
      }
      const actual = `sha256:${crypto.createHash('sha256').update(content).digest('hex')}`;
      if (actual !== job.digest) {
        throw new CorruptObjectError(
          `object ${job.digest} from ${origin} is corrupt: its content hashes to ${actual}; nothing was written from it`,
        );
      }
      return content;
    }
  }
}

export function writeBatch(batch: WriteBatch): WriteAnswer {
  const buffer = batch.buffer ? Buffer.from(batch.buffer) : undefined;
  const answer: WriteAnswer = { buffer: batch.buffer, bytes: 0, missing: [] };
  for (let i = 0; i < batch.jobs.length; i++) {
    const job = batch.jobs[i];
    try {
      if (job.kind === 'node') {
        createNonRegular(job.path, job.entry);
        continue;
      }
      const content = contentOf(job, buffer, batch.origin ?? 'the image server');
      if (!content) {
        answer.missing.push(i);
        continue;
      }
      for (const target of job.targets) {
        writeFileTarget(target, content);
        answer.bytes += content.length;
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      answer.error = { name: e.name, message: e.message, code: e.code, path: e.path };
      break;
    }
  }
  return answer;
}

// Started as a writer thread (util/threads.ts: this module, or its own bundle).
if (!isMainThread && (workerData as { kind?: string } | undefined)?.kind === 'tree-writer') {
  const port = parentPort!;
  port.on('message', (batch: WriteBatch) => {
    const answer = writeBatch(batch);
    port.postMessage(answer, answer.buffer ? [answer.buffer] : []);
  });
}
