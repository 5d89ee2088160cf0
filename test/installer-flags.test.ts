// Dominator's installer's flags, as a site moving from it writes them: every flag of its list, in
// every spelling Go's flag package takes, from each of the three places (a flag file, the kernel
// command line, the command line), through the installer's real option table and into the
// options the daemon runs with. And the compatibility page cannot drift from the parser.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Command } from 'commander';
import { type DaemonFlags, daemonOptions, registerInstallerCommands } from '../src/cli/installer.ts';
import { installerArgs } from '../src/cli/program.ts';
import type { InstallerOptions } from '../src/installer/context.ts';
import { cradleBin, tmpDir } from './helpers.ts';
import { execFileSync, spawnSync } from 'node:child_process';

const work = tmpDir('cradle-flags-');
after(() => fs.rmSync(work, { recursive: true, force: true }));
const pem = (name: string) => {
  const f = path.join(work, name);
  fs.writeFileSync(f, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
  return f;
};
const files = { ca: pem('CA.pem'), cert: pem('cert.pem'), key: pem('key.pem'), identity: pem('IdentityCA.pem') };

/** Where a flag is written: one place at a time, or several (later places override earlier ones). */
interface Places {
  file?: string;
  cmdline?: string;
  argv?: string[];
}

/** The daemon's options for flags written in `places`, parsed as `cradle installer` parses them. */
function parse(places: Places): InstallerOptions {
  const program = new Command().exitOverride();
  registerInstallerCommands(program);
  const installer = program.commands.find((c) => c.name() === 'installer')!;
  const flagFile = path.join(work, 'flags.default');
  fs.writeFileSync(flagFile, places.file ?? '');
  const args = installerArgs(installer, places.argv ?? [], {
    flagFiles: [flagFile, path.join(work, 'flags.extra.missing')],
    kernelCmdline: `BOOT_IMAGE=/vmlinuz console=ttyS0 ${places.cmdline ?? ''}`,
  });
  installer.parseOptions(args);
  return daemonOptions(installer.opts<DaemonFlags>());
}

/** Every flag of Dominator's installer's list with a value to write and where the daemon finds it. */
const VALUE_FLAGS: [string, string, (o: InstallerOptions) => unknown, unknown?][] = [
  ['completionNotifier', '/bin/notify', (o) => o.completionNotifier],
  ['configurationBaseUrl', 'http://fleet-manager:6977/tftpdata', (o) => o.configurationBaseUrl],
  ['configurationLoader', '/bin/loader', (o) => o.configurationLoader],
  ['driveSelector', '/bin/select', (o) => o.driveSelector],
  ['imageServerHostname', '10.0.0.9', (o) => o.imageServer],
  ['imageServerPortNum', '7071', (o) => o.imageServerPort, 7071],
  ['logDebugLevel', '2', (o) => o.log.debugLevel, 2],
  ['mountPoint', '/target', (o) => o.mountPoint],
  ['networkConfigurator', '/bin/net', (o) => o.networkConfigurator],
  ['portNum', '7978', (o) => o.status?.port, 7978],
  ['procDirectory', '/p', (o) => o.proc],
  ['shellCommand', '/bin/busybox,sh,-i', (o) => o.status?.shellCommand, ['/bin/busybox', 'sh', '-i']],
  ['sysfsDirectory', '/s', (o) => o.sysfs],
  ['tftpDirectory', '/t', (o) => o.tftpDirectory],
  ['tftpServerHostname', '10.0.0.8', (o) => o.tftpServer],
  ['tmpRoot', '/tr', (o) => o.tmpRoot],
  ['logDir', '/var/log/x', (o) => o.logDirectory],
  ['logbufLines', '2048', (o) => o.log.bufferLines, 2048],
  ['logFileMaxSize', '1M', (o) => o.log.fileMaxBytes, 1 << 20],
  ['logQuota', '20MiB', (o) => o.log.quotaBytes, 20 << 20],
  ['idleMarkTimeout', '1m30s', (o) => o.log.idleMarkSeconds, 90],
  ['CAfile', files.ca, (o) => o.tls.ca],
  ['certFile', files.cert, (o) => o.tls.cert],
  ['keyFile', files.key, (o) => o.tls.key],
  ['identityCAfile', files.identity, (o) => o.status?.identityCa],
];

/** Dominator's booleans, with their default and where the daemon finds them. */
const BOOLEAN_FLAGS: [string, (o: InstallerOptions) => boolean | undefined][] = [
  ['dryRun', (o) => o.dryRun],
  ['skipNetwork', (o) => o.skipNetwork],
  ['skipStorage', (o) => o.skipStorage],
  ['generateMissingWebcert', (o) => o.status?.generateMissingCert],
  ['alsoLogToStderr', (o) => o.log.alsoToStderr],
];

/** The key and certificate go together: a test of one of them gives the other too. */
const pairFor = (name: string) =>
  name === 'certFile' ? [`-keyFile=${files.key}`] : name === 'keyFile' ? [`-certFile=${files.cert}`] : [];

describe("Dominator's flags, every spelling, every place", () => {
  for (const [name, value, read, want = value] of VALUE_FLAGS) {
    it(name, () => {
      const spellings: Places[] = [
        { argv: [`-${name}=${value}`] },
        { argv: [`-${name}`, value] },
        { argv: [`--${name}=${value}`] },
        { argv: [`--${name}`, value] },
        { file: `# from an old site\n${name}=${value}\n` },
        { file: ` ${name} = ${value} \n` },
        { cmdline: `cradle.${name}=${value}` },
      ];
      for (const places of spellings) {
        const o = parse({ ...places, argv: [...(places.argv ?? []), ...pairFor(name)] });
        assert.deepEqual(read(o), want, `${name} written as ${JSON.stringify(places)}`);
      }
    });
  }

  for (const [name, read] of BOOLEAN_FLAGS) {
    it(`${name} (boolean)`, () => {
      const on: Places[] = [
        { argv: [`-${name}`] },
        { argv: [`--${name}`] },
        { argv: [`-${name}=true`] },
        { argv: [`-${name}=1`] },
        { argv: [`-${name}=T`] },
        { file: `${name}\n` },
        { file: `${name}=true\n` },
        { cmdline: `cradle.${name}` },
        { cmdline: `cradle.${name}=1` },
      ];
      const off: Places[] = [
        { argv: [`-${name}=false`] },
        { argv: [`--${name}=0`] },
        { file: `${name}=false\n` },
        { cmdline: `cradle.${name}=0` },
        // The later place overrides the earlier: a kernel line undoes a flag file, argv undoes both.
        { file: `${name}=true\n`, cmdline: `cradle.${name}=false` },
        { file: `${name}=false\n`, cmdline: `cradle.${name}=true`, argv: [`-${name}=false`] },
      ];
      for (const places of on) assert.equal(read(parse(places)), true, `${name} on as ${JSON.stringify(places)}`);
      for (const places of off) assert.equal(read(parse(places)), false, `${name} off as ${JSON.stringify(places)}`);
    });
  }

  it("keeps Cradle's own --kebab-case spelling", () => {
    const o = parse({ argv: ['--tmp-root', '/k', '--skip-network', '--no-dry-run', '--status-port=7000'] });
    assert.deepEqual([o.tmpRoot, o.skipNetwork, o.dryRun, o.status?.port], ['/k', true, false, 7000]);
    assert.equal(parse({ file: 'dhcpTimeout=30\n' }).dhcpTimeoutSeconds, 30, 'camelCase of a Cradle option');
  });

  it('a bad value is refused wherever it is written, naming the place and the flag', () => {
    assert.throws(() => parse({ argv: ['-skipNetwork=maybe'] }), /-skipNetwork is true or false .* not 'maybe'/);
    assert.throws(() => parse({ file: 'skipStorage=perhaps\n' }), /flags\.default:1: -skipStorage is true or false/);
    assert.throws(() => parse({ file: 'tmpRoot\n' }), /flags\.default:1: -tmpRoot needs a value/);
    assert.throws(() => parse({ argv: ['-logQuota=lots'] }), /--log-quota takes a size/);
    assert.throws(() => parse({ argv: ['-idleMarkTimeout', '5 minutes'] }), /--idle-mark-timeout takes a duration/);
    assert.throws(() => parse({ argv: ['-portNum'] }), /-portNum needs a value/);
  });

  it('an unknown flag: logged and ignored in a flag file or on the kernel line, an error on the command line', () => {
    const o = parse({
      file: 'tmpRoot=/a\nfleetManagerHostname=fm.example\n',
      cmdline: 'cradle.wipe=yes cradle.mountPoint=/m',
    });
    assert.equal(o.tmpRoot, '/a');
    assert.equal(o.mountPoint, '/m');
    assert.equal(o.ignoredFlags.length, 2);
    assert.match(o.ignoredFlags[0], /flags\.default:2: unknown flag 'fleetManagerHostname' ignored/);
    assert.match(o.ignoredFlags[1], /kernel command line: 'cradle\.wipe=yes' is not an installer flag/);
    assert.throws(() => parse({ argv: ['-fleetManagerHostname=x'] }), /unknown flag '-fleetManagerHostname='?x?'?/);
  });

  it('flags end at the first argument that is not one, as in Go (the sub-command and its own options)', () => {
    const program = new Command();
    registerInstallerCommands(program);
    const installer = program.commands.find((c) => c.name() === 'installer')!;
    const args = installerArgs(installer, ['-sysfsDirectory', '/s', 'list-drives', '-x'], {
      flagFiles: [],
      kernelCmdline: '',
    });
    assert.deepEqual(args, ['--sysfs-directory=/s', 'list-drives', '-x']);
  });
});

describe('the installer binary', () => {
  it('-version prints the version and does nothing else', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../package.json'), 'utf8'));
    for (const spelling of ['-version', '--version', '-version=true'])
      assert.equal(
        execFileSync(cradleBin, ['installer', spelling], {
          encoding: 'utf8',
          env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' },
        }).trim(),
        pkg.version,
      );
  });

  it('an unknown flag on its command line stops it before it does anything', () => {
    const r = spawnSync(cradleBin, ['installer', '-noSuchFlag=1'], {
      encoding: 'utf8',
      env: { ...process.env, CRADLE_NO_FLAG_FILES: '1' },
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown flag '-noSuchFlag=1'/);
  });
});

describe('docs/compatibility/dominator.md', () => {
  /** The flag rows: `| \`-name\` | same/renamed/different | ... |`. */
  const rows = () =>
    [
      ...fs
        .readFileSync(path.join(import.meta.dirname, '../docs/compatibility/dominator.md'), 'utf8')
        .matchAll(/^\| `-([A-Za-z]+)` \| (same|renamed|different)\b[^|]*\|/gm),
    ].map((m) => ({ name: m[1], verdict: m[2] }));

  it("lists every flag of Dominator's installer", () => {
    const listed = new Set(rows().map((r) => r.name));
    for (const [name] of [...VALUE_FLAGS, ...BOOLEAN_FLAGS, ['version']])
      assert.ok(listed.has(name), `-${name} missing`);
  });

  it('every flag it says is the same or renamed is accepted under its Dominator name', () => {
    const program = new Command();
    registerInstallerCommands(program);
    const installer = program.commands.find((c) => c.name() === 'installer')!;
    for (const { name, verdict } of rows()) {
      if (verdict === 'different') continue;
      const value = VALUE_FLAGS.find(([n]) => n === name)?.[1];
      const argv = value === undefined ? [`-${name}`] : [`-${name}=${value}`];
      assert.doesNotThrow(() => installerArgs(installer, argv, { flagFiles: [], kernelCmdline: '' }), `-${name}`);
    }
  });
});
