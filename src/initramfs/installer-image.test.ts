import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SECOND_STAGE_DIGEST, SECOND_STAGE_MOUNT } from './installer-files.ts';
import {
  planFirstStage,
  planSecondStage,
  usrPath,
  type InstallerImageFacts,
  type PlannedEntry,
} from './installer-image.ts';

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
  bundle: {
    main: new TextEncoder().encode('bundle'),
    threads: [{ name: 'tree-writer-thread.mjs', data: new TextEncoder().encode('thread') }],
  },
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

const DIGEST = 'ab'.repeat(32);
const byPath = (plan: PlannedEntry[]) => new Map(plan.map((e) => [e.path, e]));

test('usrPath maps the merged-/usr spellings to one path', () => {
  assert.equal(usrPath('/lib64/ld-linux-x86-64.so.2'), '/usr/lib64/ld-linux-x86-64.so.2');
  assert.equal(usrPath('/sbin/ip'), '/usr/sbin/ip');
  assert.equal(usrPath('/usr/bin/mount'), '/usr/bin/mount');
  assert.equal(usrPath('/etc/x'), '/etc/x');
});

test('the first stage: merged /usr, real tools over busybox applets, kmod as modprobe, modules under the kernel version', () => {
  const plan = planFirstStage(facts, DIGEST);
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
  // Dominator's TLS files; the key readable by root only.
  assert.equal((m.get('/etc/ssl/CA.pem') as { mode: number }).mode, 0o644);
  assert.equal((m.get('/etc/ssl/installer/key.pem') as { mode: number }).mode, 0o600);
});

test('the second stage: Node, the bundle, its threads and the packages it loads, under the mount point, nothing else', () => {
  const second = planSecondStage(facts);
  assert.deepEqual(
    second.map((e) => `${e.type} ${e.path}`),
    [
      'file /usr/lib/cradle/node',
      'file /usr/lib/cradle/cradle.mjs',
      // Beside the bundle, where util/threads.ts threadModule finds a thread's own module.
      'file /usr/lib/cradle/tree-writer-thread.mjs',
      'dir /usr/lib/cradle/node_modules',
      'dir /usr/lib/cradle/node_modules/@lydell',
      'dir /usr/lib/cradle/node_modules/@lydell/node-pty',
      // Beside the bundle, where Node's resolution from /usr/lib/cradle finds it.
      'file /usr/lib/cradle/node_modules/@lydell/node-pty/index.js',
    ],
  );
  assert.equal((second[0] as { mode: number }).mode, 0o755);
  // The first stage: the mount point, the links to it, the digest; none of the second's files.
  const first = byPath(planFirstStage(facts, DIGEST));
  assert.deepEqual(first.get(SECOND_STAGE_MOUNT), { type: 'dir', path: SECOND_STAGE_MOUNT });
  assert.deepEqual(first.get('/usr/bin/node'), {
    type: 'symlink',
    path: '/usr/bin/node',
    target: '../lib/cradle/node',
  });
  assert.equal(new TextDecoder().decode((first.get(SECOND_STAGE_DIGEST) as { data: Uint8Array }).data), `${DIGEST}\n`);
  assert.equal(
    new TextDecoder().decode((first.get('/etc/installer/modules.stage2') as { data: Uint8Array }).data),
    'loop\nsquashfs\n',
  );
  assert.deepEqual(
    [...first.keys()].filter((p) => p.startsWith(`${SECOND_STAGE_MOUNT}/`)),
    [],
  );
  assert.throws(() => planFirstStage(facts, 'not-a-digest'), /64 hex digits of SHA-256/);
});

test('each stage lists every parent directory before its children, each path once', () => {
  for (const [plan, top] of [
    [planFirstStage(facts, DIGEST), '/'],
    [planSecondStage(facts), SECOND_STAGE_MOUNT],
  ] as const) {
    const seen = new Set<string>([top]);
    for (const e of plan) {
      assert.ok(!seen.has(e.path), `${e.path} twice`);
      const parent = e.path.slice(0, e.path.lastIndexOf('/')) || '/';
      assert.ok(seen.has(parent), `${e.path} before ${parent}`);
      seen.add(e.path);
    }
  }
});

test('pre-injected configuration must be plain file names', () => {
  assert.throws(
    () => planFirstStage({ ...facts, tftpdata: [{ name: '../etc/passwd', data: new Uint8Array() }] }, DIGEST),
    /plain file name/,
  );
});
