// The manifest's schema in zod: what parseManifest (manifest.ts) asks only of a manifest the hand
// check (manifest-check.ts) does not accept, so that its error names the field; the entry types
// are read from it. Kept apart so that loading a manifest, the installer's path, loads no zod
// (97 modules, 40 ms of every `load-image`).
import { z } from 'zod';
import { isDigest } from './digest.ts';
import { MANIFEST_FORMAT, MAX_PATH_BYTES, MTIME } from './manifest-check.ts';

const mtime = z.string().regex(MTIME, "expected seconds and nanoseconds as 'S.NNNNNNNNN'");
const id = z.number().int().min(0).max(0xffffffff);
/** Extended attributes: names, and values in base64. */
const xattrs = z.record(z.string().min(1), z.base64()).optional();
const base = {
  path: z.string().min(1),
  mode: z.number().int().min(0).max(0o7777),
  uid: id,
  gid: id,
  mtime,
  xattrs,
};
const digest = z.string().refine(isDigest, "expected 'sha256:' followed by 64 lowercase hex digits");

export const entrySchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('dir'), ...base }),
  z.strictObject({
    type: z.literal('file'),
    ...base,
    size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    digest: digest.optional(),
    sparse: z.literal(true).optional(),
  }),
  z.strictObject({ type: z.literal('symlink'), ...base, target: z.string().min(1).max(MAX_PATH_BYTES) }),
  z.strictObject({ type: z.literal('hardlink'), path: z.string().min(1), target: z.string().min(1) }),
  z.strictObject({
    type: z.enum(['char', 'block']),
    ...base,
    rdev: z.strictObject({ major: id, minor: id }),
  }),
  z.strictObject({ type: z.literal('fifo'), ...base }),
]);

/** The schema; parseManifest asks it only what checkedManifest leaves (its test compares the two). */
export const manifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  entries: z.array(entrySchema).min(1),
});
