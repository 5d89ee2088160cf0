import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planInstallerImage, usrPath, type InstallerImageFacts } from './installer-image.ts';

const facts: InstallerImageFacts = {
  kernelVersion: '6.1.0-56-amd64',
  modules: [
    { name: 'crc32c_generic', path: '/lib/modules/6.1.0-56-amd64/kernel/crypto/crc32c_generic.ko' },
    { name: 'ext4', path: '/lib/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko' },
  ],
  moduleIndex: [{ name: 'modules.dep', data: new Uint8Array([1]) }],
  busyboxApplets: ['bin/sh', 'bin/mount', 'usr/sbin/ip', 'sbin/modprobe', 'usr/bin/wget'],
  busybox: '/bin/busybox',
  tools: ['/usr/bin/mount', '/usr/sbin/ip', '/usr/sbin/kmod'],
  libraries: ['/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'],
  node: '/work/node',
  bundle: new TextEncoder().encode('bundle'),
  init: '#!/bin/sh\n',
  buildTime: new Date('2026-11-22T10:00:00Z'),
  tftpdata: [{ name: 'config.json', data: new TextEncoder().encode('{}') }],
  flags: ['--image-server-hostname=10.0.0.1'],
  packages: [
    { name: '@lydell/node-pty', files: [{ rel: 'index.js', from: '/repo/node_modules/@lydell/node-pty/index.js' }] },
  ],
  tls: {
    ca: new TextEncoder().encode('CA'),
    cert: new TextEncoder().encode('CERT'),
    key: new TextEncoder().encode('KEY'),
  },
};

const byPath = (plan: ReturnType<typeof planInstallerImage>) => new Map(plan.map((e) => [e.path, e]));

test('usrPath maps the merged-/usr spellings to one path', () => {
  assert.equal(usrPath('/lib64/ld-linux-x86-64.so.2'), '/usr/lib64/ld-linux-x86-64.so.2');
  assert.equal(usrPath('/sbin/ip'), '/usr/sbin/ip');
  assert.equal(usrPath('/usr/bin/mount'), '/usr/bin/mount');
  assert.equal(usrPath('/etc/x'), '/etc/x');
});

test('the plan: merged /usr, real tools over busybox applets, kmod as modprobe, modules under the kernel version', () => {
  const plan = planInstallerImage(facts);
  const m = byPath(plan);
  assert.deepEqual(m.get('/bin'), { type: 'symlink', path: '/bin', target: 'usr/bin' });
  assert.deepEqual(m.get('/lib64'), { type: 'symlink', path: '/lib64', target: 'usr/lib64' });
  // util-linux's mount and iproute2's ip, not busybox's
  assert.deepEqual(m.get('/usr/bin/mount'), {
    type: 'file',
    path: '/usr/bin/mount',
    from: '/usr/bin/mount',
    mode: 0o755,
    category: 'tools',
  });
  assert.equal(m.get('/usr/sbin/ip')?.type, 'file');
  assert.deepEqual(m.get('/usr/sbin/modprobe'), { type: 'symlink', path: '/usr/sbin/modprobe', target: '../bin/kmod' });
  assert.deepEqual(m.get('/usr/bin/sh'), { type: 'symlink', path: '/usr/bin/sh', target: 'busybox' });
  assert.deepEqual(m.get('/usr/bin/wget'), { type: 'symlink', path: '/usr/bin/wget', target: 'busybox' });
  assert.equal(m.get('/usr/lib64/ld-linux-x86-64.so.2')?.type, 'file');
  assert.equal(m.get('/usr/lib/x86_64-linux-gnu/libc.so.6')?.type, 'file');
  assert.equal(m.get('/usr/lib/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko')?.type, 'file');
  assert.equal(m.get('/usr/lib/modules/6.1.0-56-amd64/modules.dep')?.type, 'file');
  assert.deepEqual(m.get('/dev/console'), { type: 'char', path: '/dev/console', major: 5, minor: 1, mode: 0o600 });
  assert.equal((m.get('/init') as { mode: number }).mode, 0o755);
  assert.equal(
    new TextDecoder().decode((m.get('/build-timestamp') as { data: Uint8Array }).data),
    '2026-11-22T10:00:00.000Z\n',
  );
  assert.equal(
    new TextDecoder().decode((m.get('/etc/installer/flags.default') as { data: Uint8Array }).data),
    '--image-server-hostname=10.0.0.1\n',
  );
  assert.equal(m.get('/tftpdata/config.json')?.type, 'file');
  assert.match(
    new TextDecoder().decode((m.get('/usr/bin/cradle') as { data: Uint8Array }).data),
    /exec \/usr\/bin\/node .* \/usr\/lib\/cradle\/cradle\.mjs "\$@"/,
  );
  // The PTY package beside the bundle, where Node's resolution from /usr/lib/cradle finds it.
  assert.equal(m.get('/usr/lib/cradle/node_modules/@lydell/node-pty/index.js')?.type, 'file');
  // Dominator's TLS files; the key readable by root only.
  assert.equal((m.get('/etc/ssl/CA.pem') as { mode: number }).mode, 0o644);
  assert.equal((m.get('/etc/ssl/installer/key.pem') as { mode: number }).mode, 0o600);
});

test('the plan lists every parent directory before its children, each path once', () => {
  const plan = planInstallerImage(facts);
  const seen = new Set<string>(['/']);
  for (const e of plan) {
    assert.ok(!seen.has(e.path), `${e.path} twice`);
    const parent = e.path.slice(0, e.path.lastIndexOf('/')) || '/';
    assert.ok(seen.has(parent), `${e.path} before ${parent}`);
    seen.add(e.path);
  }
});

test('pre-injected configuration must be plain file names', () => {
  assert.throws(
    () => planInstallerImage({ ...facts, tftpdata: [{ name: '../etc/passwd', data: new Uint8Array() }] }),
    /plain file name/,
  );
});
