// A byte relay from a unix socket to a TCP address, run inside the lab's network namespace: the
// head node's HTTPS port (10.1.0.1:6977) is reachable only on the lab's bridge, and a path-named
// unix socket is reachable from every namespace that sees the file system. So the host reaches the
// head node's dashboard and API through the socket without a route, an address or a port on the
// host's own networks. Bytes only: TLS (and the operator's client certificate) goes end to end,
// from the host's client (head-api.ts) to the head node.
//   node src/lab/relay.ts SOCKET HOST:PORT      (SIGTERM or SIGINT: stops, removes SOCKET)
import fs from 'node:fs';
import net from 'node:net';

export interface RelayOptions {
  /** The unix socket to listen on; a stale one (no relay behind it) is replaced. */
  socket: string;
  /** Where each connection goes: `HOST:PORT` or `[IPv6]:PORT`. */
  target: string;
  /** Connections relayed at once; more are closed at once (the lab's browser needs a handful). */
  maxConnections?: number;
  /** A connection with no byte either way for this long is closed. */
  idleMs?: number;
  /** How long the target may take to accept a connection. */
  connectMs?: number;
  log?: (line: string) => void;
}

export interface Relay {
  socket: string;
  /** Connections being relayed now. */
  open(): number;
  /** Stops listening, ends every connection, removes the socket file. */
  close(): Promise<void>;
}

export const RELAY_DEFAULTS = { maxConnections: 64, idleMs: 120_000, connectMs: 10_000 } as const;

/** This program, as the lab runs it (in its namespace, through LabNetwork.spawn). */
export const RELAY_PROGRAM = import.meta.filename;

/** The command that runs the relay on the pinned runtime, TypeScript run directly as bin/cradle does. */
export function relayCommand(socket: string, target: string): string[] {
  return [process.execPath, '--disable-warning=ExperimentalWarning', RELAY_PROGRAM, socket, target];
}

/** Linux's sockaddr_un holds 108 bytes, the last a NUL. */
const MAX_SOCKET_PATH = 107;

export function parseTarget(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535)
    throw new Error(`relay target '${text}': give HOST:PORT, e.g. 10.1.0.1:6977 ([ADDRESS]:PORT for IPv6)`);
  return { host: m[1] ?? m[2], port };
}

/** Connects to `socket`: true when something accepts there. */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Makes way for the socket: a socket file left by a relay that died is removed; one a live relay
 * listens on, or a file of another kind, is an error naming it (it is not ours to remove).
 */
async function clearStaleSocket(socket: string): Promise<void> {
  const st = fs.lstatSync(socket, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isSocket())
    throw new Error(`relay socket ${socket}: a file that is not a socket is there; remove it or pick another path`);
  if (await answers(socket))
    throw new Error(`relay socket ${socket}: another relay is listening on it; stop that one first`);
  fs.rmSync(socket, { force: true });
}

export async function startRelay(o: RelayOptions): Promise<Relay> {
  const { host, port } = parseTarget(o.target);
  const maxConnections = o.maxConnections ?? RELAY_DEFAULTS.maxConnections;
  const idleMs = o.idleMs ?? RELAY_DEFAULTS.idleMs;
  const connectMs = o.connectMs ?? RELAY_DEFAULTS.connectMs;
  const log = o.log ?? (() => {});
  if (Buffer.byteLength(o.socket) > MAX_SOCKET_PATH)
    throw new Error(
      `relay socket ${o.socket}: ${Buffer.byteLength(o.socket)} bytes, a unix socket path has at most ${MAX_SOCKET_PATH}; use a shorter directory`,
    );
  await clearStaleSocket(o.socket);

  const open = new Set<net.Socket>();
  // A target that is down fails every connection alike: said once, and again when it answers.
  let lastFailure: string | undefined;
  let refusedSince = 0;

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    if (open.size >= maxConnections) {
      refusedSince++;
      if (refusedSince === 1) log(`refusing connections: ${maxConnections} are open (the most relayed at once)`);
      return void client.destroy();
    }
    if (refusedSince) log(`accepting again (${refusedSince} refused)`);
    refusedSince = 0;
    open.add(client);
    const upstream = net.connect({ host, port, allowHalfOpen: true });
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.once('close', () => {
      open.delete(client);
      upstream.destroy();
    });
    client.on('error', fail);
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      const why = `${host}:${port}: ${err.code ?? err.message}`;
      if (why !== lastFailure) log(`cannot relay to ${why}`);
      lastFailure = why;
      fail();
    });
    // Each side's end reaches the other (a half-close), so a client that ends its request still
    // reads the whole answer; a side gone for good takes the other with it.
    upstream.once('close', (hadError) => (hadError ? client.destroy() : client.destroySoon()));
    const connectTimeout = () =>
      upstream.destroy(Object.assign(new Error('no answer'), { code: `no connection in ${connectMs / 1000} s` }));
    upstream.setTimeout(connectMs, connectTimeout);
    upstream.once('connect', () => {
      if (lastFailure) log(`${host}:${port} answers again`);
      lastFailure = undefined;
      upstream.off('timeout', connectTimeout);
      upstream.setTimeout(idleMs, fail);
    });
    client.setTimeout(idleMs, fail);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  // An accept that fails (descriptors exhausted) costs that connection, never the relay.
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socket, () => {
      server.off('error', reject);
      server.on('error', (err) => log(`accept failed: ${err.message}`));
      resolve();
    });
  });
  await listening;
  // Only root (who runs the lab) connects; TLS with a client certificate guards the port anyway.
  fs.chmodSync(o.socket, 0o600);
  const inode = fs.statSync(o.socket).ino;
  log(`relaying ${o.socket} to ${host}:${port}`);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const c of open) c.destroy();
      // Only our own socket file: a relay started since on the same path keeps its own.
      if (fs.statSync(o.socket, { throwIfNoEntry: false })?.ino === inode) fs.rmSync(o.socket, { force: true });
    }));
  return { socket: o.socket, open: () => open.size, close };
}

async function main(argv: string[]): Promise<void> {
  if (argv.length !== 2) {
    console.error('usage: node src/lab/relay.ts SOCKET HOST:PORT');
    process.exit(2);
  }
  const log = (line: string) => console.log(`${new Date().toISOString()} relay: ${line}`);
  let relay: Relay;
  try {
    relay = await startRelay({ socket: argv[0], target: argv[1], log });
  } catch (err) {
    console.error(`relay: ${(err as Error).message}`);
    process.exit(1);
  }
  const stop = async (signal: string) => {
    log(`${signal}: stopping`);
    await relay.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

if (import.meta.main) await main(process.argv.slice(2));
