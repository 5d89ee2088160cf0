import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Executor } from '../system/executor.ts';
import { BOOT_ENTRY_LABEL, bootNextToInstalledSystem, parseBootEntries } from './bootloader.ts';

// efibootmgr 18 (Debian 12) on OVMF: the label, a tab, the device path.
const LISTING = [
  'BootCurrent: 0003',
  'Timeout: 0 seconds',
  'BootOrder: 0003,0001,0004,0000',
  'Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)',
  'Boot0001* UEFI PXEv4 (MAC:525400770001)\tPciRoot(0x0)/Pci(0x1,0x0)/MAC(525400770001,0x1)/IPv4(0.0.0.0,0x0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0)',
  'Boot000A  Cradle installed system\tHD(1,GPT,0b1e…)/File(\\EFI\\BOOT\\BOOTX64.EFI)',
].join('\n');

test('efibootmgr listings: entries with their labels, active or not', () => {
  assert.deepEqual(parseBootEntries(LISTING), [
    { num: '0000', label: 'UiApp' },
    { num: '0001', label: 'UEFI PXEv4 (MAC:525400770001)' },
    { num: '000A', label: BOOT_ENTRY_LABEL },
  ]);
});

test('a dry run shows the UEFI entry the installer would make, replacing an older one', async () => {
  const exec = new Executor({ dryRun: true, log: () => {} });
  // Reading is real even in a dry run; here there are no EFI variables, so stub only the listing.
  exec.read = async () => ({ stdout: LISTING, stderr: '' });
  await bootNextToInstalledSystem(exec, '/dev/vda', '/dev/vda1');
  assert.deepEqual(exec.skipped, [
    'efibootmgr --quiet --bootnum 000A --delete-bootnum',
    'efibootmgr --create-only --disk /dev/vda --part 1 --label Cradle installed system --loader \\EFI\\BOOT\\BOOTX64.EFI',
  ]);
  await assert.rejects(bootNextToInstalledSystem(exec, '/dev/vda', '/dev/mapper/x'), /partition number/);
});
