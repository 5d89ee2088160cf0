// The unpacker's order of work against a source that answers at once: objects that arrive before
// the directories are made wait for them, so a file deep in the tree is never created before its
// parent (the download is started before the skeleton, to overlap the two).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import zlib from 'node:zlib';
import { digestOf } from '../model/digest.ts';
import { MANIFEST_FORMAT, type Manifest } from '../model/manifest.ts';
import type { ObjectFetcher, StoredFrame, StoredObjectSource, WantedObject } from '../model/objects.ts';
import { TreeWriterPool } from './tree-writer.ts';
import { unpackImage } from './unpack.ts';

const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;
const meta = { mode: 0o755, uid, gid, mtime: '1700000000.000000000' };

it('an object that arrives before the directories are made waits for them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-unpack-'));
  // Writer threads already running, as the installer has them: a frame handed over early would
  // be written at once.
  const writers = new TreeWriterPool({ threads: 2 }).start();
  try {
    writers.addNode(path.join(dir, 'warm-up'), { type: 'fifo', path: 'warm-up', ...meta });
    await writers.drain();
    fs.rmSync(path.join(dir, 'warm-up'));
    const files = Array.from({ length: 200 }, (_, i) => Buffer.from(`file ${i}\n`.repeat(i + 1)));
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      entries: [
        { type: 'dir', path: '.', ...meta },
        ...files.map((_, i) => ({ type: 'dir' as const, path: `d${i}`, ...meta })),
        ...files.map((content, i) => ({
          type: 'file' as const,
          path: `d${i}/f`,
          ...meta,
          mode: 0o644,
          size: content.length,
          digest: digestOf(content),
        })),
      ],
    };
    const byDigest = new Map(files.map((c) => [digestOf(c), c]));
    let deliveredAtOnce = 0;
    // Every frame is handed over before fetchStored first yields: before the skeleton exists.
    const fetcher: ObjectFetcher & StoredObjectSource = {
      origin: 'a source that answers at once',
      fetch: () => Promise.reject(new Error('fetchStored is the path under test')),
      async fetchStored(objects: WantedObject[], onFrame: (frame: StoredFrame) => void | Promise<void>) {
        const pending = objects.map((o) => {
          deliveredAtOnce++;
          return onFrame({ digest: o.digest, stored: zlib.zstdCompressSync(byDigest.get(o.digest)!) });
        });
        await Promise.all(pending);
      },
    };
    await unpackImage(manifest, dir, { fetcher, writers });
    assert.equal(deliveredAtOnce, files.length);
    for (const [i, content] of files.entries())
      assert.deepEqual(fs.readFileSync(path.join(dir, `d${i}`, 'f')), content);
  } finally {
    await writers.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
