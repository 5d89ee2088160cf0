// cradle-test-minutes: 45
// VM end to end (QEMU under TCG), a cluster from one ISO: `cradle lab --head-node`'s own parts. A
// head node with two blank 30 GiB disks (only both pass the 40 GB rule) and a NIC on the lab's
// public and provisioning networks boots the head-node ISO, whose answers are on it, installs with
// no question (LVM across both disks), restarts through GRUB, moves its database into PostgreSQL
// and serves. Checked on its running system, at its serial console as root with the answers'
// password: the layout, host name, time zone, keymap, the saved answers and kickstart, the
// database moved row for row, the services. Then one compute node network-boots from the head
// node alone (no other DHCP server on that network) and installs its compute node group's image;
// the head node's own database says it is healthy, through its API and at its console.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { logIn, runAtConsole } from '../../src/lab/head-shell.ts';
import { headLabFixture, headLabSkip } from './head-lab-fixture.ts';

const tail = (file: string) => fs.readFileSync(file, 'latin1').split('\n').slice(-60).join('\n');

describe('VM: a cluster from one ISO (head node, then a compute node it births)', { skip: headLabSkip }, () => {
  const { lab, session } = headLabFixture('headzt', {
    compute: 1,
  });
  const progress = { timeoutSeconds: 2400, log: () => {} };

  test('zero-touch from the ISO: the head node serves; its compute node reports healthy in its database', {
    timeout: 2_700_000,
  }, async () => {
    await lab.prepare();
    session.start();
    const head = await session.waitServing(progress);
    assert.ok(head.servingAt, `the head node is not serving: ${head.problem}\n${tail(lab.plan.head.serialLog)}`);
    assert.ok(session.fingerprint, 'the setup printed its server certificate fingerprint, and the lab pinned it');
    for (const phase of ['isoBootedAt', 'setupDoneAt', 'installedAt', 'dbMovedAt', 'firstBootAt'] as const)
      assert.ok(head[phase], `the console showed no ${phase}`);

    // Root logs in with the answers' password: the password was applied.
    const m = lab.head!;
    await logIn(m, lab.password);
    const at = (command: string) => runAtConsole(m, command, 120_000);
    // /boot a plain partition, / and /depot logical volumes of the group across both disks.
    assert.match(await at('findmnt -no SOURCE /boot'), /^\/dev\/vda\d+$/m);
    assert.match(await at('findmnt -no SOURCE /'), /^\/dev\/mapper\/cradle-root$/m);
    assert.match(await at('findmnt -no SOURCE /depot'), /^\/dev\/mapper\/cradle-depot$/m);
    assert.match(
      await at('pvs --noheadings -o pv_name,vg_name | tr -s " "'),
      /\/dev\/vda\d+ cradle[\s\S]*\/dev\/vdb\d* cradle/,
    );
    assert.match(
      await at('hostname; readlink /etc/localtime; cat /etc/vconsole.conf'),
      /^head\r?\n\/usr\/share\/zoneinfo\/Europe\/Berlin\r?\nKEYMAP=de$/m,
    );
    // The answers (password hashed) and the kickstart, saved for a replay.
    assert.match(
      await at(
        'grep -c "" /root/cradle-ks.cfg >/dev/null && grep -E "^(keyboard|timezone):" /root/cradle-answers.yaml',
      ),
      /keyboard: de\r?\ntimezone: Europe\/Berlin/,
    );
    assert.doesNotMatch(await at('cat /root/cradle-answers.yaml'), new RegExp(lab.password), 'no plain password saved');
    // The database moved into PostgreSQL, checked row for row, the compute node's row with it.
    assert.match(
      await at('journalctl -b -u cradle-first-boot -o cat | grep "checked row for row"'),
      /machine database copied in PostgreSQL .*checked row for row: .*machines 1/,
    );
    assert.match(await at('ls /var/lib/cradle'), /first-boot\.done[\s\S]*inventory\.db\.before-postgresql/);
    assert.match(
      await at('systemctl is-active postgresql cradle-server cradle-imageserver | tr "\\n" " "'),
      /active active active/,
    );

    // The compute node: it network-boots from the head node alone and installs its group's image.
    lab.powerOnComputes();
    const run = await session.followCompute(progress);
    const [c] = run.compute;
    const computeLog = lab.plan.compute[0].serialLog;
    assert.equal(c.state, 'healthy', `compute1 ended ${c.state} (${c.problem ?? ''}):\n${tail(computeLog)}`);
    assert.ok(c.progress?.result?.ok, 'the installer reported its result to the head node');
    // Its installed system reported in, and the head node's database answered it.
    await lab.computes
      .get('compute1')!
      .waitFor(/cradle-report: reported in to http:\/\/10\.1\.0\.1:6977 .*"state":"healthy"/, 300_000);
    // The same at the head node's console, from PostgreSQL.
    assert.match(await at('cradle machine list | grep compute1'), /compute1\s.*healthy/);
    // The dashboard, for a browser on the host, through the lab's forward.
    const url = await session.startDashboard(0);
    const page = await fetch(new URL('/', url));
    assert.equal(page.status, 200, 'the dashboard page');
    const rows = await fetch(new URL('/fragments/machines', url));
    assert.equal(rows.status, 200);
    assert.match(await rows.text(), /compute1/);
    const api = await fetch(new URL('/api/v1/machines', url));
    assert.match(await api.text(), /"hostname":"compute1"/);
  });
});
