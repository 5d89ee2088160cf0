import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { commandLineArgs, flagFileArgs, kernelCmdlineArgs, specsByName } from './go-flags.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-go-flags-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const specs = specsByName([
  { name: 'tmp-root', takesValue: true, positive: false, negative: false },
  { name: 'drive-selector', takesValue: true, positive: false, negative: false },
  { name: 'status-port', takesValue: true, positive: false, negative: false },
  { name: 'skip-network', takesValue: false, positive: true, negative: true },
  { name: 'reboot', takesValue: false, positive: true, negative: true },
  { name: 'version', takesValue: false, positive: true, negative: false },
]);

describe('flag files', () => {
  it("maps Dominator's names to options; comments and blanks skipped; unknown names set aside; bad lines named", () => {
    const f = path.join(work, 'flags.default');
    fs.writeFileSync(
      f,
      '# defaults\n; also a comment\n\ntmpRoot=/run/tmproot\n driveSelector = /bin/select \nskipNetwork\nportNum=7000\nfleetManager=fm\n-reboot=false\n',
    );
    assert.deepEqual(flagFileArgs([f, path.join(work, 'missing')], specs), {
      args: [
        '--tmp-root=/run/tmproot',
        '--drive-selector=/bin/select',
        '--skip-network',
        '--status-port=7000',
        '--no-reboot',
      ],
      ignored: [`${f}:8: unknown flag 'fleetManager' ignored`],
    });
    fs.writeFileSync(f, 'bad name=1\n');
    assert.throws(() => flagFileArgs([f], specs), /flags\.default:1: expected name=value/);
  });
});

describe('kernel command line flags', () => {
  it('turns cradle.NAME=VALUE into an option, sets aside cradle.* that are not flags, leaves the rest', () => {
    assert.deepEqual(
      kernelCmdlineArgs(
        'console=ttyS0 cradle.tmpRoot=/t cradle.skip-network cradle.reboot=no cradle.wipe=yes quiet\n',
        specs,
      ),
      {
        args: ['--tmp-root=/t', '--skip-network', '--no-reboot'],
        ignored: ["kernel command line: 'cradle.wipe=yes' is not an installer flag: ignored"],
      },
    );
  });
});

describe('command line', () => {
  it("takes Go's spellings and Cradle's, and stops at the first argument that is not a flag", () => {
    assert.deepEqual(
      commandLineArgs(['-tmpRoot', '/a', '--skipNetwork=false', '--no-reboot', '-version=0', '-h', 'sub', '-x'], specs),
      ['--tmp-root=/a', '--no-skip-network', '--no-reboot', '--help', 'sub', '-x'],
    );
    assert.deepEqual(commandLineArgs(['--', '-tmpRoot'], specs), ['--', '-tmpRoot']);
    assert.throws(() => commandLineArgs(['-nope'], specs), /unknown flag '-nope'/);
    assert.throws(() => commandLineArgs(['-version=sure'], specs), /-version is true or false/);
  });
});
