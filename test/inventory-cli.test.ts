// `cradle machine …` and `cradle subnet …` end to end on a SQLite file. Once src/cli/main.ts
// registers these commands the test runs the real bin/cradle (exit codes, stdout, stderr, the env);
// until then it runs them in-process on a commander program built the way main.ts builds it, with
// main.ts's error handling ("cradle: message", exit 1). It says which in a diagnostic.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerInventoryCommands } from '../src/cli/inventory.ts';
import { openInventory } from '../src/inventory/open.ts';
import { parseStorageLayout } from '../src/storage/layout.ts';
import { cradleBin, repoRoot, tmpDir } from './helpers.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

// `cradle machine --help` would print the top-level help (exit 0) while `machine` is unknown.
const wired = /^\s+machine\b/m.test(spawnSync(cradleBin, ['--help'], { encoding: 'utf8' }).stdout ?? '');

function viaBin(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cradleBin, args, { encoding: 'utf8', env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function inProcess(args: string[], env: Record<string, string>): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = { log: console.log, error: console.error, env: { ...process.env } };
  console.log = (...a: unknown[]) => void out.push(`${a.join(' ')}\n`);
  console.error = (...a: unknown[]) => void err.push(`${a.join(' ')}\n`);
  Object.assign(process.env, env);
  try {
    const program = new Command('cradle')
      .exitOverride()
      .configureOutput({ writeOut: (s) => void out.push(s), writeErr: (s) => void err.push(s) });
    registerInventoryCommands(program); // reads CRADLE_DB for the --db default, as at start-up
    await program.parseAsync(args, { from: 'user' });
    return { code: 0, stdout: out.join(''), stderr: err.join('') };
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode, stdout: out.join(''), stderr: err.join('') };
    return { code: 1, stdout: out.join(''), stderr: `${err.join('')}cradle: ${(e as Error).message}\n` };
  } finally {
    Object.assign(console, { log: saved.log, error: saved.error });
    for (const k of Object.keys(env)) if (saved.env[k] === undefined) delete process.env[k];
    Object.assign(process.env, saved.env);
  }
}

const work = tmpDir('cradle-inventory-cli-');
after(() => fs.rmSync(work, { recursive: true, force: true }));
const db = path.join(work, 'inventory.db');

async function cradle(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return (wired ? viaBin : inProcess)(args, { CRADLE_DB: db, ...env });
}

