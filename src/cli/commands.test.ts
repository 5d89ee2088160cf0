import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { COMMAND_MODULES, commandsFor } from './commands.ts';

const names = (registers: ((p: Command) => void)[]) => {
  const program = new Command('cradle');
  for (const register of registers) register(program);
  return program.commands.map((c) => c.name());
};

test('each command module registers exactly the top-level commands listed for it', async () => {
  for (const m of COMMAND_MODULES) assert.deepEqual(names([await m.load()]), m.names);
});

test('a command line naming a command loads its module only; anything else loads all, in order', async () => {
  assert.deepEqual(names(await commandsFor('subnet')), ['machine', 'subnet']);
  assert.deepEqual(names(await commandsFor('installer-rpc')), ['installer-shell', 'installer-rpc']);
  const all = COMMAND_MODULES.flatMap((m) => m.names);
  for (const first of [undefined, '--help', 'help', 'machin', '-x'])
    assert.deepEqual(names(await commandsFor(first)), all);
  assert.equal(new Set(all).size, all.length, 'no command is listed twice');
});
