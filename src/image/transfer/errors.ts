// The image server's own error, in one module that the stream parser and the client share (a
// corrupt object's error is the object contract's, model/objects.ts, as the unpacker raises it too).

/** The image server failed or misbehaved; 4xx answers carry their status and are not retried. */
export class ImageServerError extends Error {
  override name = 'ImageServerError';
  status?: number;
}
