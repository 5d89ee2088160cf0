import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_FILE_MINUTES, fileMinutes } from '../scripts/file-minutes.ts';

test("a test file's time limit: the default, its header, or the run's override", () => {
  assert.equal(fileMinutes('// a test\nimport x from "y";\n'), DEFAULT_FILE_MINUTES);
  assert.equal(fileMinutes('// VM tier\n// cradle-test-minutes: 35\nimport x from "y";\n'), 35);
  assert.equal(fileMinutes('// cradle-test-minutes: 35\n', '5'), 5, 'the environment wins');
  const late = `${'\n'.repeat(50)}const s = '// cradle-test-minutes: 99';\n`;
  assert.equal(fileMinutes(late), DEFAULT_FILE_MINUTES, 'only the opening lines count');
  assert.throws(() => fileMinutes('', 'soon'), /CRADLE_TEST_FILE_MINUTES='soon'/);
});
