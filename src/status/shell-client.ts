// `cradle installer-shell HOST`: the terminal side of a remote shell (protocol in shell.ts). The
// local terminal goes raw, so Ctrl-C and full-screen programs reach the remote PTY; its size
// follows the local window. Ctrl-\ ends the session. A dropped connection is retried with back-off
// (as Dominator's client does) and the same session resumed, so a flaky link loses nothing.
import WebSocket from 'ws';
import { installerUrl, operatorTlsOptions, type OperatorTls } from './client.ts';

/** Ctrl-\ : Dominator's client disconnects on it. */
const DETACH = 0x1c;

export interface ShellClientOptions {
  address: string;
  tls: OperatorTls;
  /** Give up reconnecting after this long without a connection. */
  reconnectSeconds: number;
  /**
   * Ask for the installer's log in the session as Dominator's shell streams it (the log so far,
   * then each new line): off by default, since lines interleaved into a full-screen program break it.
   */
  followLog?: boolean;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  /** Messages about the connection (not the terminal's output). */
  notice: (line: string) => void;
}

/** Runs the session; resolves to the remote shell's exit status (0 after Ctrl-\). */
export async function runShellClient(o: ShellClientOptions): Promise<number> {
  const tty = o.stdin.isTTY ? o.stdin : undefined;
  const size = () => ({ cols: o.stdout.columns || 80, rows: o.stdout.rows || 24 });
  let session: string | undefined;
  let socket: WebSocket | undefined;
  let ending = false;

  const open = () => socket?.readyState === WebSocket.OPEN;
  const onInput = (data: Buffer) => {
    const i = data.indexOf(DETACH);
    if (i >= 0) {
      if (i > 0 && open()) socket!.send(data.subarray(0, i), { binary: true });
      ending = true;
      // Not connected (reconnecting): there is nothing to tell; the session expires by itself.
      if (open()) socket!.send(JSON.stringify({ type: 'close' }));
      else socket?.terminate();
      return;
    }
    if (open()) socket!.send(data, { binary: true });
  };
  const onResize = () =>
    socket?.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: 'resize', ...size() }));

  tty?.setRawMode(true);
  o.stdin.on('data', onInput);
  o.stdout.on('resize', onResize);
  try {
    let backoff = 50;
    let lostAt = 0;
    for (;;) {
      const result = await connectOnce();
      if (result.exit !== undefined) return result.exit;
      if (ending) return 0;
      if (result.opened) {
        lostAt = performance.now();
        backoff = 50;
        o.notice(`connection lost${session ? '; resuming the session' : ''}...`);
      } else if (!lostAt) {
        lostAt = performance.now();
        o.notice(`cannot reach ${o.address} (${result.error ?? 'closed'}); trying again for ${o.reconnectSeconds} s`);
      }
      if (result.refused) throw new Error(result.refused);
      // Never connected, and the TLS handshake was cut: the installer serves no HTTPS at all.
      if (
        !session &&
        !result.opened &&
        /socket hang up|ECONNRESET|disconnected before secure/i.test(result.error ?? '')
      ) {
        throw new Error(
          `${o.address} ended the TLS handshake: its installer has no TLS files (built without build-installer --tls-*), so it has no remote shell; its status page is http://${o.address.replace(/:\d+$/, '')}:6978/`,
        );
      }
      if (performance.now() - lostAt > o.reconnectSeconds * 1000)
        throw new Error(`no connection to ${o.address} for ${o.reconnectSeconds} s: ${result.error ?? 'closed'}`);
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  } finally {
    o.stdin.off('data', onInput);
    o.stdout.off('resize', onResize);
    tty?.setRawMode(false);
    o.stdin.pause();
  }

  function connectOnce(): Promise<{ opened: boolean; exit?: number; error?: string; refused?: string }> {
    const url = new URL('/api/v1/shell', installerUrl(o.address));
    url.protocol = 'wss:';
    const { cols, rows } = size();
    url.searchParams.set('cols', String(cols));
    url.searchParams.set('rows', String(rows));
    url.searchParams.set('term', process.env.TERM || 'xterm-256color');
    if (session) url.searchParams.set('session', session);
    if (o.followLog) url.searchParams.set('logs', '1');
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { ...operatorTlsOptions(o.tls), handshakeTimeout: 10_000 });
      socket = ws;
      let opened = false;
      let exit: number | undefined;
      let error: string | undefined;
      let refused: string | undefined;
      // A link that dies without a word (a cable, a NAT) is noticed by pings, then reconnected.
      let alive = true;
      const ping = setInterval(() => {
        if (!alive) return void ws.terminate();
        alive = false;
        ws.ping();
      }, 15_000);
      ws.on('pong', () => (alive = true));
      ws.on('open', () => (opened = true));
      ws.on('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let detail = Buffer.concat(chunks).toString('utf8');
          try {
            detail = JSON.parse(detail).detail ?? detail;
          } catch {}
          // Refusals (no certificate, no such session) do not get better by retrying.
          refused = `${o.address} refused the shell (HTTP ${res.statusCode}): ${detail}`;
          ws.terminate();
        });
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return void o.stdout.write(data as Buffer);
        let msg: { type?: string; id?: string; tty?: string; resumed?: boolean; code?: number };
        try {
          msg = JSON.parse(String(data));
        } catch {
          return;
        }
        if (msg.type === 'session') {
          session = msg.id;
          if (msg.resumed) o.notice(`resumed the shell on ${msg.tty}`);
          onResize();
        } else if (msg.type === 'exit') exit = msg.code ?? 0;
      });
      ws.on('error', (err: NodeJS.ErrnoException) => {
        error = err.message;
        // An installer whose certificate is not the CA's is not retried: it is the wrong one.
        if (/CERT|SELF_SIGNED|ERR_TLS/.test(err.code ?? ''))
          refused = `${o.address}: its certificate is not accepted: ${err.message}`;
      });
      ws.on('close', () => {
        clearInterval(ping);
        resolve({ opened, exit, error, refused });
      });
    });
  }
}
