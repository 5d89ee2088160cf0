// JSON as Dominator's Go code reads it, for the zod schemas of its files (config.json,
// storage-layout.json): Go's json.Unmarshal takes null as "leave the zero value", and Go writes a
// nil slice or map as null itself (a Subnet's DomainNameServers, a response's Subnets).
import { z } from 'zod';

/**
 * The fields of `shape`, each taking JSON null as absent (its default, if it has one). The types
 * stay the fields' own: only the accepted input widens.
 */
export function nullAsAbsent<S extends Record<string, z.ZodType>>(shape: S): S {
  return Object.fromEntries(
    Object.entries(shape).map(([k, schema]) => [k, z.preprocess((v) => (v === null ? undefined : v), schema)]),
  ) as unknown as S;
}
