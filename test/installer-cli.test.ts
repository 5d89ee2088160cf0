// The installer's small sub-commands through the real CLI, with coreutils as the peers:
// decode-base64 against `base64`, generate-random into `head`, list-drives over a sysfs tree.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cradleBin, tmpDir } from './helpers.ts';

const work = tmpDir('cradle-cli-');
after(() => fs.rmSync(work, { recursive: true, force: true }));
const bash = (script: string) =>
  execFileSync('bash', ['-o', 'pipefail', '-c', script], {
    encoding: 'utf8',
    env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' },
  });

describe('installer sub-commands', () => {
  it('decode-base64 undoes coreutils base64 (wrapped at 76 columns)', () => {
    const file = path.join(work, 'blob');
    fs.writeFileSync(file, randomBytes(100_003));
    bash(`base64 ${file} | ${cradleBin} installer decode-base64 > ${file}.out`);
    assert.deepEqual(fs.readFileSync(`${file}.out`), fs.readFileSync(file));
  });

  it('generate-random streams until the reader stops, then exits cleanly', () => {
    const out = bash(`${cradleBin} installer generate-random | head -c 3000000 | wc -c`);
    assert.equal(out.trim(), '3000000');
    const sample = execFileSync('bash', ['-c', `${cradleBin} installer generate-random | head -c 1048576`], {
      maxBuffer: 2 << 20,
    });
    assert.ok(new Set(sample).size === 256, 'every byte value occurs in a MiB of output');
  });

  it('list-drives prints usable drives, boot drive first, and why others were skipped', () => {
    const sys = path.join(work, 'sys');
    const dev = path.join(work, 'dev');
    fs.mkdirSync(path.join(sys, 'class', 'block'), { recursive: true });
    fs.mkdirSync(dev);
    for (const [name, bus, removable] of [
      ['sdb', 'pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0', '0'],
      ['sda', 'pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0', '0'],
      ['sr0', 'pci0000:00/0000:00:1f.2/ata3/x/y/z', '1'],
    ]) {
      const rel = `devices/${bus}/block/${name}`;
      fs.mkdirSync(path.join(sys, rel, 'device'), { recursive: true });
      fs.writeFileSync(path.join(sys, rel, 'removable'), removable);
      fs.writeFileSync(path.join(sys, rel, 'size'), String(2 * 1024 * 1024 * 20));
      fs.writeFileSync(path.join(sys, rel, 'device', 'model'), `MODEL ${name}`);
      fs.symlinkSync(`../../${rel}`, path.join(sys, 'class', 'block', name));
      fs.writeFileSync(path.join(dev, name), Buffer.alloc(512));
    }
    const out = execFileSync(
      cradleBin,
      ['installer', '--sysfs-directory', sys, '--dev-directory', dev, 'list-drives'],
      { encoding: 'utf8', env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' } },
    );
    const lines = out.trim().split('\n');
    assert.match(lines[0], /^NAME\s+SIZE\s+MODEL/);
    assert.match(lines[1], /^sda\s+20\.0 GiB\s+MODEL sda .*boot$/);
    assert.match(lines[2], /^sdb\s+20\.0 GiB/);
    assert.match(lines[3], /^skipped sr0: removable/);
  });
});
