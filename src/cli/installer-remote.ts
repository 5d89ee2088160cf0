// `cradle installer-shell HOST` and `cradle installer-rpc HOST ACTION`: an operator's access to a
// running installer's port 6978, with a client certificate (docs/installer-status.md).
import type { Command } from 'commander';
import { installerRpc, type OperatorTls } from '../status/client.ts';
import { runShellClient } from '../status/shell-client.ts';
import { wholeNumber } from './program.ts';

interface TlsFlags {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

function withOperatorTls(cmd: Command): Command {
  return cmd
    .option('--tls-ca <file>', 'CA that signed the installer certificate (env CRADLE_TLS_CA)')
    .option('--tls-cert <file>', 'your client certificate (env CRADLE_TLS_CERT)')
    .option('--tls-key <file>', 'key of --tls-cert (env CRADLE_TLS_KEY)');
}

function operatorTls(f: TlsFlags): OperatorTls {
  const ca = f.tlsCa ?? process.env.CRADLE_TLS_CA;
  const cert = f.tlsCert ?? process.env.CRADLE_TLS_CERT;
  const key = f.tlsKey ?? process.env.CRADLE_TLS_KEY;
  if (!ca || !cert || !key)
    throw new Error(
      "the installer's RPC and shell need a client certificate: pass --tls-ca, --tls-cert and --tls-key (or set CRADLE_TLS_CA, CRADLE_TLS_CERT, CRADLE_TLS_KEY); make one with 'cradle pki issue client NAME'",
    );
  return { ca, cert, key };
}

const ACTIONS: Record<string, { method: 'GET' | 'POST'; path: string; help: string }> = {
  status: { method: 'GET', path: '/api/v1/status', help: 'phase, progress, drives, network (JSON)' },
  logs: { method: 'GET', path: '/api/v1/logs', help: 'the whole log' },
  'block-reboot': { method: 'POST', path: '/api/v1/reboot/block', help: 'hold the reboot at the end' },
  'unblock-reboot': { method: 'POST', path: '/api/v1/reboot/unblock', help: 'release it' },
  'reboot-now': { method: 'POST', path: '/api/v1/reboot/now', help: 'end the wait before the reboot (and a hold)' },
  retry: { method: 'POST', path: '/api/v1/retry', help: 'install again after a failure' },
};

export function registerInstallerRemoteCommands(program: Command): void {
  withOperatorTls(
    program
      .command('installer-shell')
      .description('a shell on a machine while it installs (Ctrl-\\ ends it; a dropped connection is resumed)')
      .argument('<host>', 'the installing machine: HOST[:PORT] (port 6978)')
      .option('--reconnect-for <seconds>', 'keep trying to reconnect this long', '300')
      .option(
        '--logs',
        "stream the installer's log into the session, as Dominator's shell does: the log so far, then every new line (off by default: lines interleaved into a full-screen program break its screen)",
      ),
  ).action(async (host: string, f: TlsFlags & { reconnectFor: string; logs?: boolean }) => {
    const notice = (line: string) => process.stderr.write(`\r\n[cradle] ${line}\r\n`);
    process.exitCode = await runShellClient({
      address: host,
      tls: operatorTls(f),
      reconnectSeconds: wholeNumber(f.reconnectFor, '--reconnect-for', 0, 86400, 'seconds'),
      followLog: !!f.logs,
      stdin: process.stdin,
      stdout: process.stdout,
      notice,
    });
  });

  withOperatorTls(
    program
      .command('installer-rpc')
      .description(
        'ask a running installer: ' +
          Object.entries(ACTIONS)
            .map(([a, x]) => `${a} (${x.help})`)
            .join(', '),
      )
      .argument('<host>', 'the installing machine: HOST[:PORT] (port 6978)')
      .argument('<action>', Object.keys(ACTIONS).join(' | ')),
  ).action(async (host: string, action: string, f: TlsFlags) => {
    const a = ACTIONS[action];
    if (!a) throw new Error(`unknown action '${action}': use ${Object.keys(ACTIONS).join(', ')}`);
    const answer = await installerRpc(host, operatorTls(f), a.method, a.path);
    if (action === 'logs') console.log((answer as { lines: string[] }).lines.join('\n'));
    else console.log(JSON.stringify(answer, null, 2));
  });
}
