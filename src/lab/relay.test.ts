// The relay on loopback: bytes both ways with half-closes, the bound on connections, the idle
// timeout, a target that is down, the socket file's lifecycle, and the program under SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseTarget, relayCommand, startRelay, type Relay } from './relay.ts';
import { until } from '../../test/support/wait.ts';

/** Everything the peer sends until it ends, after writing `send` and ending our side. */
async function exchange(socket: string, send: string): Promise<string> {
  const c = net.connect(socket);
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  c.end(send);
  await once(c, 'close');
  return Buffer.concat(chunks).toString();
}

/** A TCP server on 127.0.0.1 that answers "echo:" and what it read, once the client ends. */
async function echoServer(port = 0): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => s.end(`echo:${Buffer.concat(chunks)}`));
    s.on('error', () => {});
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}
const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;

describe('relay', () => {
  let dir: string;
  let target: net.Server;
  const relays: Relay[] = [];
  const start = async (o: Partial<Parameters<typeof startRelay>[0]> & { socket: string }) => {
    const r = await startRelay({ target: `127.0.0.1:${portOf(target)}`, ...o });
    relays.push(r);
    return r;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-relay-'));
    target = await echoServer();
  });
  after(async () => {
    for (const r of relays) await r.close();
    target.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('targets: host:port and [IPv6]:port; anything else names the form', () => {
    assert.deepEqual(parseTarget('10.1.0.1:6977'), { host: '10.1.0.1', port: 6977 });
    assert.deepEqual(parseTarget('[fd77::1]:6977'), { host: 'fd77::1', port: 6977 });
    for (const bad of ['10.1.0.1', '10.1.0.1:0', 'x:70000', 'fd77::1:6977'])
      assert.throws(() => parseTarget(bad), /give HOST:PORT/);
  });

  test('relays both ways, a half-closed request still gets its whole answer', async () => {
    const r = await start({ socket: path.join(dir, 'both.sock') });
    assert.equal((fs.statSync(r.socket).mode & 0o777).toString(8), '600');
    assert.equal(await exchange(r.socket, 'hello'), 'echo:hello');
    const big = 'x'.repeat(3 * 1024 * 1024);
    assert.equal(await exchange(r.socket, big), `echo:${big}`);
  });

  test('at most maxConnections at once: more are closed, and accepted again once one ends', async () => {
    const lines: string[] = [];
    const r = await start({ socket: path.join(dir, 'bound.sock'), maxConnections: 2, log: (l) => lines.push(l) });
    const held = [net.connect(r.socket), net.connect(r.socket)];
    await Promise.all(held.map((c) => once(c, 'connect')));
    await until('two relayed connections', () => r.open() === 2, 10_000);
    const third = net.connect(r.socket);
    third.on('error', () => {});
    await once(third, 'close');
    assert.ok(
      lines.some((l) => /refusing connections: 2 are open/.test(l)),
      lines.join('\n'),
    );
    held[0].destroy();
    await until('a slot free', () => r.open() === 1, 10_000);
    assert.equal(await exchange(r.socket, 'again'), 'echo:again');
    held[1].destroy();
  });

  test('an idle connection is closed', async () => {
    const r = await start({ socket: path.join(dir, 'idle.sock'), idleMs: 200 });
    const c = net.connect(r.socket);
    await once(c, 'connect');
    const t0 = Date.now();
    await once(c, 'close');
    assert.ok(Date.now() - t0 >= 150, 'closed before the idle time');
    await until('the relay to let go of it', () => r.open() === 0, 10_000);
  });

  test('a target that is down fails that connection only; once it is up the relay serves again', async () => {
    const probe = await echoServer();
    const port = portOf(probe);
    probe.close();
    await once(probe, 'close');
    const lines: string[] = [];
    const r = await start({
      socket: path.join(dir, 'down.sock'),
      target: `127.0.0.1:${port}`,
      log: (l) => lines.push(l),
    });
    assert.equal(await exchange(r.socket, 'lost'), '');
    assert.equal(await exchange(r.socket, 'lost'), '');
    assert.equal(
      lines.filter((l) => /cannot relay to 127\.0\.0\.1:\d+: ECONNREFUSED/.test(l)).length,
      1,
      lines.join('\n'),
    );
    const back = await echoServer(port);
    try {
      assert.equal(await exchange(r.socket, 'back'), 'echo:back');
      assert.ok(lines.some((l) => /answers again/.test(l)));
    } finally {
      back.close();
    }
  });

  test('a stale socket is replaced; a live relay or another kind of file is not', async () => {
    const stale = path.join(dir, 'stale.sock');
    // A relay killed outright leaves its socket file behind.
    const dead = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)})`]);
    await until('the socket file', () => fs.existsSync(stale), 10_000);
    dead.kill('SIGKILL');
    await once(dead, 'exit');
    assert.ok(fs.lstatSync(stale).isSocket());
    const r = await start({ socket: stale });
    assert.equal(await exchange(r.socket, 'fresh'), 'echo:fresh');
    await assert.rejects(start({ socket: stale }), /another relay is listening on it/);
    const file = path.join(dir, 'plain-file');
    fs.writeFileSync(file, 'mine');
    await assert.rejects(start({ socket: file }), /not a socket/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'mine');
    await assert.rejects(start({ socket: path.join(dir, 'x'.repeat(120)) }), /at most 107/);
  });

  test('the program relays, and SIGTERM stops it and removes its socket', async () => {
    const socket = path.join(dir, 'program.sock');
    const [cmd, ...args] = relayCommand(socket, `127.0.0.1:${portOf(target)}`);
    const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      await until('the relay listening', () => /relaying /.test(output), 10_000);
      assert.equal(await exchange(socket, 'program'), 'echo:program');
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0, output);
      assert.equal(fs.existsSync(socket), false);
      assert.doesNotMatch(output, /Warning/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
