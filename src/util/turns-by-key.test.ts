import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnsByKey } from './turns-by-key.ts';

/** A task that runs until `finish()`, recording when it starts and ends. */
function held(log: string[], name: string) {
  let finish!: () => void;
  const gate = new Promise<void>((resolve) => (finish = resolve));
  return {
    finish,
    task: async () => {
      log.push(`${name} starts`);
      await gate;
      log.push(`${name} ends`);
      return name;
    },
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('TurnsByKey', () => {
  it('runs one task at a time per key, in order, without holding up other keys', async () => {
    const turns = new TurnsByKey();
    const log: string[] = [];
    const a1 = held(log, 'a1');
    const a2 = held(log, 'a2');
    const b1 = held(log, 'b1');
    const results = [turns.run('a', a1.task), turns.run('a', a2.task), turns.run('b', b1.task)];
    assert.equal(turns.keys, 2);
    await turn();
    assert.deepEqual(log, ['a1 starts', 'b1 starts'], 'a2 waits for a1; b1 does not');
    assert.equal(turns.waiting, 1);
    b1.finish();
    a1.finish();
    await turn();
    assert.deepEqual(log, ['a1 starts', 'b1 starts', 'b1 ends', 'a1 ends', 'a2 starts']);
    assert.equal(turns.waiting, 0);
    a2.finish();
    assert.deepEqual(await Promise.all(results), ['a1', 'a2', 'b1']);
  });

  it('a failed task lets the next one of its key run, and forgets keys with nothing left', async () => {
    const turns = new TurnsByKey();
    const first = turns.run('a', () => {
      throw new Error('look-up failed');
    });
    const second = turns.run('a', () => 'second');
    await assert.rejects(first, /look-up failed/);
    assert.equal(await second, 'second');
    assert.equal(turns.keys, 0);
  });
});
