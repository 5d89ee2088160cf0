import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OVMF_CODE, qemuArgs } from './qemu.ts';

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
