import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinsByRequire, bundleModule } from './build.ts';

test("the installer's bundle takes Node's built-ins with require(), so Node builds no ES facade of them", async () => {
  const source =
    "import http from 'node:http';\nimport { join } from 'path';\nconsole.log(typeof http.createServer, join('a', 'b'));\n";
  const js = new TextDecoder().decode(
    await bundleModule({ contents: source, loader: 'ts', resolveDir: import.meta.dirname }, [builtinsByRequire]),
  );
  assert.match(js, /require\("node:http"\)/);
  assert.match(js, /require\("node:path"\)/);
  assert.doesNotMatch(js, /from\s*"node:http"/);
  // Without the plugin the import stays an import.
  const plain = new TextDecoder().decode(
    await bundleModule({ contents: source, loader: 'ts', resolveDir: import.meta.dirname }),
  );
  assert.match(plain, /from\s*"node:http"/);
});
