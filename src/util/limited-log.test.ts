import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LimitedLog } from './limited-log.ts';

describe('LimitedLog', () => {
  it('writes at most so many lines a window, then says how many it left out', () => {
    let clock = 0;
    const lines: string[] = [];
    const log = new LimitedLog(
      (l) => lines.push(l),
      2,
      1000,
      (n) => `${n} more`,
      () => clock,
    );
    for (let i = 1; i <= 5; i++) log.line(`a${i}`);
    assert.deepEqual(lines, ['a1', 'a2']);
    clock = 999;
    log.line('a6');
    assert.deepEqual(lines, ['a1', 'a2'], 'still the first window');
    clock = 1000;
    log.line('b1');
    assert.deepEqual(lines, ['a1', 'a2', '4 more', 'b1']);
    clock = 5000;
    log.line('c1');
    assert.deepEqual(lines, ['a1', 'a2', '4 more', 'b1', 'c1'], 'a window within its limit has nothing to say');
  });
});
