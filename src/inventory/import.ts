// Bringing a fleet into the machine database: Dominator's config.json (one machine and its subnets,
// as a Dominator user already has them; also an array of them) and CSV with a header row
// `hostname,mac,ip,subnet,ipmi_ip,tags` (and optionally `state`). Every error names where it is:
// the file and entry, or the CSV line and column. An import is all-or-nothing: one transaction,
// so a bad line 900 leaves the database as it was rather than with 899 machines in it.
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { machineConfigSchema, type MachineConfig, unknownConfigFields } from '../netconfig/machine-config.ts';
import { stripLineComments } from '../util/parse-json.ts';
import { compact, machineFrom, subnetFrom } from './dominator-config.ts';
import type { TransactionalInventory } from './sql-store.ts';
import { InventoryError, type MachineState, type NewMachine, type Subnet } from './types.ts';
import {
  check,
  checkSubnet,
  hostnameSchema,
  ipv4Schema,
  macSchema,
  stateSchema,
  subnetIdSchema,
  ValidationError,
} from './validate.ts';

export interface ImportEntry {
  machine: NewMachine;
  /** Where it came from, for messages: "fleet.csv line 7", "config.json". */
  where: string;
}

export interface ImportBatch {
  subnets: { subnet: Subnet; where: string }[];
  machines: ImportEntry[];
}

export interface ImportResult {
  subnetsAdded: string[];
  subnetsUnchanged: string[];
  machines: string[];
}

function withoutPool(s: Subnet): Subnet {
  const { pool: _pool, ...rest } = s;
  return rest;
}

/**
 * A config.json's problems the database would otherwise hide: keys that are no field of
 * Dominator's (a typo would be dropped silently, and the file would not come back as it went
 * in), and an Error from the server that wrote it (no machine in it).
 */
function refuseUnknown(c: MachineConfig, where: string): void {
  const unknown = unknownConfigFields(c);
  if (unknown.length)
    throw new ValidationError(
      `${where}: field '${unknown[0]}' is not one of Dominator's config.json fields, so the machine database would not keep it: fix its spelling or remove it${unknown.length > 1 ? ` (also ${unknown.slice(1).join(', ')})` : ''}`,
    );
  if (c.Error)
    throw new ValidationError(
      `${where}: field 'Error' says the server that wrote it failed ('${c.Error}'): it holds no machine to import`,
    );
}

/** A Dominator config.json, or a JSON array of them (their subnets merged by id). */
export function parseSeedJson(text: string, file: string): ImportBatch {
  let json: unknown;
  try {
    json = JSON.parse(stripLineComments(text));
  } catch (err) {
    throw new ValidationError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const configs = Array.isArray(json) ? json : [json];
  const batch: ImportBatch = { subnets: [], machines: [] };
  configs.forEach((raw, i) => {
    const where = Array.isArray(json) ? `${file}[${i}]` : file;
    const c = check(machineConfigSchema, raw, where);
    refuseUnknown(c, where);
    for (const s of c.Subnets) {
      const subnet = subnetFrom(s, where);
      const seen = batch.subnets.find((x) => x.subnet.id === subnet.id);
      if (!seen) batch.subnets.push({ subnet, where: `${where}: subnet '${s.Id}'` });
      else if (!isDeepStrictEqual(seen.subnet, subnet))
        throw new ValidationError(
          `${where}: subnet '${s.Id}' differs from the one in ${seen.where}: make them the same`,
        );
    }
    batch.machines.push({ machine: machineFrom(c, where), where: `${where}: machine '${c.Machine.Hostname}'` });
  });
  return batch;
}

/** RFC 4180 records: quoted fields may hold commas, quotes ("") and line breaks. */
function* csvRecords(text: string, file: string): Generator<{ line: number; fields: string[] }> {
  let i = 0;
  let line = 1;
  while (i < text.length) {
    const start = line;
    const fields: string[] = [];
    for (;;) {
      let value = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= text.length)
            throw new ValidationError(
              `${file} line ${start}, column ${fields.length + 1}: a quoted field is never closed: end it with "`,
            );
          if (text[i] === '"' && text[i + 1] === '"') {
            value += '"';
            i += 2;
          } else if (text[i] === '"') break;
          else {
            if (text[i] === '\n') line++;
            value += text[i++];
          }
        }
        i++;
        while (text[i] === ' ' || text[i] === '\t') i++;
        if (i < text.length && !',\r\n'.includes(text[i]))
          throw new ValidationError(
            `${file} line ${line}, column ${fields.length + 1}: text after a closing quote: quote the whole field`,
          );
      } else {
        while (i < text.length && !',\r\n'.includes(text[i])) value += text[i++];
        value = value.trim();
      }
      fields.push(value);
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '\r') i++;
      if (text[i] === '\n') i++;
      line++;
      break;
    }
    const blank = fields.length === 1 && fields[0] === '';
    if (!blank && !fields[0].startsWith('#')) yield { line: start, fields };
  }
}

const CSV_COLUMNS = ['hostname', 'mac', 'ip', 'subnet', 'ipmi_ip', 'tags', 'state'] as const;
type CsvColumn = (typeof CSV_COLUMNS)[number];

const tagPair = z
  .string()
  .regex(/^[^=\s]+=.*$/, "a tag is NAME=VALUE, several separated by ';', e.g. RequiredImage=debian;Rack=r1");

