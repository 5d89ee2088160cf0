// Configuration files and records are JSON checked against a zod schema at the boundary. One
// helper, so every such file fails the same way: the file named, then the field and what is wrong.
import type { z } from 'zod';

/** Removes whole-line comments (`#`, `//`, `!`), which Dominator's configuration files may carry. */
export function stripLineComments(text: string): string {
  return text.replace(/^[ \t]*(#|\/\/|!).*$/gm, '');
}

export function parseJsonWith<S extends z.ZodType>(
  text: string,
  schema: S,
  file: string,
  makeError: (message: string) => Error,
): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(stripLineComments(text));
  } catch (err) {
    throw makeError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw makeError(`${file}: field '${issue.path.join('.')}' is invalid: ${issue.message}`);
  }
  return r.data;
}
