// Image names are `stream/leaf`, where the stream may itself have several components
// (`debian/bookworm/2026-11-22:10:00:00`). A stream name alone means "the latest image in it".

const COMPONENT_RE = /^[A-Za-z0-9_@+:,=-][A-Za-z0-9._@+:,=-]*$/;

export class NameError extends Error {
  override name = 'NameError';
}

/** Checks a name (or stream) and returns it; throws NameError with the rule it breaks. */
export function checkImageName(name: string, what = 'image name'): string {
  if (name.length === 0 || name.length > 512) throw new NameError(`${what} must be 1 to 512 characters long`);
  const parts = name.split('/');
  for (const part of parts) {
    if (part === '.' || part === '..' || !COMPONENT_RE.test(part)) {
      throw new NameError(
        `${what} '${name}' has an invalid component '${part}': use letters, digits and . _ @ + : , = - ` +
          "(not starting with '.'), separated by '/'",
      );
    }
  }
  return name;
}

/** A full image name needs a stream and a leaf. */
export function checkFullImageName(name: string): string {
  checkImageName(name);
  if (!name.includes('/')) {
    throw new NameError(`image name '${name}' has no stream: name images 'stream/leaf', e.g. 'debian/2026-11-22'`);
  }
  return name;
}

export function streamOf(name: string): string {
  return name.slice(0, name.lastIndexOf('/'));
}
