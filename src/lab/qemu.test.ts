import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ptyDevice } from './qemu-console.ts';
import { OVMF_CODE, type QemuMachine, qemuArgs } from './qemu.ts';

test('a BIOS machine: network boot first, then its disk; the default CPU model under TCG', () => {
  assert.deepEqual(
    qemuArgs({
      name: 'lab1',
      nics: [{ tap: 'tap-lab1-0', mac: '52:54:00:77:00:01' }],
      disks: ['/lab/lab1.disk'],
      firmware: 'bios',
      memoryMiB: 1536,
      accel: 'tcg',
    }),
    [
      '-name',
      'lab1',
      '-m',
      '1536',
      '-smp',
      '2',
      '-nographic',
      '-nodefaults',
      '-serial',
      'stdio',
      '-vga',
      'none',
      '-accel',
      'tcg,thread=multi',
      '-netdev',
      'tap,id=n0,ifname=tap-lab1-0,script=no,downscript=no',
      '-device',
      'virtio-net-pci,netdev=n0,mac=52:54:00:77:00:01,bootindex=1',
      '-drive',
      'file=/lab/lab1.disk,if=none,id=d0,format=raw,cache=unsafe,discard=unmap',
      '-device',
      'virtio-blk-pci,drive=d0,bootindex=2',
    ],
  );
});

test('a UEFI machine: OVMF with a variable store of its own; only the first NIC boots', () => {
  const args = qemuArgs({
    name: 'lab2',
    nics: [
      { tap: 't0', mac: '52:54:00:77:00:02' },
      { tap: 't1', mac: '52:54:00:77:01:02' },
    ],
    disks: ['/d'],
    firmware: 'uefi',
    memoryMiB: 2048,
    accel: 'kvm',
    uefiVars: '/lab/lab2.vars',
  });
  assert.ok(args.includes(`if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`));
  assert.ok(args.includes('if=pflash,format=raw,unit=1,file=/lab/lab2.vars'));
  assert.ok(args.includes('virtio-net-pci,netdev=n1,mac=52:54:00:77:01:02'));
  assert.equal(args[args.indexOf('-accel') + 1], 'kvm');
  assert.throws(
    () => qemuArgs({ name: 'x', nics: [], disks: [], firmware: 'uefi', memoryMiB: 512, accel: 'tcg' }),
    /variable store/,
  );
});

test('a head node: no network boot; its disks in order, then the CD (blank disks fall through to it)', () => {
  const args = qemuArgs({
    name: 'head',
    nics: [
      { tap: 'tap-pub', mac: '52:54:00:10:00:01' },
      { tap: 'tap-prov', mac: '52:54:00:10:00:02' },
    ],
    disks: ['/lab/a.raw', '/lab/b.raw'],
    firmware: 'bios',
    memoryMiB: 2048,
    accel: 'tcg',
    cdrom: '/lab/head.iso',
    netBoot: false,
  });
  const devices = args.filter((_, i) => args[i - 1] === '-device');
  assert.deepEqual(devices, [
    'virtio-net-pci,netdev=n0,mac=52:54:00:10:00:01',
    'virtio-net-pci,netdev=n1,mac=52:54:00:10:00:02',
    'virtio-blk-pci,drive=d0,bootindex=2',
    'virtio-blk-pci,drive=d1,bootindex=3',
    'ide-cd,drive=cd,bootindex=4',
  ]);
  assert.ok(args.includes('file=/lab/head.iso,if=none,id=cd,format=raw,media=cdrom,readonly=on'));
});

test('a PTY console: QEMU makes a PTY and logs the console itself, in place of stdio', () => {
  const machine: QemuMachine = {
    name: 'head',
    nics: [],
    disks: [],
    firmware: 'bios',
    memoryMiB: 2048,
    accel: 'tcg',
    console: 'pty',
    consoleLog: '/lab/logs/head,1.log',
  };
  const args = qemuArgs(machine);
  assert.deepEqual(args.slice(0, 14), [
    '-name',
    'head',
    '-m',
    '2048',
    '-smp',
    '2',
    '-nographic',
    '-nodefaults',
    '-chardev',
    'pty,id=con0,logfile=/lab/logs/head,,1.log,logappend=on',
    '-serial',
    'chardev:con0',
    '-vga',
    'none',
  ]);
  assert.equal(args.filter((a) => a === 'stdio').length, 0);
  assert.deepEqual(qemuArgs({ ...machine, console: 'stdio' }).slice(8, 10), ['-serial', 'stdio']);
  assert.throws(
    () => qemuArgs({ ...machine, consoleLog: undefined }),
    /head: a PTY console needs its log file \(consoleLog\)/,
  );
});

test("QEMU's word for the PTY it made, among its other messages", () => {
  assert.equal(
    ptyDevice('qemu-system-x86_64: warning: x\nchar device redirected to /dev/pts/17 (label con0)\n'),
    '/dev/pts/17',
  );
  assert.equal(ptyDevice('char device redirected to /dev/pts/3 (label other)\n'), undefined);
  assert.equal(ptyDevice('char device redirected to /dev/pts/'), undefined);
});
