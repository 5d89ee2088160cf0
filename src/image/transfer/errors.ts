// The errors an object source raises, in one module that the stream parser, the decoder, the
// client and the worker that carries errors across threads all share.

/** The image server failed or misbehaved; 4xx answers carry their status and are not retried. */
export class ImageServerError extends Error {
  override name = 'ImageServerError';
  status?: number;
}

/** An object's bytes do not match its digest: the server's copy is bad, so it is not retried. */
export class CorruptObjectError extends Error {
  override name = 'CorruptObjectError';
}
