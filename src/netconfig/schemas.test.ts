import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { renderSchemas, schemaDir } from '../../scripts/write-schemas.ts';

it('the published JSON Schemas in docs/schemas match the schemas the installer validates with', () => {
  for (const [file, text] of renderSchemas()) {
    assert.equal(
      fs.readFileSync(path.join(schemaDir, file), 'utf8'),
      text,
      `docs/schemas/${file} is stale: run node_modules/.bin/node scripts/write-schemas.ts`,
    );
  }
});
