// What the VM tests share: the accelerator, a one-machine lab of the test's own (its namespace
// named after the test process, so a killed run's is recognised and removed by the next lab), and
// the machine's console for assertions and failure messages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import pty from '@lydell/node-pty';
import { newestKernel } from '../../src/initramfs/build.ts';
import { chooseAccelerator } from '../../src/lab/accel.ts';
import { Lab, LAB_DEFAULTS, type LabOptions } from '../../src/lab/lab.ts';
import type { Timeline } from '../../src/lab/report.ts';
import { cradleBin, curlStatus } from '../helpers.ts';

/** KVM where a smoke boot proves it works (CI runners with real KVM), else emulation. */
export async function vmAccelerator(canRun: boolean): Promise<'kvm' | 'tcg'> {
  return canRun ? (await chooseAccelerator(newestKernel())).accel : 'tcg';
}

export function testLab(dir: string, tag: string, extra: Partial<LabOptions>): Lab {
  return new Lab({
    ...LAB_DEFAULTS,
    dir,
    machines: 1,
    memoryMiB: 1536,
    namespace: `cradle-e2e-${tag}-${process.pid}`,
    log: () => {},
    ...extra,
  });
}

export function consoleOf(lab: Lab): string {
  return fs.readFileSync(lab.machines[0].serialLog, 'latin1');
}

export function explain(t: Timeline, lab: Lab): string {
  return `${t.hostname} ended ${t.state}${t.problem ? ` (${t.problem})` : ''}; console tail:\n${consoleOf(lab).split('\n').slice(-60).join('\n')}`;
}

/**
 * An operator at a failed installer, from the lab network: the status page without a
 * certificate, the RPC with the lab operator's (refused without), a remote shell in a real
 * terminal (the installer image's PTY addon at work), then "reboot now".
 */
export async function operatorLooksAt(lab: Lab): Promise<void> {
  const ip = lab.machines[0].ip;
  const pki = lab.pki!;
  const ns = lab.opts.namespace;
  const curl = (args: string[]) => curlStatus(['--max-time', '30', ...args], ['ip', 'netns', 'exec', ns]);
  const page = await curl([`http://${ip}:6978/`]);
  assert.equal(page.status, 200);
  assert.match(page.body, /class="state failed"/);
  assert.match(page.body, /10\.77\.0\.1:6971|image server/);
  // Every installer serves the one certificate named `installer`: curl is told where it is.
  const tls = ['--cacert', pki.ca, '--connect-to', `installer:6978:${ip}:6978`];
  const rpc = (method: string, p: string, who = ['--cert', pki.operator.cert, '--key', pki.operator.key]) =>
    curl([...tls, ...who, '-X', method, `https://installer:6978${p}`]);
  const refused = await rpc('GET', '/api/v1/status', []);
  assert.equal(refused.status, 403);
  assert.match(refused.body, /client certificate required/);
  const answer = await rpc('GET', '/api/v1/status');
  assert.equal(answer.status, 200);
  const status = JSON.parse(answer.body);
  assert.equal(status.state, 'failed');
  assert.equal(status.reboot.retryPossible, true);

  const term = pty.spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      cradleBin,
      'installer-shell',
      ip,
      '--tls-ca',
      pki.ca,
      '--tls-cert',
      pki.operator.cert,
      '--tls-key',
      pki.operator.key,
    ],
    { cols: 100, rows: 30, env: { ...process.env, TERM: 'xterm' } as Record<string, string> },
  );
  let screen = '';
  term.onData((d) => (screen += d));
  const exit = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
  const until = async (re: RegExp) => {
    for (const end = Date.now() + 60_000; !re.test(screen) && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 100));
    assert.match(screen, re);
  };
  try {
    await until(/Starting shell on: \/dev\/pts\/\d+/);
    term.write('echo "in the installer: $((6*7)) $(cat /proc/1/comm)"; stty size\r');
    await until(/in the installer: 42 \S+\r*\n30 100/);
    term.write('\x1c');
    assert.equal(await exit, 0);
  } finally {
    term.kill();
  }
  const now = await rpc('POST', '/api/v1/reboot/now');
  assert.equal(now.status, 202);
  assert.match(now.body, /"rebooting":true/);
}
