// Turns the frames of a batch object stream into verified object contents. Consecutive small
// frames are decompressed as one group: zstd frames concatenate, so one decompression call yields
// the contents back to back, and the known sizes split them. That spares a zstd context per object
// (the dominant cost for small files) and runs on libuv's pool, so decompression overlaps with
// parsing and hashing on the calling thread (the download worker). Every content is hashed
// before it is delivered.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { digestOf, type Digest } from '../model/digest.ts';
import { CorruptObjectError } from '../model/objects.ts';
import type { ObjectSink } from '../model/objects.ts';
import type { Frame } from './object-stream.ts';

const zstdDecompress = promisify(zlib.zstdDecompress);
const GROUP_STORED_BYTES = 1024 * 1024;
const GROUPS_AHEAD = 4;
const DECOMPRESS_CHUNK = 1024 * 1024;

interface Group {
  frames: Frame[];
  content: Promise<Buffer | Error>;
}

export class BatchDecoder {
  private current: Frame[] = [];
  private currentBytes = 0;
  private readonly queue: Group[] = [];
  private readonly sizes: Map<Digest, number>;
  private readonly origin: string;
  private readonly onObject: ObjectSink;

  constructor(sizes: Map<Digest, number>, origin: string, onObject: ObjectSink) {
    this.sizes = sizes;
    this.origin = origin;
    this.onObject = onObject;
  }

  async push(frame: Frame): Promise<void> {
    this.current.push(frame);
    this.currentBytes += frame.stored.length;
    if (this.currentBytes >= GROUP_STORED_BYTES) this.seal();
    while (this.queue.length > GROUPS_AHEAD) await this.deliver(this.queue.shift()!);
  }

  /** Delivers everything received so far. */
  async flush(): Promise<void> {
    this.seal();
    while (this.queue.length) await this.deliver(this.queue.shift()!);
  }

  private seal(): void {
    if (!this.current.length) return;
    const frames = this.current;
    const stored =
      frames.length === 1
        ? frames[0].stored
        : Buffer.concat(
            frames.map((f) => f.stored),
            this.currentBytes,
          );
    // A large output chunk: the default 16 KiB means a main-thread callback per 16 KiB of output.
    // maxOutputLength: a frame that inflates past its known size fails here, not after filling memory.
    const expected = frames.reduce((n, f) => n + this.sizes.get(f.digest)!, 0);
    const content = zstdDecompress(stored, {
      chunkSize: DECOMPRESS_CHUNK,
      maxOutputLength: Math.max(expected, 1),
    }).catch((err: Error) => err);
    this.queue.push({ frames, content });
    this.current = [];
    this.currentBytes = 0;
  }

  private async deliver(group: Group): Promise<void> {
    const content = await group.content;
    const expected = group.frames.reduce((n, f) => n + this.sizes.get(f.digest)!, 0);
    if (content instanceof Error || content.length !== expected) {
      // Something in the group is bad: go object by object to name the culprit.
      for (const frame of group.frames) await this.verifyAndDeliver(frame.digest, this.decompressOne(frame));
      return;
    }
    let offset = 0;
    for (const frame of group.frames) {
      const size = this.sizes.get(frame.digest)!;
      await this.verifyAndDeliver(frame.digest, content.subarray(offset, offset + size));
      offset += size;
    }
  }

  private decompressOne(frame: Frame): Buffer {
    try {
      return zlib.zstdDecompressSync(frame.stored, { maxOutputLength: Math.max(this.sizes.get(frame.digest)!, 1) });
    } catch (err) {
      throw new CorruptObjectError(
        `object ${frame.digest} from ${this.origin} is corrupt: it does not decompress (${(err as Error).message}); nothing was written from it`,
      );
    }
  }

  private async verifyAndDeliver(digest: Digest, content: Buffer): Promise<void> {
    const actual = digestOf(content);
    if (actual !== digest) {
      throw new CorruptObjectError(
        `object ${digest} from ${this.origin} is corrupt: its content hashes to ${actual}; nothing was written from it`,
      );
    }
    await this.onObject(digest, content);
  }
}
