// The status snapshot and page from an install's facts, without an install: what an operator
// sees at each point (a phase running with its bytes, a failure, a hold), and nothing from the
// log can inject markup.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_OPTIONS } from '../installer/context.ts';
import { InstallerLog } from '../installer/log.ts';
import { newContext } from '../installer/daemon.ts';
import { statusPage } from './page.ts';
import { snapshotOf, type SnapshotInput } from './snapshot.ts';
import { RebootGate } from '../installer/reboot.ts';

const MiB = 1024 * 1024;

function installing() {
  const ctx = newContext({ ...DEFAULT_OPTIONS, dryRun: true }, new InstallerLog({ stderr: false }));
  ctx.record.interfaces = [{ name: 'eth0', mac: 'de:ad:be:ef:00:01', busId: '0000:00:03.0', driver: 'virtio_net' }];
  ctx.record.activeInterface = 'eth0';
  ctx.record.drives = [
    {
      name: 'vda',
      path: '/dev/vda',
      sizeBytes: 8 * 1024 * MiB,
      model: 'QEMU HARDDISK',
      serial: 'S1',
      busPath: 'pci',
      rotational: false,
    },
  ];
  ctx.record.plan = {
    firmware: 'bios',
    encrypt: true,
    drives: [
      {
        device: '/dev/vda',
        sizeBytes: 8 * 1024 * MiB,
        partitions: [
          { number: 1, name: 'bios-boot', type: 'bios', startBytes: MiB, sizeBytes: MiB, contentBytes: 0 },
          { number: 2, name: 'rootfs', type: 'linux', startBytes: 2 * MiB, sizeBytes: 4096 * MiB, contentBytes: 0 },
          { number: 3, name: 'home', type: 'linux', startBytes: 4098 * MiB, sizeBytes: 1024 * MiB, contentBytes: 0 },
        ],
      },
    ],
    fileSystems: [
      {
        mountPoint: '/',
        type: 'ext4',
        label: 'rootfs',
        uuid: 'u1',
        partition: '/dev/vda2',
        drive: '/dev/vda',
        device: '/dev/vda2',
        mountWhileInstalling: true,
        sizeBytes: 4096 * MiB,
        contentBytes: 0,
      },
      {
        mountPoint: '/home',
        type: 'ext4',
        label: 'home',
        uuid: 'u2',
        partition: '/dev/vda3',
        drive: '/dev/vda',
        device: '/dev/mapper/luks-u2',
        luks: { uuid: 'l2', name: 'luks-u2', device: '/dev/vda3' },
        mountWhileInstalling: true,
        sizeBytes: 1024 * MiB,
        contentBytes: 0,
      },
    ],
    mounts: [],
  };
  ctx.progress.emit({ type: 'phase', phase: 'network', state: 'started' });
  ctx.progress.emit({ type: 'phase', phase: 'network', state: 'done', seconds: 1.25 });
  ctx.progress.emit({ type: 'phase', phase: 'tools', state: 'started' });
  ctx.progress.emit({
    type: 'progress',
    phase: 'tools',
    bytesDone: 100 * MiB,
    bytesTotal: 400 * MiB,
    bytesPerSecond: 20 * MiB,
    etaSeconds: 15,
  });
  ctx.log.info('loading <script>alert(1)</script>');
  return ctx;
}

const input = (ctx: ReturnType<typeof installing>, over: Partial<SnapshotInput> = {}): SnapshotInput => ({
  view: ctx,
  attempt: 1,
  hostname: 'fallback',
  heldBy: '',
  retryPossible: false,
  addresses: { eth0: ['10.0.0.17/24'] },
  shells: [],
  now: performance.now(),
  logLines: 50,
  ...over,
});

test('the snapshot while a phase runs: its bytes, phase times, drives with mount points and encryption, network', () => {
  const s = snapshotOf(input(installing()));
  assert.equal(s.state, 'installing');
  assert.equal(s.phase, 'tools');
  assert.deepEqual(
    s.phases.map((p) => [p.name, p.state]),
    [
      ['network', 'done'],
      ['tools', 'started'],
    ],
  );
  assert.equal(s.phases[0].seconds, 1.25);
  assert.deepEqual(s.progress, {
    phase: 'tools',
    bytesDone: 100 * MiB,
    bytesTotal: 400 * MiB,
    bytesPerSecond: 20 * MiB,
    etaSeconds: 15,
  });
  assert.deepEqual(
    s.drives[0].partitions.map((p) => [p.device, p.mountPoint, p.type, p.encrypted]),
    [
      ['/dev/vda1', null, null, false],
      ['/dev/vda2', '/', 'ext4', false],
      ['/dev/vda3', '/home', 'ext4', true],
    ],
  );
  assert.deepEqual(s.network.interfaces, [
    { name: 'eth0', mac: 'de:ad:be:ef:00:01', driver: 'virtio_net', addresses: ['10.0.0.17/24'] },
  ]);
});

test('the page: phase with a progress bar, rate and ETA; drives; the log escaped; no script', () => {
  const html = statusPage(snapshotOf(input(installing())), new Date('2026-11-23T00:00:00Z'));
  assert.match(html, /<span class="state installing" id="state">installing<\/span>/);
  assert.match(html, /Phase <b>tools<\/b>/);
  assert.match(html, /<progress id="progress" max="419430400" value="104857600"><\/progress>/);
  assert.match(html, /100\.0 MiB of 400\.0 MiB \(25%\), 20\.0 MiB\/s, ETA 15 s/);
  assert.match(
    html,
    /<td>&nbsp;&nbsp;\/dev\/vda3<\/td><td class="num">1\.00 GiB<\/td><td>\/home<\/td><td>ext4<\/td><td>LUKS2<\/td>/,
  );
  assert.match(html, /eth0 \(active\)/);
  assert.match(html, /loading &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.doesNotMatch(html, /<script/i);
});

test('a failure: the error, the hold and the retry on the page; the state succeeded after success', () => {
  const ctx = installing();
  ctx.progress.emit({ type: 'phase', phase: 'tools', state: 'failed', seconds: 3 });
  ctx.progress.result(false, 4.5, { error: 'cannot reach the image server 10.0.0.1:6971' });
  const html = statusPage(snapshotOf(input(ctx, { heldBy: 'alice', retryPossible: true })), new Date());
  assert.match(html, /class="state failed"/);
  assert.match(html, /Failed after 5 s: <b>cannot reach the image server 10\.0\.0\.1:6971<\/b>/);
  assert.match(html, /held<\/b> by alice/);
  assert.match(html, /can be retried/);
  const ok = installing();
  ok.progress.result(true, 61, {});
  assert.equal(snapshotOf(input(ok)).state, 'succeeded');
  assert.match(statusPage(snapshotOf(input(ok)), new Date()), /Installed in 1 min 01 s/);
});

test('the reboot gate: a hold until released; retry and reboot-now only while waiting', () => {
  const lines: string[] = [];
  const gate = new RebootGate((l) => lines.push(l));
  gate.hold('alice');
  assert.equal(gate.heldBy, 'alice');
  gate.release('bob');
  assert.equal(gate.held, false);
  assert.deepEqual(lines, ['reboot held by alice until released', 'reboot released by bob']);
  assert.equal(gate.retry('alice'), false, 'no retry while installing');
  assert.equal(gate.rebootNow('alice'), false, 'no reboot-now while installing');
  gate.failedWaiting = true;
  gate.waiting = true;
  assert.equal(gate.retry('alice'), true);
  assert.equal(gate.interrupted, true);
  assert.equal(gate.takeRetry(), true);
  assert.equal(gate.takeRetry(), false);
});
