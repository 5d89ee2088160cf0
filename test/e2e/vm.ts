// What the VM tests share: the accelerator, a one-machine lab of the test's own (its namespace
// named after the test process, so a killed run's is recognised and removed by the next lab), and
// the machine's console for assertions and failure messages.
import fs from 'node:fs';
import { newestKernel } from '../../src/initramfs/build.ts';
import { chooseAccelerator } from '../../src/lab/accel.ts';
import { Lab, LAB_DEFAULTS, type LabOptions } from '../../src/lab/lab.ts';
import type { Timeline } from '../../src/lab/report.ts';

/** KVM where a smoke boot proves it works (CI runners with real KVM), else emulation. */
export async function vmAccelerator(canRun: boolean): Promise<'kvm' | 'tcg'> {
  return canRun ? (await chooseAccelerator(newestKernel())).accel : 'tcg';
}

export function testLab(dir: string, tag: string, extra: Partial<LabOptions>): Lab {
  return new Lab({ ...LAB_DEFAULTS, dir, machines: 1, memoryMiB: 1536, namespace: `cradle-e2e-${tag}-${process.pid}`, log: () => {}, ...extra });
}

export function consoleOf(lab: Lab): string {
  return fs.readFileSync(lab.machines[0].serialLog, 'latin1');
}

export function explain(t: Timeline, lab: Lab): string {
  return `${t.hostname} ended ${t.state}${t.problem ? ` (${t.problem})` : ''}; console tail:\n${consoleOf(lab).split('\n').slice(-60).join('\n')}`;
}
