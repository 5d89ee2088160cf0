// Module and library resolution, pure parsing with golden inputs, and against the build host's
// real kernel modules and programs (skipped where the host has no kernel modules installed).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it, test } from 'node:test';
import { modulePathInTree, parseLdd, parseShowDepends, resolveLibraries, resolveModules } from './resolve.ts';

const kernel = fs.existsSync('/lib/modules') ? fs.readdirSync('/lib/modules').sort().at(-1) : undefined;

describe('module resolution', () => {
  it('parses modprobe --show-depends: insmod lines in order, builtins skipped, names normalised', () => {
    const out =
      'builtin crc32c\ninsmod /lib/modules/6.1/kernel/arch/x86/crypto/crc32c-intel.ko \ninsmod /lib/modules/6.1/kernel/fs/ext4/ext4.ko.xz\n';
    assert.deepEqual(parseShowDepends(out), [
      { name: 'crc32c_intel', path: '/lib/modules/6.1/kernel/arch/x86/crypto/crc32c-intel.ko' },
      { name: 'ext4', path: '/lib/modules/6.1/kernel/fs/ext4/ext4.ko.xz' },
    ]);
  });
  it('resolves the real kernel: crc32c before ext4, dm-mod before dm-crypt, each once', {
    skip: !kernel && 'no kernel modules on this host',
  }, async () => {
    const mods = await resolveModules(kernel!, ['ext4', 'dm_crypt', 'xfs']);
    const names = mods.map((m) => m.name);
    assert.ok(names.indexOf('crc32c_generic') < names.indexOf('ext4'), names.join(' '));
    assert.ok(names.indexOf('dm_mod') < names.indexOf('dm_crypt'), names.join(' '));
    assert.equal(new Set(names).size, names.length);
    for (const m of mods) assert.ok(fs.existsSync(m.path), m.path);
    await assert.rejects(resolveModules(kernel!, ['no_such_module_x']), /has no module 'no_such_module_x'/);
  });
});

describe('library resolution', () => {
  it('parses ldd output, and names a missing library', () => {
    const out =
      '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibpopt.so.0 => /lib/x86_64-linux-gnu/libpopt.so.0 (0x1)\n\t/lib64/ld-linux-x86-64.so.2 (0x2)\n';
    assert.deepEqual(parseLdd(out, 'x'), ['/lib/x86_64-linux-gnu/libpopt.so.0', '/lib64/ld-linux-x86-64.so.2']);
    assert.throws(() => parseLdd('\tlibfoo.so.1 => not found\n', '/usr/sbin/x'), /\/usr\/sbin\/x needs libfoo\.so\.1/);
  });
  it('finds the libraries of real programs; static ones need none', async () => {
    const libs = await resolveLibraries(['/usr/sbin/sfdisk', '/bin/busybox']);
    assert.ok(
      libs.some((l) => l.endsWith('/libfdisk.so.1')),
      libs.join(' '),
    );
    assert.ok(libs.some((l) => l.includes('ld-linux-x86-64.so.2')));
    assert.deepEqual(await resolveLibraries(['/bin/busybox']), [], 'busybox-static needs nothing');
  });
});

test("a module's path below its kernel's directory, whichever spelling kmod reports", () => {
  assert.equal(
    modulePathInTree('6.1.0-56-amd64', '/lib/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko'),
    'kernel/fs/ext4/ext4.ko',
  );
  assert.equal(
    modulePathInTree('6.1.0-56-amd64', '/usr/lib/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko'),
    'kernel/fs/ext4/ext4.ko',
  );
  assert.throws(
    () => modulePathInTree('6.1.0-56-amd64', '/lib/modules/6.1.0-50-amd64/kernel/fs/ext4/ext4.ko'),
    /not under a 6\.1\.0-56-amd64 modules directory/,
  );
});
