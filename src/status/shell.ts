// Remote shells into the installer (docs/installer-status.md, "Remote shell"): a real PTY per
// session, carried over a WebSocket. Binary frames are terminal bytes both ways; text frames are
// JSON control messages (the client's window size, a deliberate close; the server's session id
// and the shell's exit). A dropped connection does not end the shell: the session is kept, its
// output buffered, for `keepSeconds`, and the same user resumes it with ?session=ID. Only the
// shell exiting, or the client closing on purpose, ends it. The install never depends on a shell.
// Asked with ?logs=1, a session also gets the installer's log as Dominator's Installer.Shell sends
// it ("spray"): "Logs so far:", the log kept in memory, then every new line while the shell runs.
import crypto from 'node:crypto';
import type http from 'node:http';
import type net from 'node:net';
import type { IPty } from '@lydell/node-pty';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import type { InstallerLog } from '../installer/log.ts';

/** Output kept for a detached session, replayed when it is resumed. */
const REPLAY_BYTES = 64 * 1024;
const PING_MS = 20_000;
/** Shells at once on one installer. */
const MAX_SESSIONS = 16;
/** Output waiting for a slow connection: above HIGH the shell is paused until it is below LOW. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

const controlSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('resize'),
    cols: z.number().int().min(1).max(1000),
    rows: z.number().int().min(1).max(1000),
  }),
  z.object({ type: z.literal('close') }),
]);

interface Session {
  id: string;
  tty: string;
  user: string;
  since: Date;
  shell: IPty;
  socket?: WebSocket;
  /** Output while detached (and the tail of what was sent), for a resume. */
  replay: Buffer[];
  replayBytes: number;
  /** Not connected yet: what it was started with (the log so far, maybe all of it) is kept whole. */
  fresh: boolean;
  expiry?: NodeJS.Timeout;
  /** Set while the shell is paused for a slow connection. */
  paused?: NodeJS.Timeout;
  /** Stops the log's lines going to the session (set when it follows the log). */
  unfollow?: () => void;
}

export interface ShellOptions {
  /** argv of the shell, e.g. ['/bin/sh', '-i']. */
  command: string[];
  log: InstallerLog;
  /** How long a session outlives a dropped connection. */
  keepSeconds: number;
}

