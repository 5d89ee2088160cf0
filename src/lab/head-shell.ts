// An operator at the head node's serial console: root's login with the password the lab gave it,
// and commands run there whose end (and exit status) the lab waits for. Rebirth goes this way, as
// in Kusu, where an operator at the head node marks nodes for reinstall.
import { randomBytes } from 'node:crypto';
import type { RunningMachine } from './qemu.ts';

/** Root's login on the console; resolves at the shell prompt. */
export async function logIn(m: RunningMachine, password: string, timeoutMs = 600_000): Promise<void> {
  // The login prompt may have scrolled away under the services' messages: Enter asks again.
  m.type('\r');
  await m.waitFor(/ login: $/m, timeoutMs);
  m.type('root\r');
  await m.waitFor(/Password: /, 60_000);
  m.type(`${password}\r`);
  await m.waitFor(/root@[\w.-]+:~# /, 120_000);
}

/**
 * Runs a shell command at the logged-in console and returns its output; refuses a non-zero exit
 * status. Its output is between two random markers, so neither what the console showed before nor
 * output that merely looks like a marker can be taken for it.
 */
export async function runAtConsole(m: RunningMachine, command: string, timeoutMs = 300_000): Promise<string> {
  const nonce = randomBytes(6).toString('hex');
  // Each marker is split in the typed line ("...-"'nonce'), so the command's echo never matches.
  m.type(`echo "cradle-lab-start-""${nonce}"; ${command}; echo "cradle-lab-end-$?-""${nonce}"\r`);
  const got = await m.waitFor(
    new RegExp(`cradle-lab-start-${nonce}\\r?\\n([\\s\\S]*?)cradle-lab-end-(\\d+)-${nonce}`),
    timeoutMs,
  );
  const status = Number(got[2]);
  const output = got[1].replace(/\r?\n$/, '');
  if (status !== 0) throw new Error(`on the head node, '${command}' exited ${status}: ${output.slice(-500)}`);
  return output;
}
