// A Dominator config.json of a machine with three NICs, imported with `cradle machine import`
// into a real SQLite machine database, comes back unchanged from the boot server as the machine
// fetches it: by TFTP (curl's client, from the machine's own address) and over HTTP by any of its
// MACs (Dominator's -configurationBaseUrl). All on loopback: the machine's primary address is
// 127.0.0.2, which curl binds to, so the TFTP server finds the machine by address as on a LAN.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cradleBin, repoRoot, tmpDir } from './helpers.ts';

const INPUT = path.join(repoRoot, 'src/inventory/testdata/config-3-nics.json');
const MACHINE_ADDRESS = '127.0.0.2';
const MACS = ['de:ad:be:ef:03:01', 'de:ad:be:ef:03:02', 'de:ad:be:ef:03:03'];

/** Runs `cradle server` and resolves once both its ports are listening, with the ports. */
function startServer(db: string, log: string): Promise<{ server: ChildProcess; tftp: number; http: number }> {
  const server = spawn(
    cradleBin,
    ['server', '--db', db, '--roles', 'tftp,http', '--address', '127.0.0.1', '--tftp-port', '0', '--http-port', '0'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let text = '';
    const early = (code: number | null) =>
      reject(new Error(`cradle server exited (${code}) before listening:\n${text}`));
    server.once('exit', early);
    server.stderr?.on('data', (chunk: Buffer) => {
      fs.appendFileSync(log, chunk);
      if (!server.listenerCount('exit', early)) return; // already listening
      text += chunk;
      const tftp = /TFTP on 127\.0\.0\.1:(\d+)/.exec(text);
      const http = /HTTP boot on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (tftp && http) {
        server.off('exit', early);
        resolve({ server, tftp: Number(tftp[1]), http: Number(http[1]) });
      }
    });
  });
}

describe('a 3-NIC config.json through cradle machine import and the boot server', () => {
  const work = tmpDir('cradle-config-roundtrip-');
  const db = `sqlite:${path.join(work, 'inventory.db')}`;
  let running: Awaited<ReturnType<typeof startServer>> | undefined;
  const input = JSON.parse(fs.readFileSync(INPUT, 'utf8'));

  before(async () => {
    const out = execFileSync(cradleBin, ['machine', 'import', INPUT, '--db', db], { encoding: 'utf8' });
    assert.match(out, /imported 1 machine\(s\); added subnets Dev, Hypervisors, Ipmi, Loopback, Prod/);
    running = await startServer(db, path.join(work, 'server.log'));
  });
  after(async () => {
    if (running?.server.exitCode === null) {
      const exited = new Promise((r) => running?.server.once('exit', r));
      running.server.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('TFTP serves the machine, at its own address, the document it was imported from', () => {
    const text = execFileSync(
      'curl',
      ['-sSf', '--interface', MACHINE_ADDRESS, `tftp://127.0.0.1:${running?.tftp}/config.json`],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.deepEqual(JSON.parse(text), input);
  });

  it('HTTP serves the same document by any of its three MACs', () => {
    for (const mac of MACS) {
      const text = execFileSync('curl', ['-sSf', `http://127.0.0.1:${running?.http}/config/config.json?mac=${mac}`], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.deepEqual(JSON.parse(text), input, `fetched by ${mac}`);
    }
  });

  it('cradle machine export prints the same document', () => {
    const text = execFileSync(cradleBin, ['machine', 'export', 'hyper3', '--db', db], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(text), input);
  });

  it('cradle machine show lists what the database kept', () => {
    const out = execFileSync(cradleBin, ['machine', 'show', 'hyper3', '--db', db], { encoding: 'utf8' });
    assert.match(out, /MACs: +de:ad:be:ef:03:01, de:ad:be:ef:03:02, de:ad:be:ef:03:03/);
    assert.match(out, /interface: +de:ad:be:ef:03:02 192\.168\.1\.3 \(Hypervisors\) hyper3-data/);
    assert.match(out, /interface: +de:ad:be:ef:03:03 VLAN trunk/);
    assert.match(out, /interface: +192\.168\.120\.3 \(Prod\)/);
    assert.match(out, /owners: +groups hypervisor-admins; users alice, bob/);
    assert.match(out, /hardware: +amd64, 64 CPUs, 256\.0 GiB memory, 3\.49 TiB of volumes/);
    assert.match(out, /location: +lab\/rack1\/u12 \(topology lab\/rack1\)/);
  });
});