export class ShellSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly opts: ShellOptions;

  constructor(opts: ShellOptions) {
    this.opts = opts;
  }

  list(): { tty: string; user: string; since: string; attached: boolean }[] {
    return [...this.sessions.values()].map((s) => ({
      tty: s.tty,
      user: s.user,
      since: s.since.toISOString(),
      attached: !!s.socket,
    }));
  }

  count(): number {
    return this.sessions.size;
  }

  /** Takes over an upgrade request that has been authenticated as `user`. */
  async upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, user: string, url: URL): Promise<void> {
    const resume = url.searchParams.get('session');
    const cols = clampSize(url.searchParams.get('cols'), 80);
    const rows = clampSize(url.searchParams.get('rows'), 24);
    const term = /^[a-zA-Z0-9._+-]{1,64}$/.test(url.searchParams.get('term') ?? '')
      ? url.searchParams.get('term')!
      : 'xterm-256color';
    let session: Session | undefined;
    if (resume) {
      session = this.sessions.get(resume);
      if (!session || session.user !== user)
        return refuse(
          socket,
          404,
          `no shell session ${resume} of ${user} (it ended, or was kept longer than ${this.opts.keepSeconds} s without a connection)`,
        );
    }
    const full = () => !session && this.sessions.size >= MAX_SESSIONS;
    const refuseFull = () =>
      refuse(
        socket,
        503,
        `${MAX_SESSIONS} shells are open on this installer already: close one, or resume yours with its session`,
      );
    if (full()) return refuseFull();
    let spawn: typeof import('@lydell/node-pty').spawn;
    try {
      spawn = await loadPty();
    } catch (err) {
      return refuse(
        socket,
        503,
        `no remote shell on this installer: its PTY module did not load (${(err as Error).message}); the install goes on`,
      );
    }
    // Again: upgrades that arrived together all passed the check above while the module loaded.
    if (full()) return refuseFull();
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const s = session ?? this.start(spawn, user, cols, rows, term, url.searchParams.get('logs') === '1');
      this.attach(s, ws, !!session);
    });
  }

  private start(
    spawn: typeof import('@lydell/node-pty').spawn,
    user: string,
    cols: number,
    rows: number,
    term: string,
    followLog: boolean,
  ): Session {
    const [file, ...args] = this.opts.command;
    // encoding null: bytes in and out, so UTF-8 split across reads and binary output survive.
    const shell = spawn(file, args, {
      name: term,
      cols,
      rows,
      cwd: '/',
      encoding: null,
      env: { TERM: term, PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', SHELL: file, USER: 'root' },
    });
    const tty = (shell as unknown as { ptsName?: string }).ptsName ?? `pty-${shell.pid}`;
    const s: Session = {
      id: crypto.randomBytes(12).toString('hex'),
      tty,
      user,
      since: new Date(),
      shell,
      replay: [],
      replayBytes: 0,
      fresh: true,
    };
    this.sessions.set(s.id, s);
    this.opts.log.info(`remote shell for ${user} on ${s.tty} (session ${s.id.slice(0, 8)})`);
    // Terminal lines: a log line's own line feeds become CRLF too.
    const crlf = (line: string) => `${line.replace(/\r?\n/g, '\r\n')}\r\n`;
    const history = followLog
      ? ['Logs so far:', ...this.opts.log.lines]
      : ['Logs so far (last 20 lines; the whole log: /var/log/installer/latest):', ...this.opts.log.lines.slice(-20)];
    this.output(s, Buffer.from(history.map(crlf).join('')));
    // From here on, as Dominator's installer does, every line written to the log.
    if (followLog) s.unfollow = this.opts.log.onLine((line) => this.output(s, Buffer.from(crlf(line))));
    this.output(s, Buffer.from(crlf(`Starting shell on: ${s.tty}...`)));
    shell.onData((d) => this.output(s, d as unknown as Buffer));
    shell.onExit(({ exitCode, signal }) => {
      s.unfollow?.();
      this.opts.log.info(
        `remote shell of ${user} on ${s.tty} exited (${signal ? `signal ${signal}` : `status ${exitCode}`})`,
      );
      clearTimeout(s.expiry);
      clearInterval(s.paused);
      this.sessions.delete(s.id);
      s.socket?.send(JSON.stringify({ type: 'exit', code: exitCode, signal: signal || null }));
      s.socket?.close(1000, 'shell exited');
    });
    return s;
  }

  private output(s: Session, data: Buffer): void {
    const ws = s.socket;
    if (ws?.readyState === 1) {
      ws.send(data, { binary: true });
      // A connection slower than the shell's output (cat of a big file) pauses the shell.
      if (ws.bufferedAmount > HIGH_WATER && !s.paused) {
        s.paused = setInterval(() => {
          if (ws.readyState === 1 && ws.bufferedAmount > LOW_WATER) return;
          clearInterval(s.paused);
          s.paused = undefined;
          s.shell.resume();
        }, 50);
        s.shell.pause();
      }
    }
    s.replay.push(data);
    s.replayBytes += data.length;
    while (!s.fresh && s.replayBytes > REPLAY_BYTES && s.replay.length > 1) s.replayBytes -= s.replay.shift()!.length;
  }

  private attach(s: Session, ws: WebSocket, resumed: boolean): void {
    clearTimeout(s.expiry);
    s.expiry = undefined;
    s.socket?.terminate();
    s.socket = ws;
    ws.send(JSON.stringify({ type: 'session', id: s.id, tty: s.tty, resumed }));
    // A resumed terminal gets what it missed (and some before): the shell's state is unchanged.
    ws.send(resumed ? Buffer.concat(s.replay) : Buffer.concat(s.replay.splice(0)), { binary: true });
    if (!resumed) s.replayBytes = 0;
    s.fresh = false;
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) return void ws.terminate();
      alive = false;
      ws.ping();
    }, PING_MS);
    ws.on('pong', () => (alive = true));
    ws.on('message', (data, isBinary) => {
      if (isBinary)
        return void s.shell.write(
          (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)) as unknown as string,
        );
      const parsed = controlSchema.safeParse(safeJson(String(data)));
      if (!parsed.success)
        return void ws.close(1008, 'control messages are {"type":"resize","cols":N,"rows":N} or {"type":"close"}');
      if (parsed.data.type === 'resize') s.shell.resize(parsed.data.cols, parsed.data.rows);
      else this.end(s, 'closed by the client');
    });
    ws.on('close', () => {
      clearInterval(ping);
      if (s.socket !== ws || !this.sessions.has(s.id)) return;
      s.socket = undefined;
      this.opts.log.info(
        `remote shell of ${s.user} on ${s.tty}: connection lost, kept ${this.opts.keepSeconds} s for a resume`,
      );
      s.expiry = setTimeout(
        () => this.end(s, `no connection for ${this.opts.keepSeconds} s`),
        this.opts.keepSeconds * 1000,
      );
      s.expiry.unref();
    });
    ws.on('error', () => ws.terminate());
  }

  private end(s: Session, why: string): void {
    this.opts.log.info(`remote shell of ${s.user} on ${s.tty} ended: ${why}`);
    // SIGHUP, as a terminal hanging up; the exit handler removes the session.
    s.shell.kill('SIGHUP');
    setTimeout(() => this.sessions.has(s.id) && s.shell.kill('SIGKILL'), 2000).unref();
  }

  closeAll(): void {
    for (const s of this.sessions.values()) {
      s.socket?.close(1001, 'installer stopping');
      this.end(s, 'installer stopping');
    }
  }
}

function clampSize(v: string | null, fallback: number): number {
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : fallback;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The PTY addon, loaded on the first shell: native code that fails to load (another CPU, a
 * broken image) costs the shell, never the install.
 */
let pty: Promise<typeof import('@lydell/node-pty').spawn> | undefined;
function loadPty(): Promise<typeof import('@lydell/node-pty').spawn> {
  pty ??= import('@lydell/node-pty').then((m) => m.spawn ?? (m as unknown as { default: typeof m }).default.spawn);
  return pty;
}

const REASONS: Record<number, string> = { 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };

/** Answers an upgrade request with an HTTP error and closes it. */
export function refuse(socket: net.Socket, status: number, detail: string): void {
  const body = JSON.stringify({ error: REASONS[status]?.toLowerCase() ?? 'error', detail });
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