/** Machines from CSV; MACs may be several in one field, separated by spaces or ';'. */
export function parseMachinesCsv(text: string, file: string): ImportBatch {
  const records = csvRecords(text.replace(/^\uFEFF/, ''), file);
  const header = records.next();
  if (header.done)
    throw new ValidationError(`${file} is empty: it needs a header row such as hostname,mac,ip,subnet,ipmi_ip,tags`);
  const columns = header.value.fields.map((name, i) => {
    const col = name.toLowerCase() as CsvColumn;
    if (!CSV_COLUMNS.includes(col)) {
      throw new ValidationError(
        `${file} line ${header.value.line}, column ${i + 1}: unknown column '${name}': use ${CSV_COLUMNS.join(', ')}`,
      );
    }
    return col;
  });
  for (const required of ['hostname', 'mac'] as const) {
    if (!columns.includes(required))
      throw new ValidationError(
        `${file} line ${header.value.line}: the header has no '${required}' column: it needs at least hostname,mac`,
      );
  }
  const dup = columns.find((c, i) => columns.indexOf(c) !== i);
  if (dup) throw new ValidationError(`${file} line ${header.value.line}: column '${dup}' appears twice`);

  const batch: ImportBatch = { subnets: [], machines: [] };
  for (const { line, fields } of records) {
    if (fields.length !== columns.length) {
      throw new ValidationError(
        `${file} line ${line}: ${fields.length} fields, but the header has ${columns.length}: quote fields that hold commas`,
      );
    }
    const cell = <S extends z.ZodType>(col: CsvColumn, schema: S, value?: string): z.output<S> | undefined => {
      const i = columns.indexOf(col);
      const raw = value ?? fields[i];
      if (i < 0 || raw === '') return undefined;
      return check(schema, raw, `${file} line ${line}, column ${i + 1} (${col})`);
    };
    const macText = fields[columns.indexOf('mac')];
    if (!macText)
      throw new ValidationError(
        `${file} line ${line}, column ${columns.indexOf('mac') + 1} (mac): empty: every machine needs its boot interface's MAC`,
      );
    const tags: Record<string, string> = {};
    for (const pair of (columns.includes('tags') ? fields[columns.indexOf('tags')] : '')
      .split(';')
      .filter((p) => p.trim())) {
      const t = cell('tags', tagPair, pair.trim()) as string;
      tags[t.slice(0, t.indexOf('='))] = t.slice(t.indexOf('=') + 1);
    }
    const ipmiIp = cell('ipmi_ip', ipv4Schema);
    const machine = compact<NewMachine>({
      hostname: cell('hostname', hostnameSchema) as string,
      macs: macText
        .split(/[\s;]+/)
        .filter(Boolean)
        .map((m) => cell('mac', macSchema, m) as string),
      ip: cell('ip', ipv4Schema),
      subnetId: cell('subnet', subnetIdSchema),
      ipmi: ipmiIp ? { ip: ipmiIp } : undefined,
      tags,
      state: cell('state', stateSchema) as MachineState | undefined,
    });
    if (!machine.hostname)
      throw new ValidationError(
        `${file} line ${line}, column ${columns.indexOf('hostname') + 1} (hostname): empty: every machine needs a host name`,
      );
    batch.machines.push({ machine, where: `${file} line ${line}` });
  }
  return batch;
}

/** JSON or CSV, by the file's extension, else by its first character. */
export function parseImportFile(text: string, file: string): ImportBatch {
  const ext = /\.(\w+)$/.exec(file)?.[1]?.toLowerCase();
  const json = ext === 'json' || (ext !== 'csv' && /^\s*[[{]/.test(stripLineComments(text)));
  return json ? parseSeedJson(text, file) : parseMachinesCsv(text, file);
}

/**
 * Adds the batch in one transaction. A subnet already in the database is kept if identical and
 * refused if it differs; machines must be new. `state` applies to machines that name none.
 */
export async function importBatch(
  inv: TransactionalInventory,
  batch: ImportBatch,
  opts: { state?: MachineState } = {},
): Promise<ImportResult> {
  const result: ImportResult = { subnetsAdded: [], subnetsUnchanged: [], machines: [] };
  const located = async <T>(where: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof InventoryError)) throw err;
      const Kind = err.constructor as new (message: string) => InventoryError;
      // "f.json: machine 'x'" and "machine 'x': ..." say the machine once.
      const last = where.slice(where.lastIndexOf(': ') + 2);
      const context = err.message.startsWith(`${last}: `) ? where.slice(0, -last.length - 2) : where;
      throw new Kind(`${context}: ${err.message}`);
    }
  };
  await inv.transaction(async (tx) => {
    for (const { subnet, where } of batch.subnets) {
      await located(where, async () => {
        const wanted = checkSubnet(subnet);
        const existing = await tx.getSubnet(wanted.id);
        if (!existing) {
          await tx.addSubnet(wanted);
          result.subnetsAdded.push(wanted.id);
        } else if (isDeepStrictEqual(compact(wanted), wanted.pool ? existing : withoutPool(existing))) {
          result.subnetsUnchanged.push(wanted.id); // a file without a dynamic range keeps the pool set here
        } else
          throw new InventoryError(
            `differs from subnet '${wanted.id}' in the database: make them the same, or 'cradle subnet rm' the old one first`,
          );
      });
    }
    for (const { machine, where } of batch.machines) {
      await located(where, () => tx.addMachine({ ...machine, state: machine.state ?? opts.state }));
      result.machines.push(machine.hostname);
    }
  });
  return result;
}
