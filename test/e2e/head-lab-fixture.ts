// What the head-node lab's VM tests share: what they need on the host, the accelerator, and one
// head-node lab of the test's own (its directory and namespace named after the test and process,
// so a killed run's namespace is recognised and removed by the next lab), stopped and removed
// after the test's suite.
import fs from 'node:fs';
import { after } from 'node:test';
import { HEAD_LAB_DEFAULTS, HeadLab, type HeadLabOptions } from '../../src/lab/head-lab.ts';
import { HeadLabSession } from '../../src/lab/head-lab-run.ts';
import { isRoot, removeWorkDir, tmpDir } from '../helpers.ts';
import { vmAccelerator } from './vm.ts';

const canRun =
  isRoot() &&
  fs.existsSync('/usr/bin/qemu-system-x86_64') &&
  fs.existsSync('/usr/bin/grub-mkrescue') &&
  fs.existsSync('/usr/bin/mmdebstrap');
/** The head node's OS kit is built by mmdebstrap, its ISO by grub-mkrescue. */
export const headLabSkip = !canRun && 'needs root, qemu-system-x86, grub-mkrescue and mmdebstrap';
const accel = await vmAccelerator(canRun);

/** Call inside a describe: the lab and its session, destroyed with their directory after it. */
export function headLabFixture(tag: string, extra: Partial<HeadLabOptions>): { lab: HeadLab; session: HeadLabSession } {
  const dir = tmpDir(`cradle-e2e-${tag}-`);
  const lab = new HeadLab({
    ...HEAD_LAB_DEFAULTS,
    dir,
    accel,
    namespace: `cradle-e2e-${tag}-${process.pid}`,
    log: () => {},
    ...extra,
  });
  const session = new HeadLabSession(lab);
  after(async () => {
    await session.stop();
    removeWorkDir(dir);
  });
  return { lab, session };
}
