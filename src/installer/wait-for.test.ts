// --wait-for: the installer image starts the installer while /init still loads drivers; the
// install must not begin until /init makes the file, and must begin once it does.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { tmpDir } from '../../test/helpers.ts';
import { waitForFile } from './daemon.ts';
import { InstallerLog } from './log.ts';

const dir = tmpDir('cradle-wait-for-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the install waits for the file, says so, and begins once it exists', async () => {
  const file = path.join(dir, 'drivers-loaded');
  const log = new InstallerLog({ stderr: false });
  let done = false;
  const waiting = waitForFile(file, log).then(() => {
    done = true;
  });
  // The first line is logged before the first look: the wait is under way, not over.
  assert.match(log.lines.join('\n'), /waiting for .*drivers-loaded/);
  // A turn of the event loop (its promise callbacks included): still waiting.
  await new Promise(setImmediate);
  assert.equal(done, false);
  fs.writeFileSync(file, '');
  await waiting;
  assert.match(log.lines.at(-1) ?? '', /drivers-loaded is there: the install begins/);
});

test('a file already there: no wait, nothing logged', async () => {
  const file = path.join(dir, 'present');
  fs.writeFileSync(file, '');
  const log = new InstallerLog({ stderr: false });
  await waitForFile(file, log);
  assert.deepEqual(log.lines, []);
});
