// Our newc writer against GNU cpio as the reader: every entry type comes back as written.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cpioNewc } from './cpio.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-cpio-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

describe('cpio newc', () => {
  it('GNU cpio lists and extracts what we write, padding and all', () => {
    const big = Buffer.alloc(100_003, 7);
    const archive = Buffer.concat(
      cpioNewc([
        { type: 'dir', path: 'bin' },
        { type: 'file', path: 'bin/busybox', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
        { type: 'symlink', path: 'bin/sh', target: 'busybox' },
        { type: 'file', path: 'init', data: big, mode: 0o700 },
        { type: 'file', path: 'empty', data: Buffer.alloc(0) },
        { type: 'dir', path: 'dev' },
        { type: 'char', path: 'dev/console', major: 5, minor: 1 },
      ]),
    );
    assert.equal(archive.length % 4, 0);
    const list = execFileSync('cpio', ['-t', '-v', '--quiet'], { input: archive, encoding: 'utf8' });
    assert.match(list, /^-rwxr-xr-x .* bin\/busybox$/m);
    assert.match(list, /^lrwxrwxrwx .* bin\/sh -> busybox$/m);
    assert.match(list, /^crw------- .* 5,\s+1 .* dev\/console$/m);
    const out = path.join(work, 'x');
    fs.mkdirSync(out);
    execFileSync('cpio', ['-i', '-d', '--quiet', '--no-absolute-filenames'], { input: archive, cwd: out });
    assert.deepEqual(fs.readFileSync(path.join(out, 'init')), big);
    assert.equal(fs.statSync(path.join(out, 'init')).mode & 0o777, 0o700);
    assert.equal(fs.readlinkSync(path.join(out, 'bin/sh')), 'busybox');
    assert.equal(fs.statSync(path.join(out, 'empty')).size, 0);
  });
  it('refuses paths that would leave the archive root', () => {
    assert.throws(() => cpioNewc([{ type: 'file', path: '../etc/passwd', data: Buffer.alloc(1) }]), /bad entry path/);
  });
});
