// KVM or emulation (TCG) for the lab's machines. /dev/kvm existing proves nothing: on some hosts
// (a PVM-only KVM inside a VM, see the lab notes) a stock kernel hangs under it. KVM is used only
// when the CPU has hardware virtualisation and a smoke boot of a real kernel prints its marker.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MARKER, markerInitramfs } from './marker-initramfs.ts';
import { RunningMachine } from './qemu.ts';

export async function chooseAccelerator(
  kernel: string,
  timeoutMs = 30_000,
): Promise<{ accel: 'kvm' | 'tcg'; why: string }> {
  if (!fs.existsSync('/dev/kvm')) return { accel: 'tcg', why: 'no /dev/kvm' };
  if (!/\b(vmx|svm)\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8')))
    return { accel: 'tcg', why: 'the CPU has no vmx or svm flag' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-kvm-smoke-'));
  try {
    const initrd = path.join(dir, 'initrd');
    fs.writeFileSync(initrd, markerInitramfs());
    const qemu = new RunningMachine(
      [
        'qemu-system-x86_64',
        '-accel',
        'kvm',
        '-cpu',
        'host',
        '-m',
        '256',
        '-nographic',
        '-no-reboot',
        '-net',
        'none',
        '-kernel',
        kernel,
        '-initrd',
        initrd,
        '-append',
        'console=ttyS0 panic=-1 quiet',
      ],
      path.join(dir, 'console.log'),
    );
    try {
      await qemu.waitFor(new RegExp(MARKER), timeoutMs);
      return { accel: 'kvm', why: 'a KVM smoke boot printed its marker' };
    } catch {
      return { accel: 'tcg', why: `a KVM smoke boot did not print its marker within ${timeoutMs / 1000} s` };
    } finally {
      await qemu.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
