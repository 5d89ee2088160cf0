// The image server's own error, in one module that the stream parser, the decoder, the client and
// the worker that carries errors across threads all share (a corrupt object's error is the object
// contract's, model/objects.ts, as the unpacker raises it too).

/** The image server failed or misbehaved; 4xx answers carry their status and are not retried. */
export class ImageServerError extends Error {
  override name = 'ImageServerError';
  status?: number;
}
