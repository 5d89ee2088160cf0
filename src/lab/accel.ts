// KVM or emulation (TCG) for the lab's machines. /dev/kvm existing proves nothing: on some hosts
// (a PVM-only KVM inside a VM, see the lab notes) a stock kernel hangs under it. KVM is used only
// when the CPU has hardware virtualisation and a smoke boot of a real kernel prints its marker.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MARKER, markerInitramfs } from './marker-initramfs.ts';

export async function chooseAccelerator(kernel: string, timeoutMs = 30_000): Promise<{ accel: 'kvm' | 'tcg'; why: string }> {
  if (!fs.existsSync('/dev/kvm')) return { accel: 'tcg', why: 'no /dev/kvm' };
  if (!/\b(vmx|svm)\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'))) return { accel: 'tcg', why: 'the CPU has no vmx or svm flag' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-kvm-smoke-'));
  try {
    const initrd = path.join(dir, 'initrd');
    fs.writeFileSync(initrd, markerInitramfs());
    const qemu = spawn('qemu-system-x86_64', ['-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nographic', '-no-reboot', '-net', 'none', '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      qemu.stdout.on('data', (c: Buffer) => {
        out += c.toString('latin1');
        if (out.includes(MARKER)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      qemu.once('exit', () => {
        clearTimeout(timer);
        resolve(out.includes(MARKER));
      });
    });
    qemu.kill('SIGKILL');
    return ok ? { accel: 'kvm', why: 'a KVM smoke boot printed its marker' } : { accel: 'tcg', why: `a KVM smoke boot did not finish within ${timeoutMs / 1000} s` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
