import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LimitedLog, type LogClock } from './limited-log.ts';

/** A clock the test moves by hand; what is due runs when it is moved past. */
function handClock() {
  let time = 0;
  const due: { at: number; fn: () => void }[] = [];
  const clock: LogClock = { now: () => time, later: (fn, ms) => void due.push({ at: time + ms, fn }) };
  const to = (t: number) => {
    time = t;
    for (const d of due.filter((d) => d.at <= t)) {
      due.splice(due.indexOf(d), 1);
      d.fn();
    }
  };
  return { clock, to };
}

describe('LimitedLog', () => {
  it('writes at most so many lines a window, then says how many it left out', () => {
    const { clock, to } = handClock();
    const lines: string[] = [];
    const log = new LimitedLog(
      (l) => lines.push(l),
      2,
      1000,
      (n) => `${n} more`,
      clock,
    );
    for (let i = 1; i <= 5; i++) log.line(`a${i}`);
    assert.deepEqual(lines, ['a1', 'a2']);
    to(999);
    log.line('a6');
    assert.deepEqual(lines, ['a1', 'a2'], 'still the first window');
    to(1000);
    assert.deepEqual(lines, ['a1', 'a2', '4 more'], 'told when the window ends, with no line after it');
    log.line('b1');
    assert.deepEqual(lines, ['a1', 'a2', '4 more', 'b1'], 'and only once');
    to(5000);
    log.line('c1');
    assert.deepEqual(lines, ['a1', 'a2', '4 more', 'b1', 'c1'], 'a window within its limit has nothing to say');
  });

  it('a line that opens the next window before the timer has run tells what the last one left out', () => {
    let time = 0;
    const lines: string[] = [];
    const never: LogClock = { now: () => time, later: () => {} };
    const log = new LimitedLog(
      (l) => lines.push(l),
      1,
      1000,
      (n) => `${n} more`,
      never,
    );
    log.line('a1');
    log.line('a2');
    time = 1500;
    log.line('b1');
    assert.deepEqual(lines, ['a1', '1 more', 'b1']);
  });
});
