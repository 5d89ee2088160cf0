// The head node's systemd units (systemd/) against the code they start: every option their
// ExecStart lines pass is one the command accepts, and every ${VARIABLE} they use is set by the
// settings file cradle setup writes. A unit that names an option the command lacks fails only at a
// head node's first boot; this finds it on the developer's machine.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { parseAnswers } from '../src/setup/answers.ts';
import { parseFacts } from '../src/setup/facts.ts';
import { planSetup } from '../src/setup/plan.ts';
import { HEAD_UNITS, headNodeEnv, readEnv } from '../src/setup/services.ts';
import { cradleBin, repoRoot } from './helpers.ts';

const run = promisify(execFile);
const testdata = path.join(repoRoot, 'src/setup/testdata');

describe("the head node's systemd units", () => {
  const plan = planSetup(
    parseAnswers(fs.readFileSync(path.join(testdata, 'head.yaml'), 'utf8')),
    parseFacts(fs.readFileSync(path.join(testdata, 'two-disks.json'), 'utf8'), 'two-disks.json'),
  );
  const env = readEnv(headNodeEnv(plan, 'nodegroup/compute'));

  for (const unit of HEAD_UNITS)
    test(`${unit}: its command's options exist, its variables are set`, async () => {
      const text = fs.readFileSync(path.join(repoRoot, 'systemd', unit), 'utf8');
      const exec = /^ExecStart=\/usr\/local\/bin\/cradle (.*)$/m.exec(text)?.[1];
      assert.ok(exec, `${unit} starts /usr/local/bin/cradle`);
      for (const [, name] of exec.matchAll(/\$\{(\w+)\}/g)) assert.ok(env[name], `${unit}: \${${name}} is set`);
      const words = exec.split(/\s+/);
      const firstOption = words.findIndex((w) => w.startsWith('--'));
      const command = words.slice(0, firstOption < 0 ? words.length : firstOption);
      const help = (await run(cradleBin, [...command, '--help'], { encoding: 'utf8' })).stdout;
      for (const option of words.filter((w) => w.startsWith('--')))
        assert.match(help, new RegExp(`\\s${option}(?=[\\s,=])`), `cradle ${command.join(' ')} accepts ${option}`);
    });
});
