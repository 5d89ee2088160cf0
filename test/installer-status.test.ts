// The installer's port 6978 with a real installer process: the status page (also in headless
// Chromium with JavaScript off), metrics, the RPC with client certificates (curl as the peer),
// and the remote shell through `cradle installer-shell` running in a real PTY: its size, resize,
// Ctrl-C, a full-screen editor, a dropped connection that the client resumes while the install
// goes on, and --logs, the installer's log streamed into the session as Dominator's shell has it.
//
// The install here fails at once (the installer refuses a real install on a system that runs
// from a disk, this one), which leaves it waiting: the state an operator uses all of this in. It
// runs in a mount namespace of its own, and listens on loopback only.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pty from '@lydell/node-pty';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';
import { cradleBin, curlStatus, failingInstaller, isRoot, tmpDir } from './helpers.ts';
import { makeTestPki, type Pair, type TestPki } from './pki-fixtures.ts';
import { CHROMIUM, hasChromium } from './browser.ts';

const run = promisify(execFile);

describe('installer status port', { skip: !isRoot() && 'needs root (mount namespace)' }, () => {
  let work: string;
  let pki: TestPki;
  let installer: ChildProcess;
  let out = '';
  let port = 0;
  let exited: Promise<number | null>;

  const waitFor = async (re: RegExp, text = () => out, ms = 15_000) => {
    for (const end = Date.now() + ms; !re.test(text()) && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 50));
    assert.match(text(), re);
  };
  /** curl, the peer client: status code and body. */
  const curl = async (pathname: string, opts: { method?: string; as?: Pair | 'none'; plain?: boolean } = {}) => {
    const args = ['-X', opts.method ?? 'GET'];
    if (!opts.plain) args.push('--cacert', pki.ca);
    if (opts.as && opts.as !== 'none') args.push('--cert', opts.as.cert, '--key', opts.as.key);
    // Every installer serves the one certificate named `installer`: curl is told where that is.
    if (opts.plain) args.push(`http://127.0.0.1:${port}${pathname}`);
    else args.push('--connect-to', `installer:${port}:127.0.0.1:${port}`, `https://installer:${port}${pathname}`);
    return curlStatus(args);
  };
  const rpc = async (method: string, pathname: string) => {
    const r = await curl(pathname, { method, as: pki.operator });
    assert.ok(r.status < 300, `${method} ${pathname}: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
  };

  before(async () => {
    work = tmpDir('cradle-status-');
    pki = await makeTestPki(work, 'boot');
    const argv = failingInstaller(work, { failureWait: 3600, status: true }, [
      '--tls-ca',
      pki.ca,
      '--tls-cert',
      pki.installer.cert,
      '--tls-key',
      pki.installer.key,
      '--shell-command',
      '/bin/bash,--norc,--noprofile,-i',
    ]);
    installer = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' },
    });
    installer.stderr!.on('data', (b: Buffer) => (out += b));
    exited = new Promise((resolve) => installer.on('exit', (code) => resolve(code)));
    await waitFor(/status page on http:\/\/127\.0\.0\.1:(\d+)\//);
    port = Number(/status page on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1]);
    // Held at once: the tests below take the time they need, however busy the machine (the wait is
    // an hour anyway); the last test ends it with "reboot now".
    assert.deepEqual(await rpc('POST', '/api/v1/reboot/block'), { held: true, heldBy: 'alice' });
  });

  after(async () => {
    if (installer.exitCode === null) installer.kill('SIGKILL');
    await exited;
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('the status page: plain HTTP, no JavaScript, the failure and the hold on it; safe headers', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script/i, 'no JavaScript on the page');
    assert.match(html, /class="state failed"/);
    assert.match(html, /runs from a disk, not from an installer image/);
    assert.match(html, /held<\/b> by alice/);
    assert.match(html, /<meta http-equiv="refresh"/);
    assert.equal(
      (await curl('/', { as: 'none' })).status,
      200,
      'over HTTPS without a certificate too: it is read-only',
    );
    assert.match(await fetch(`http://127.0.0.1:${port}/logs`).then((r) => r.text()), /install failed/);
    // Dominator's log pages: the lines in memory, and this run's whole log from its files.
    assert.match(await fetch(`http://127.0.0.1:${port}/logs/dump`).then((r) => r.text()), /install failed/);
    const whole = await fetch(`http://127.0.0.1:${port}/logs/showSinceStartup`).then((r) => r.text());
    assert.match(whole, /install failed/);
    // The file goes on growing (requests are logged): what was sent is its beginning.
    assert.ok(fs.readFileSync(path.join(work, 'log', 'latest'), 'utf8').startsWith(whole), 'the log file, whole');
  });

  test('the status page in Chromium with JavaScript off', { skip: !hasChromium() && `no ${CHROMIUM}` }, async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ javaScriptEnabled: false });
      await page.goto(`http://127.0.0.1:${port}/`);
      assert.equal(await page.textContent('#state'), 'failed');
      assert.match((await page.textContent('#reboot')) ?? '', /held by alice/);
      assert.match((await page.textContent('#log')) ?? '', /FAILED after/);
      await page.click('text=full log');
      assert.match((await page.textContent('body')) ?? '', /status page on http/);
    } finally {
      await browser.close();
    }
  });

  test('/logs/follow: the log so far, then held open; at most four at once from one address', async () => {
    const follow = (localAddress: string) =>
      new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get(`http://127.0.0.1:${port}/logs/follow`, { localAddress, agent: false }, resolve).on('error', reject),
      );
    const held: http.IncomingMessage[] = [];
    try {
      for (let i = 0; i < 4; i++) held.push(await follow('127.0.0.1'));
      assert.deepEqual(
        held.map((r) => r.statusCode),
        [200, 200, 200, 200],
      );
      const fifth = await follow('127.0.0.1');
      held.push(fifth);
      assert.equal(fifth.statusCode, 503);
      const why = await new Promise<string>((resolve) => {
        let body = '';
        fifth.on('data', (d) => (body += d));
        fifth.on('end', () => resolve(body));
      });
      assert.match(why, /4 connections from 127\.0\.0\.1 follow the log already/);
      const other = await follow('127.0.0.2');
      held.push(other);
      assert.equal(other.statusCode, 200);
    } finally {
      for (const r of held) r.destroy();
    }
  });

  test('metrics: the state, the attempt, the hold', async () => {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
    assert.match(text, /^cradle_installer_state\{state="failed"\} 1$/m);
    assert.match(text, /^cradle_installer_reboot_held 1$/m);
    assert.match(text, /^cradle_installer_attempt \d+$/m);
    assert.match(text, /^cradle_installer_process_resident_memory_bytes \d+/m);
  });

  const RPC_ROUTES: [string, string][] = [
    ['GET', '/api/v1/status'],
    ['GET', '/api/v1/logs'],
    ['POST', '/api/v1/reboot/block'],
    ['POST', '/api/v1/reboot/unblock'],
    ['POST', '/api/v1/reboot/now'],
    ['POST', '/api/v1/retry'],
  ];

  test("every RPC route and the shell refuse plain HTTP, no certificate, an expired one, another CA's, a server's, the installer's", async () => {
    const bad: [string, { as?: Pair | 'none'; plain?: boolean }, RegExp][] = [
      ['plain HTTP', { plain: true }, /plain HTTP is read-only/],
      ['no certificate', { as: 'none' }, /no client certificate/],
      ['expired', { as: pki.expired }, /expired/],
      ['another CA', { as: pki.foreign }, /not signed by this server's CA/],
      ['server certificate', { as: pki.serverAsClient }, /not a client certificate/],
      // It is in every installer image, which anyone on the network can download.
      ['the installer certificate', { as: pki.installer }, /not an operator's/],
    ];
    for (const [method, route] of [...RPC_ROUTES, ['GET', '/api/v1/shell'] as [string, string]]) {
      for (const [what, opts, why] of bad) {
        const r = await curl(route, { method, ...opts });
        assert.equal(r.status, 403, `${method} ${route} with ${what}: ${r.status} ${r.body}`);
        assert.match(JSON.parse(r.body).detail, why, `${method} ${route} with ${what}`);
      }
    }
    // The shell's WebSocket itself, with each bad identity.
    for (const [what, opts, why] of bad) {
      const scheme = opts.plain ? 'ws' : 'wss';
      const id =
        opts.as && opts.as !== 'none' ? { cert: fs.readFileSync(opts.as.cert), key: fs.readFileSync(opts.as.key) } : {};
      // ws hands TLS options to node:tls, which checks the name `servername` (the shared one).
      const tlsOptions: Record<string, unknown> = { ca: fs.readFileSync(pki.ca), servername: 'installer', ...id };
      const ws = new WebSocket(`${scheme}://127.0.0.1:${port}/api/v1/shell`, tlsOptions as WebSocket.ClientOptions);
      const answer = await new Promise<{ status?: number; body: string }>((resolve) => {
        ws.on('unexpected-response', (_q, res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        ws.on('open', () => resolve({ body: 'opened' }));
        ws.on('error', (e) => resolve({ body: e.message }));
      });
      ws.terminate();
      assert.equal(answer.status, 403, `shell with ${what}: ${answer.body}`);
      assert.match(answer.body, why);
    }
    assert.match(out, /reboot held by alice/);
    assert.doesNotMatch(out, /released by/, 'no refused client changed anything');
  });

  test('the RPC with a valid certificate: status, logs, unblock and block', async () => {
    const status = await rpc('GET', '/api/v1/status');
    assert.equal(status.state, 'failed');
    assert.equal(status.reboot.heldBy, 'alice');
    assert.equal(status.reboot.retryPossible, true);
    const logs = await rpc('GET', '/api/v1/logs?since=0');
    assert.ok(logs.lines.some((l: string) => /install failed/.test(l)));
    assert.deepEqual(
      (await rpc('GET', `/api/v1/logs?since=${logs.next}`)).lines.filter((l: string) => !/GET|POST/.test(l)),
      [],
    );
    assert.deepEqual(await rpc('POST', '/api/v1/reboot/unblock'), { held: false });
    assert.deepEqual(await rpc('POST', '/api/v1/reboot/block'), { held: true, heldBy: 'alice' });
    // cradle installer-rpc, the operator's client, says the same (it names the installer by IP;
    // the shared certificate is accepted by its name, `installer`).
    const { stdout } = await run(cradleBin, [
      'installer-rpc',
      `127.0.0.1:${port}`,
      'status',
      '--tls-ca',
      pki.ca,
      '--tls-cert',
      pki.operator.cert,
      '--tls-key',
      pki.operator.key,
    ]);
    assert.equal(JSON.parse(stdout).reboot.heldBy, 'alice');
  });

  /** `cradle installer-shell` in a real terminal, through a proxy the test can cut. */
  async function openShell(via: number, cols = 100, rows = 30, extra: string[] = []) {
    const term = pty.spawn(
      cradleBin,
      [
        'installer-shell',
        `127.0.0.1:${via}`,
        '--tls-ca',
        pki.ca,
        '--tls-cert',
        pki.operator.cert,
        '--tls-key',
        pki.operator.key,
        ...extra,
      ],
      { cols, rows, name: 'xterm-256color', env: { ...process.env, TERM: 'xterm-256color' } as Record<string, string> },
    );
    let screen = '';
    term.onData((d) => (screen += d));
    const exit = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
    const until = (re: RegExp, ms = 15_000) => waitFor(re, () => screen, ms);
    await until(/Starting shell on: \/dev\/pts\/\d+/);
    return { term, until, exit, screen: () => screen, clear: () => (screen = '') };
  }

  test('the remote shell: a real terminal (size, resize, Ctrl-C, a full-screen editor), and the session survives a dropped connection', async () => {
    const proxy = await tcpProxy(port);
    let sh: Awaited<ReturnType<typeof openShell>> | undefined;
    try {
      sh = await openShell(proxy.port);
      sh.term.write('stty size; echo "term=$TERM"\r');
      await sh.until(/30 100\r+\nterm=xterm-256color/);
      sh.term.resize(120, 40);
      // The new size reaches the remote PTY by the WebSocket: ask until it has.
      for (let i = 0; ; i++) {
        sh.clear();
        sh.term.write('stty size\r');
        await sh.until(/\d+ \d+\r\r?\n/);
        if (/40 120/.test(sh.screen())) break;
        assert.ok(i < 50, `the resize never arrived: ${sh.screen()}`);
      }
      // Ctrl-C interrupts the remote program, not the client.
      sh.term.write('sleep 300; echo not-interrupted\r');
      await waitFor(/yes/, () => (sleeping(installer.pid!) ? 'yes' : 'no'));
      sh.term.write('\x03');
      sh.term.write('echo after-$((40+2))\r');
      await sh.until(/after-42/);
      assert.doesNotMatch(sh.screen(), /\nnot-interrupted/, 'sleep was interrupted, so the echo after it never ran');
      // A full-screen program: busybox vi, driven by keys.
      const file = path.join(work, 'edited.txt');
      sh.term.write(`busybox vi ${file}\r`);
      // vi has drawn its screen. Once in CI its first screen never showed (a run in hundreds); a
      // Ctrl-L (vi's redraw) then asks for it again rather than failing the test on a lost frame.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: an escape sequence is what vi sends
      const drawn = /\x1b\[\d+;\d+H/;
      await sh.until(drawn).catch(async () => {
        sh?.term.write('\x0c');
        await sh?.until(drawn);
      });
      // Keys one group at a time: an Escape followed at once by ':' reads as one Alt key.
      sh.clear();
      sh.term.write('ihello from vi');
      await sh.until(/hello from vi/);
      sh.term.write('\x1b');
      // Not a margin but a minimum: vi reads Escape and a key right after it as one Alt key.
      await new Promise((r) => setTimeout(r, 500));
      sh.term.write(':wq\r');
      await waitFor(/hello from vi/, () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''));
      // biome-ignore lint/suspicious/noControlCharactersInRegex: an escape sequence is what vi sends
      assert.match(sh.screen(), /\x1b\[\d+;\d+H/, 'vi drew with cursor addressing');
      const status = await rpc('GET', '/api/v1/status');
      assert.equal(status.shells.length, 1);
      assert.equal(status.shells[0].user, 'alice');

      // The network drops: the connection is cut, the client reconnects and resumes the session.
      sh.term.write('MARK=still-here-$((6*7)); echo marked-$((1+1))\r');
      await sh.until(/marked-2/);
      proxy.cut();
      await sh.until(/connection lost; resuming the session/);
      await sh.until(/resumed the shell on \/dev\/pts/);
      sh.clear();
      sh.term.write('echo "$MARK"\r');
      await sh.until(/still-here-42/);
      assert.equal(installer.exitCode, null, 'the installer runs on');
      assert.match(out, /connection lost, kept 300 s for a resume/);
      // Ctrl-\ ends the session on purpose; the shell is gone.
      sh.term.write('\x1c');
      assert.equal(await sh.exit, 0);
      await waitFor(/remote shell of alice on \/dev\/pts\/\d+ exited/);
      assert.equal((await rpc('GET', '/api/v1/status')).shells.length, 0);
    } finally {
      sh?.term.kill();
      proxy.close();
    }
  });

  test("installer-shell --logs: the log so far, then each line the installer writes while the shell runs (Dominator's spray); without --logs, none", async () => {
    let spray: Awaited<ReturnType<typeof openShell>> | undefined;
    let quiet: Awaited<ReturnType<typeof openShell>> | undefined;
    try {
      const { lines } = await rpc('GET', '/api/v1/logs?since=0');
      spray = await openShell(port, 100, 30, ['--logs']);
      // The whole log kept in memory (not only its last 20 lines), before the shell starts.
      // (The local terminal turns each line end into \r\r\n: the installer sends \r\n.)
      const screen = spray.screen().replace(/\r+\n/g, '\n');
      const history = screen.slice(0, screen.indexOf('Starting shell on:'));
      assert.match(history, /^Logs so far:\n/);
      assert.ok(history.includes(`\n${lines[0]}\n`), `the first line kept, ${lines[0]}, is in: ${history}`);
      quiet = await openShell(port);
      quiet.clear();
      spray.clear();
      // Lines the daemon writes now, after both connected: the hold released, then taken again.
      await rpc('POST', '/api/v1/reboot/unblock');
      await spray.until(/\] reboot released by alice\r+\n/);
      await rpc('POST', '/api/v1/reboot/block');
      await spray.until(/\] reboot held by alice until released\r+\n/);
      // The shell itself still works between the lines.
      spray.term.write('echo spray-$((40+2))\r');
      await spray.until(/spray-42/);
      // The quiet session answers a command sent after both lines: they would have come before it.
      quiet.term.write('echo quiet-$((40+2))\r');
      await quiet.until(/quiet-42/);
      assert.doesNotMatch(quiet.screen(), /reboot (released|held) by alice/);
      for (const sh of [spray, quiet]) {
        sh.term.write('\x1c');
        assert.equal(await sh.exit, 0);
      }
      for (let i = 0; (await rpc('GET', '/api/v1/status')).shells.length > 0; i++) {
        assert.ok(i < 100, 'the shells end');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      spray?.term.kill();
      quiet?.term.kill();
    }
  });

  test('retry starts another attempt; "reboot now" ends the wait and the hold', async () => {
    assert.deepEqual(await rpc('POST', '/api/v1/retry'), { retrying: true });
    await waitFor(/retrying the install/);
    for (let i = 0; i < 100 && (await rpc('GET', '/api/v1/status')).attempt < 2; i++)
      await new Promise((r) => setTimeout(r, 100));
    const status = await rpc('GET', '/api/v1/status');
    assert.equal(status.attempt, 2);
    // The hold outlives the attempt: the second one waits for its release (or "reboot now").
    assert.equal(status.reboot.heldBy, 'alice');
    await waitFor(/retrying the install[\s\S]*FAILED after[\s\S]*exiting in 3600 s/);
    assert.equal(installer.exitCode, null);
    assert.deepEqual(await rpc('POST', '/api/v1/reboot/now'), { rebooting: true });
    assert.equal(await exited, 1, out);
    assert.match(out, /reboot now, asked for by alice/);
    assert.equal(out.match(/FAILED after/g)?.length, 2, 'two attempts');
  });
});

/** A `sleep 300` runs under process `under` (the remote shell's, in the test above): not any on the machine. */
function sleeping(under: number): boolean {
  const parentOf = (pid: string) => {
    try {
      // The fields after the command name, which may hold spaces: state, then the parent's pid.
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
    } catch {
      return undefined;
    }
  };
  const descends = (pid: string | undefined): boolean =>
    pid !== undefined && pid !== '0' && pid !== '1' && (pid === String(under) || descends(parentOf(pid)));
  return fs.readdirSync('/proc').some((pid) => {
    try {
      return (
        /^\d+$/.test(pid) &&
        fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1') === 'sleep\x00300\x00' &&
        descends(parentOf(pid))
      );
    } catch {
      return false;
    }
  });
}

/** A loopback TCP proxy whose connections the test can cut, as a network drop would. */
async function tcpProxy(target: number): Promise<{ port: number; cut: () => void; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    cut,
    close: () => {
      cut();
      server.close();
    },
  };
}
