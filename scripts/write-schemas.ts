// Writes the published JSON Schemas of the configuration files (docs/schemas/) from the zod
// schemas the installer validates with, so the two cannot drift apart; a test checks that the
// committed files are current. Run: node_modules/.bin/node scripts/write-schemas.ts
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { machineConfigSchema } from '../src/netconfig/machine-config.ts';
import { kitSchema } from '../src/kit/format.ts';
import { answersSchema } from '../src/setup/answers.ts';
import { storageLayoutSchema } from '../src/storage/layout.ts';

export const SCHEMAS = {
  'config.schema.json': { schema: machineConfigSchema, title: 'Cradle machine configuration (config.json)' },
  'storage-layout.schema.json': { schema: storageLayoutSchema, title: 'Cradle storage layout (storage-layout.json)' },
  'kit.schema.json': { schema: kitSchema, title: 'Cradle kit (kit.json)' },
  'answers.schema.json': { schema: answersSchema, title: 'Cradle head-node answer file (cradle setup)' },
};

export const schemaDir = path.join(import.meta.dirname, '..', 'docs', 'schemas');

/** The text of each schema file, as it should be. */
export function renderSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [file, { schema, title }] of Object.entries(SCHEMAS)) {
    // io: 'input' describes what a file may contain (defaults make fields optional).
    const json = { title, ...z.toJSONSchema(schema, { io: 'input' }) };
    out.set(file, `${JSON.stringify(json, null, 2)}\n`);
  }
  return out;
}

if (import.meta.main) {
  fs.mkdirSync(schemaDir, { recursive: true });
  for (const [file, text] of renderSchemas()) fs.writeFileSync(path.join(schemaDir, file), text);
  console.log(`wrote ${[...renderSchemas().keys()].join(', ')} to ${schemaDir}`);
}
