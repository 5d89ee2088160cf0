// The head-node ISO's GRUB menu (golden): the setup first, quiet kernel (loglevel=3, so no driver
// message lands in the wizard's questions on ttyS0), the answers it carries and the switches given
// (cradle.wipe=yes, cradle.reboot=no) on its line; the plain installer second; both load the
// image's two stages, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headNodeIsoEntries, isoGrubConfig } from './iso.ts';

test("the head-node ISO's grub.cfg: the setup entry with its switches, then the installer", () => {
  assert.equal(
    isoGrubConfig(headNodeIsoEntries({ answers: 'answers.yaml', setupArgs: 'cradle.wipe=yes cradle.reboot=no' })),
    [
      'serial --unit=0 --speed=115200',
      'terminal_input console serial',
      'terminal_output console serial',
      'set timeout=3',
      "menuentry 'Cradle head-node setup' {",
      '\tlinux /vmlinuz console=tty0 console=ttyS0,115200n8 loglevel=3 cradle.setup cradle.answers=/cradle/answers.yaml cradle.wipe=yes cradle.reboot=no',
      '\tinitrd /initrd.img /stage2.img',
      '}',
      "menuentry 'Cradle installer' {",
      '\tlinux /vmlinuz console=tty0 console=ttyS0,115200n8',
      '\tinitrd /initrd.img /stage2.img',
      '}',
      '',
    ].join('\n'),
  );
});

test('an image of one initrd (built before the second stage) boots with that alone', () => {
  assert.match(isoGrubConfig(headNodeIsoEntries({}), ['initrd.img']), /^\tinitrd \/initrd\.img$/m);
});

test('without answers on the ISO the setup entry names none (the wizard asks)', () => {
  const [setup] = headNodeIsoEntries({});
  assert.equal(setup.kernelArgs, 'console=tty0 console=ttyS0,115200n8 loglevel=3 cradle.setup');
});
