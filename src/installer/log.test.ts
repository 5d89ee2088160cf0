// The installer's log files kept within Dominator's logbuf bounds: a new file past the size, old
// files removed past the quota (the file being written never), an idle MARK, debug levels.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { InstallerLog } from './log.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-log-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const line = 'x'.repeat(1000);

describe('installer log files', () => {
  it('starts a new file past the size; the files of the run hold every line, in order; latest follows', () => {
    const dir = path.join(work, 'rotate');
    const log = new InstallerLog({ directory: dir, stderr: false, bounds: { fileMaxBytes: 16 << 10 } });
    try {
      for (let i = 0; i < 50; i++) log.info(`${i} ${line}`);
    } finally {
      log.close();
    }
    assert.ok(log.files.length >= 3, `${log.files.length} files`);
    const text = log.files.map((f) => fs.readFileSync(f, 'utf8')).join('');
    const numbers = [...text.matchAll(/\] (\d+) x/g)].map((m) => Number(m[1]));
    assert.deepEqual(numbers, [...Array(50).keys()]);
    assert.match(text, /closing this file, the log goes on in a new one/);
    for (const f of log.files) assert.ok(fs.statSync(f).size < (16 << 10) + 2000, `${f} is bounded`);
    assert.equal(fs.readlinkSync(path.join(dir, 'latest')), path.basename(log.file!));
  });

  it("removes the oldest files, an earlier run's first, to keep to the quota, never the file being written", () => {
    const dir = path.join(work, 'quota');
    fs.mkdirSync(dir);
    const old = path.join(dir, 'log-earlier-run');
    fs.writeFileSync(old, Buffer.alloc(60 << 10, 'o'));
    fs.utimesSync(old, new Date('2020-01-01'), new Date('2020-01-01'));
    const log = new InstallerLog({
      directory: dir,
      stderr: false,
      bounds: { fileMaxBytes: 16 << 10, quotaBytes: 64 << 10 },
    });
    try {
      for (let i = 0; i < 200; i++) log.info(`${i} ${line}`);
    } finally {
      log.close();
    }
    assert.ok(!fs.existsSync(old), "the earlier run's file went first");
    const total = fs
      .readdirSync(dir)
      .filter((n) => n.startsWith('log-'))
      .reduce((sum, n) => sum + fs.statSync(path.join(dir, n)).size, 0);
    assert.ok(total <= (64 << 10) + (18 << 10), `${total} bytes kept`);
    assert.match(fs.readFileSync(log.file!, 'utf8'), /\] 199 x/, 'the newest lines are kept');
    assert.match(log.files.map((f) => fs.readFileSync(f, 'utf8')).join(''), /removed \d+ old log files/);
  });

  it('marks an idle log in its file', async () => {
    const dir = path.join(work, 'idle');
    const log = new InstallerLog({ directory: dir, stderr: false, bounds: { idleMarkSeconds: 0.05 } });
    try {
      log.info('then nothing');
      const file = log.file!;
      for (let i = 0; i < 600 && !/MARK/.test(fs.readFileSync(file, 'utf8')); i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.match(fs.readFileSync(file, 'utf8'), /then nothing\n.* MARK\n/);
      assert.doesNotMatch(log.lines.join('\n'), /MARK/, 'the mark is for the file, not the page');
    } finally {
      log.close();
    }
  });

  it('keeps the last lines in memory (at least 100) and logs debug lines up to its level', () => {
    const log = new InstallerLog({ stderr: false, bounds: { bufferLines: 5, debugLevel: 1 } });
    for (let i = 0; i < 150; i++) log.info(`${i}`);
    assert.equal(log.lines.length, 100);
    assert.match(log.lines[0], /\] 50$/);
    log.debug(1, 'level one');
    log.debug(2, 'level two');
    assert.match(log.lines.at(-1)!, /level one$/);
    assert.equal(log.total, 151);
  });
});
