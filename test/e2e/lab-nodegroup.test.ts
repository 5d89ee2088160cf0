// VM end to end with kits and a node group (QEMU under TCG): the demo OS (Debian with systemd)
// built into an OS kit, an add-on kit whose component adds a file and enables a systemd unit, both
// added to the lab's depot, a `compute` node group made of them with its own storage layout, and
// its image built. A lab machine that belongs to the group and names neither image nor layout
// installs the group's image with the group's layout; its running system has the component's
// file, and the component's unit runs at boot and says so on the console.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { debianRootfs } from '../../src/lab/debian-rootfs.ts';
import { labLayout, runLab } from '../../src/lab/lab.ts';
import { cradleBin, isRoot, removeWorkDir, tmpDir } from '../helpers.ts';
import { addDemoAndHelloKits, HELLO_CONF } from '../support/hello-kit.ts';
import { consoleOf, explain, testLab, vmAccelerator } from './vm.ts';

const run = promisify(execFile);
const canRun = isRoot() && fs.existsSync('/usr/bin/qemu-system-x86_64') && fs.existsSync('/usr/bin/mmdebstrap');
const accel = await vmAccelerator(canRun);
const skip = !canRun && 'needs root, qemu-system-x86 and mmdebstrap';

describe('VM: a node group built from kits', { skip }, () => {
  const dir = tmpDir('cradle-e2e-nodegroup-');
  after(() => removeWorkDir(dir));

  test('a machine of the group installs its image and layout; the component’s file and unit are there', {
    timeout: 1_800_000,
  }, async () => {
    // The lab's directory is its depot (its image store is DIR/images) and holds its database.
    const env = { ...process.env, CRADLE_DEPOT: dir, CRADLE_DB: `sqlite:${path.join(dir, 'inventory.db')}` };
    const cradle = async (...args: string[]) => (await run(cradleBin, args, { env, encoding: 'utf8' })).stdout;
    const layout = path.join(dir, 'compute-layout.json');
    fs.writeFileSync(layout, JSON.stringify(labLayout({ encrypt: false, kexec: true, firmware: 'bios' })));
    await addDemoAndHelloKits(cradle, dir, debianRootfs('demo'));
    await cradle('nodegroup', 'add', 'compute', '--kit', 'demo', '--kit', 'hello', '--layout', layout);
    assert.match(await cradle('nodegroup', 'build', 'compute'), /built nodegroup\/compute\//);

    const lab = testLab(dir, 'ng', { image: 'demo', diskGiB: 6, nodeGroup: 'compute' });
    try {
      const [t] = await runLab(lab, { rebirth: false, timeoutSeconds: 1500, accel });
      assert.equal(t.state, 'healthy', explain(t, lab));
      await lab.machines[0].running!.waitFor(new RegExp(`CRADLE-HELLO-KIT: ${HELLO_CONF}`), 120_000);
    } finally {
      await lab.destroy();
    }
    const log = consoleOf(lab);
    assert.match(log, /cradle-report: mounts: .*\/home \/dev\/vda\d ext4/, "the group's layout: /home of its own");
    assert.match(await cradle('machine', 'show', 'lab1'), /group: {5}compute/);
  });
});
