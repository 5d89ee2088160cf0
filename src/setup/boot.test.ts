// The head node's boot loader, planned: grub.cfg (golden) finds /boot by its label and boots the
// root volume; an OS image without a kernel, without GRUB for the firmware or without lvm2 is
// refused with the Debian package to add.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Entry, Manifest } from '../image/model/manifest.ts';
import { parseAnswers } from './answers.ts';
import { bootInfoFor, headGrubConfig } from './boot.ts';
import { parseFacts } from './facts.ts';
import { planSetup } from './plan.ts';

const testdata = (f: string) => path.join(import.meta.dirname, 'testdata', f);

function manifest(paths: string[]): Manifest {
  const entries = paths.map(
    (p) => ({ path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0.0', size: 0 }) as unknown as Entry,
  );
  return { format: 1, entries } as unknown as Manifest;
}

const bootable = [
  'boot/vmlinuz-6.1.0-50-amd64',
  'boot/initrd.img-6.1.0-50-amd64',
  'usr/sbin/grub-install',
  'usr/lib/grub/i386-pc',
  'usr/lib/grub/x86_64-efi',
  'usr/sbin/lvm',
];

describe("the head node's boot loader", () => {
  it('grub.cfg: /boot by its label, the root volume, the serial console', () => {
    const plan = planSetup(
      parseAnswers(fs.readFileSync(testdata('head.yaml'), 'utf8')),
      parseFacts(fs.readFileSync(testdata('two-disks.json'), 'utf8'), 'two-disks.json'),
      { salt: 'x' },
    );
    const cfg = headGrubConfig(bootInfoFor(manifest(bootable), 'uefi'), plan.storage);
    const file = testdata('grub-head.cfg');
    if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, cfg);
    assert.equal(cfg, fs.readFileSync(file, 'utf8'));
  });

  it('refuses an OS image it could not boot, naming what is missing', () => {
    const without = (p: string) => manifest(bootable.filter((x) => !x.startsWith(p)));
    assert.throws(() => bootInfoFor(without('boot/'), 'bios'), /has no kernel in \/boot/);
    assert.throws(
      () => bootInfoFor(without('usr/lib/grub/i386-pc'), 'bios'),
      /no grub-install for BIOS \(Debian: grub-pc-bin\)/,
    );
    assert.throws(() => bootInfoFor(without('usr/sbin/lvm'), 'uefi'), /has no lvm \(Debian: lvm2\)/);
  });
});
