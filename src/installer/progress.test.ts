// The progress queue's bound: what cannot be sent is dropped, oldest progress first, so the phases
// and the result of an install survive a boot server that is away.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InstallerLog } from './log.ts';
import { Progress } from './progress.ts';

describe('progress queue', () => {
  it('keeps at most 1000 events, dropping the oldest progress events and keeping phases and the result', () => {
    const p = new Progress(new InstallerLog({ stderr: false }));
    p.emit({ type: 'phase', phase: 'tools', state: 'started' });
    for (let i = 0; i < 1200; i++)
      p.emit({ type: 'progress', phase: 'tools', bytesDone: i, bytesTotal: 1200, bytesPerSecond: 1, etaSeconds: 1 });
    p.result(true, 1, {});
    const q = p.pending();
    assert.equal(q.length, 1000);
    assert.equal(q[0].type, 'phase');
    assert.equal(q.at(-1)!.type, 'result');
    const progress = q.filter((e) => e.type === 'progress');
    assert.equal(progress.length, 998);
    assert.equal((progress.at(-1) as { bytesDone: number }).bytesDone, 1199, 'the newest progress is kept');
  });
});