async function ok(args: string[], env?: Record<string, string>): Promise<string> {
  const r = await cradle(args, env);
  assert.equal(r.code, 0, `cradle ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function fails(args: string[], message: RegExp): Promise<void> {
  const r = await cradle(args);
  assert.equal(r.code, 1, `cradle ${args.join(' ')} should fail; printed ${r.stdout}`);
  assert.match(r.stderr, message);
}

describe('cradle machine and cradle subnet', () => {
  before((t) => {
    if ('diagnostic' in t)
      t.diagnostic(
        wired ? 'running bin/cradle' : 'main.ts does not register the commands yet: running them in-process',
      );
  });

  it('adds subnets and machines, lists and shows them', async () => {
    assert.match(
      await ok([
        'subnet',
        'add',
        'Lab',
        '--gateway',
        '10.1.0.1',
        '--mask',
        '255.255.255.0',
        '--dns',
        '10.1.0.1,9.9.9.9',
        '--domain',
        'lab.example.com',
        '--vlan',
        '12',
        '--manage',
        '--pool',
        '10.1.0.100-10.1.0.199',
      ]),
      /added subnet Lab: 10\.1\.0\.0\/24, gateway 10\.1\.0\.1, pool 10\.1\.0\.100-10\.1\.0\.199/,
    );
    assert.match(
      (await ok(['subnet', 'list'])).trim(),
      /^ID\s+NETWORK\s+GATEWAY\s+DNS\s+DOMAIN\s+VLAN\s+MANAGE\s+POOL\nLab\s+10\.1\.0\.0\/24\s+10\.1\.0\.1\s+10\.1\.0\.1,9\.9\.9\.9\s+lab\.example\.com\s+12\s+yes\s+10\.1\.0\.100-10\.1\.0\.199$/,
    );
    const layout = path.join(repoRoot, 'src/storage/testdata/seed-storage-layout.json');
    assert.match(
      await ok([
        'machine',
        'add',
        'node1',
        '--mac',
        'DE-AD-BE-EF-A0-01',
        '--mac',
        'de:ad:be:ef:a0:02',
        '--ip',
        '10.1.0.11',
        '--tag',
        'RequiredImage=debian/1',
        '--tag',
        'Rack=r1',
        '--layout',
        layout,
        '--ipmi-ip',
        '10.9.0.11',
      ]),
      /added node1: de:ad:be:ef:a0:01, de:ad:be:ef:a0:02, 10\.1\.0\.11 in Lab; state unknown: not to be installed/,
    );
    await ok(['machine', 'add', 'node2', '--mac', 'de:ad:be:ef:a0:03', '--subnet', 'Lab', '--state', 'birth']);
    const list = (await ok(['machine', 'list'])).trim().split('\n');
    assert.match(list[0], /^HOSTNAME\s+STATE\s+SINCE\s+MACS\s+IP\s+SUBNET\s+GROUP\s+IMAGE$/);
    assert.match(
      list[1],
      /^node1\s+unknown\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+de:ad:be:ef:a0:01,de:ad:be:ef:a0:02\s+10\.1\.0\.11\s+Lab\s+-\s+debian\/1$/,
    );
    assert.match(list[2], /^node2\s+birth\s+\S+\s+de:ad:be:ef:a0:03\s+-\s+Lab\s+-\s+-$/);
    const births = JSON.parse(await ok(['machine', 'list', '--state', 'birth', '--json']));
    assert.deepEqual(
      births.map((m: { hostname: string }) => m.hostname),
      ['node2'],
    );
    assert.equal(
      JSON.parse(await ok(['machine', 'show', 'node1', '--json'])).machine.storageLayout.BootDriveLayout.length > 0,
      true,
    );
  });

  it('moves states with history, and shows them with the installer progress', async () => {
    assert.match(
      await ok(['machine', 'set-state', 'node1', 'birth', '--reason', 'first install']),
      /node1: unknown -> birth: new: its next network boot installs its image/,
    );
    assert.match(await ok(['machine', 'set-state', 'node1', 'birth']), /node1 is already birth: nothing changed/);
    const inv = await openInventory(db); // the boot server's side, on the same database
    await inv.recordProgress({
      hostname: 'node1',
      phase: 'load-image',
      bytesDone: 1 << 20,
      bytesTotal: 4 << 20,
      etaSeconds: 12,
      updatedAt: new Date().toISOString(),
    });
    await inv.close();
    const show = await ok(['machine', 'show', 'node1']);
    assert.match(show, /^state:\s+birth since \S+: new: its next network boot installs its image$/m);
    assert.match(show, /^address:\s+10\.1\.0\.11$/m);
    assert.match(show, /^subnet:\s+Lab \(10\.1\.0\.0\/24, gateway 10\.1\.0\.1\)$/m);
    assert.match(show, /^progress:\s+load-image 1\.00 MiB of 4\.00 MiB, about 12 s left/m);
    assert.match(show, /^history:\n {2}\S+ {2}unknown -> birth {2}first install$/m);
    await fails(
      ['machine', 'set-state', 'node1', 'reborn'],
      /cradle: state: 'reborn' is not a machine state: use one of unknown, birth/,
    );
    await fails(['machine', 'show', 'ghost'], /cradle: no machine named 'ghost'/);
  });

  it('imports a Dominator config.json and CSV, all or nothing', async () => {
    const seed = path.join(repoRoot, 'src/netconfig/testdata/seed-config.json');
    assert.match(
      await ok(['machine', 'import', seed, '--state', 'healthy']),
      /imported 1 machine\(s\); added subnets Dev, Hypervisors, Prod/,
    );
    const csv = path.join(work, 'fleet.csv');
    fs.writeFileSync(
      csv,
      'hostname,mac,ip,subnet,ipmi_ip,tags\nhv1,de:ad:be:ef:10:01,192.168.1.3,,192.168.0.3,RequiredImage=hv/1\nhv2,de:ad:be:ef:10:02,192.168.1.4,,,\n',
    );
    assert.match(await ok(['machine', 'import', csv]), /imported 2 machine\(s\)/);
    fs.writeFileSync(csv, 'hostname,mac\nhv3,de:ad:be:ef:10:03\nhv4,de:ad:be:ef:10:0g\n');
    await fails(
      ['machine', 'import', csv],
      /fleet\.csv line 3, column 2 \(mac\): 'de:ad:be:ef:10:0g' is not a MAC address/,
    );
    fs.writeFileSync(csv, 'hostname,mac\nhv3,de:ad:be:ef:10:03\nhv1,de:ad:be:ef:10:04\n');
    await fails(['machine', 'import', csv], /fleet\.csv line 3: machine 'hv1' already exists/);
    assert.doesNotMatch(await ok(['machine', 'list']), /hv3/);
    assert.match(await ok(['machine', 'list', '--state', 'healthy']), /hyper0\s+healthy/);
  });

  it('refuses what would break the database, with a message saying how to fix it', async () => {
    await fails(
      ['machine', 'add', 'node3', '--mac', 'de:ad:be:ef:a0:01'],
      /cradle: MAC de:ad:be:ef:a0:01 already belongs to machine 'node1'/,
    );
    await fails(
      ['machine', 'add', 'node3', '--mac', 'nope'],
      /field 'macs\.0' is invalid: 'nope' is not a MAC address/,
    );
    await fails(['machine', 'add', 'node3'], /--mac is required/);
    await fails(
      ['machine', 'add', 'node3', '--mac', 'de:ad:be:ef:00:09', '--tag', 'oops'],
      /--tag 'oops' is not NAME=VALUE/,
    );
    await fails(
      ['subnet', 'add', 'Bad', '--gateway', '10.5.0.1', '--mask', '255.255.255.0', '--pool', '10.5.0.1-10.5.0.50'],
      /contains the gateway 10\.5\.0\.1/,
    );
    await fails(
      ['subnet', 'rm', 'Lab'],
      /subnet 'Lab' is still used by 2 machine\(s\) \(node1, node2\): move or remove them first/,
    );
    assert.match(await ok(['machine', 'rm', 'node2']), /removed node2/);
    await fails(['machine', 'rm', 'node2'], /no machine named 'node2'/);
    await fails(['machine', 'list', '--db', 'mysql://x/y'], /unsupported database 'mysql:\/\/…'/);
  });

  it('takes the database from --db over CRADLE_DB', async () => {
    const other = path.join(work, 'other.db');
    await ok(['subnet', 'add', 'Solo', '--gateway', '10.7.0.1', '--mask', '255.255.0.0', '--db', `sqlite:${other}`]);
    assert.match(await ok(['subnet', 'list'], { CRADLE_DB: other }), /^Solo\s/m);
    assert.doesNotMatch(await ok(['subnet', 'list']), /Solo/);
  });

  it('checks a layout just as the installer does: the same refusals, from the same code', async () => {
    const write = (name: string, layout: object) => {
      const file = path.join(work, name);
      fs.writeFileSync(file, JSON.stringify(layout));
      return file;
    };
    const noRoot = write('no-root.json', { BootDriveLayout: [{ MountPoint: '/home', MinimumBytes: 1 << 30 }] });
    const sizedLast = write('sized-last.json', {
      BootDriveLayout: [
        { MountPoint: '/', MinimumBytes: 1 << 30 },
        { MountPoint: '/data/0', MinimumBytes: 1 << 30 },
      ],
      ExtraMountPointsBasename: '/data/',
    });
    for (const [file, why] of [
      [noRoot, /has no root file system/],
      [sizedLast, /must take the rest of the drive/],
    ] as const) {
      await fails(['machine', 'add', 'badlayout', '--mac', 'de:ad:be:ef:b0:01', '--layout', file], why);
      // The installer refuses the same file with the same words.
      assert.throws(() => parseStorageLayout(fs.readFileSync(file, 'utf8'), file), why);
      // And the machine database refuses it from any other way in (the import, the API).
      const inv = await openInventory(`sqlite:${db}`);
      try {
        await assert.rejects(
          inv.addMachine({
            hostname: 'badlayout',
            macs: ['de:ad:be:ef:b0:01'],
            tags: {},
            storageLayout: JSON.parse(fs.readFileSync(file, 'utf8')),
          }),
          why,
        );
      } finally {
        await inv.close();
      }
    }
  });
});
