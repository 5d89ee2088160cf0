import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Digest, digestOf } from '../model/digest.ts';
import { ImageServerError } from './errors.ts';
import { FRAME_HEADER_BYTES, frameHeader, ObjectStreamParser } from './object-stream.ts';

/** Stand-ins for stored frames: the parser looks only at the header's digest and length. */
const objects = [
  Buffer.from('a'),
  Buffer.alloc(0),
  Buffer.alloc(3000, 'b'),
  Buffer.alloc(70_000, 'c'),
  Buffer.from('dd'),
];
const stream = Buffer.concat(objects.flatMap((o) => [frameHeader(digestOf(o), o.length), o]));
const parser = () => new ObjectStreamParser(() => 1 << 20, 'http://test');

/** The frames the parser gives back when `stream` arrives in pieces of `sizes` (cycled). */
function parse(sizes: number[]): { digest: Digest; stored: Buffer }[] {
  const p = parser();
  const frames = [];
  for (let at = 0, i = 0; at < stream.length; i++) {
    const piece = stream.subarray(at, at + sizes[i % sizes.length]);
    frames.push(...p.push(piece));
    at += piece.length;
  }
  assert.equal(p.partialBytes, 0);
  return frames;
}

describe('ObjectStreamParser', () => {
  it('gives back every frame whole and in order, however the stream is cut', () => {
    const want = objects.map((o) => ({ digest: digestOf(o), stored: o }));
    for (const sizes of [[stream.length], [1], [7], [39, 41], [FRAME_HEADER_BYTES], [1000, 1], [65536], [3, 65536, 17]])
      assert.deepEqual(parse(sizes), want, `pieces of ${sizes.join(',')}`);
  });

  it('gives back views of a piece when a frame lies within it, and copies only a frame that spans pieces', () => {
    const p = parser();
    const piece = Buffer.from(stream.subarray(0, FRAME_HEADER_BYTES + 1 + FRAME_HEADER_BYTES));
    const [a, empty] = p.push(piece);
    assert.equal(a.stored.buffer, piece.buffer, 'a frame within one piece is a view of it');
    assert.equal(empty.stored.length, 0);
    // The 3000-byte frame arrives in two pieces: it is copied out, once whole.
    const rest = stream.subarray(piece.length);
    assert.deepEqual(p.push(rest.subarray(0, 1000)), []);
    assert.equal(p.partialBytes, 1000 - FRAME_HEADER_BYTES, 'its header read, its bytes buffered');
    const [b] = p.push(rest.subarray(1000, FRAME_HEADER_BYTES + 3000));
    assert.notEqual(b.stored.buffer, rest.buffer);
    assert.deepEqual(b.stored, objects[2]);
    assert.equal(p.partialBytes, 0);
  });

  it("refuses a frame longer than its object's bound, before buffering it", () => {
    const p = new ObjectStreamParser(() => 10, 'http://test');
    assert.throws(
      () => p.push(stream.subarray(FRAME_HEADER_BYTES + 1, FRAME_HEADER_BYTES * 3 + 1)),
      (err) => {
        assert.ok(err instanceof ImageServerError);
        return /more than its content could take \(10\)/.test(err.message);
      },
    );
  });
});
