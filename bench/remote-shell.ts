// The remote shell's throughput: 27 MB of terminal output (base64 of 20 MB) from a shell on the
// installer, over a WebSocket with mutual TLS on loopback, against the same command in a local
// PTY (the peer: what a terminal on the machine itself gets). What it shows: what the transport
// costs when an operator cats a big log or a command floods the screen.
import fs from 'node:fs';
import path from 'node:path';
import pty from '@lydell/node-pty';
import WebSocket from 'ws';
import { cradleBin, exec, runBenchmark, startWaitingInstaller, tempDir, writeResults } from './lib.ts';
import { measureInterleaved, medians, ratioLine, type Sample } from './measure.ts';

const RAW_BYTES = 20_000_000;
const COMMAND = `head -c ${RAW_BYTES} /dev/zero | base64; echo END-$((40+2))`;
const DONE = /END-42/;

/** Runs COMMAND in a new remote shell session; seconds from sending it to its last line. */
function remote(port: number, tls: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const options: Record<string, unknown> = { ...tls, servername: 'installer' };
    const ws = new WebSocket(
      `wss://127.0.0.1:${port}/api/v1/shell?cols=120&rows=40`,
      options as WebSocket.ClientOptions,
    );
    let bytes = 0;
    let tail = '';
    let started = 0;
    ws.on('message', (data, binary) => {
      if (!binary) return;
      const text = (data as Buffer).toString('latin1');
      if (!started) {
        if (!/Starting shell on/.test(tail + text)) return void (tail = (tail + text).slice(-200));
        started = performance.now();
        tail = '';
        return void ws.send(Buffer.from(`${COMMAND}\r`), { binary: true });
      }
      bytes += (data as Buffer).length;
      tail = (tail + text).slice(-64);
      if (DONE.test(tail)) {
        const seconds = (performance.now() - started) / 1000;
        ws.send(JSON.stringify({ type: 'close' }));
        ws.close();
        resolve({ seconds, bytes });
      }
    });
    ws.on('error', reject);
  });
}

/** The same command in a local PTY. */
function local(): Promise<Sample> {
  return new Promise((resolve) => {
    const started = performance.now();
    const term = pty.spawn('/bin/sh', ['-c', COMMAND], { cols: 120, rows: 40, encoding: null });
    let bytes = 0;
    let tail = '';
    term.onData((d) => {
      const b = d as unknown as Buffer;
      bytes += b.length;
      tail = (tail + b.toString('latin1')).slice(-64);
    });
    term.onExit(() =>
      resolve({ seconds: (performance.now() - started) / 1000, bytes, complete: DONE.test(tail) ? 1 : 0 }),
    );
  });
}

await runBenchmark('remote-shell', async (c) => {
  const work = tempDir(c, 'shell');
  const pki = path.join(work, 'pki');
  await exec(cradleBin, ['pki', 'init', '--dir', path.join(pki, 'ca')]);
  await exec(cradleBin, [
    'pki',
    'issue',
    'installer',
    'installer',
    '--dir',
    path.join(pki, 'ca'),
    '--out',
    path.join(pki, 'installer'),
  ]);
  await exec(cradleBin, [
    'pki',
    'issue',
    'client',
    'bench',
    '--dir',
    path.join(pki, 'ca'),
    '--out',
    path.join(pki, 'operator'),
  ]);
  const port = await startWaitingInstaller(c, work, [
    '--tls-ca',
    path.join(pki, 'ca', 'ca.pem'),
    '--tls-cert',
    path.join(pki, 'installer', 'cert.pem'),
    '--tls-key',
    path.join(pki, 'installer', 'key.pem'),
  ]);
  const tls = {
    ca: fs.readFileSync(path.join(pki, 'ca', 'ca.pem')),
    cert: fs.readFileSync(path.join(pki, 'operator', 'cert.pem')),
    key: fs.readFileSync(path.join(pki, 'operator', 'key.pem')),
  };

  const samples = await measureInterleaved([
    { name: 'remote shell (TLS, WebSocket)', run: () => remote(port, tls) },
    { name: 'local PTY', run: local },
  ]);
  const a = medians(samples['remote shell (TLS, WebSocket)']);
  const b = medians(samples['local PTY']);
  const rate = (s: Sample) => `${(s.bytes / 1e6 / s.seconds).toFixed(1)} MB/s`;
  console.log(`  ${(a.bytes / 1e6).toFixed(1)} MB of terminal output per run`);
  console.log(
    ratioLine(
      'remote shell',
      { label: 'cradle installer-shell transport', value: rate(a), n: a.bytes / a.seconds },
      { label: 'local PTY', value: rate(b), n: b.bytes / b.seconds },
      'higher is better',
    ),
  );
  console.log(
    `results: ${writeResults('remote-shell', { rawBytes: RAW_BYTES, remote: samples['remote shell (TLS, WebSocket)'], local: samples['local PTY'] })}`,
  );
});
