import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InstallProgress, Machine, StateChange } from '../inventory/types.ts';
import { done, liveLine, stageOf, summaryTable, type Timeline, timelineFrom } from './report.ts';

const t0 = Date.parse('2026-11-22T10:00:00Z');
const base: Timeline = { hostname: 'lab1', state: 'birth', poweredOnAt: t0 };
const installing: Timeline = {
  ...base,
  state: 'installing',
  installerAt: t0 + 20_000,
  progress: {
    hostname: 'lab1',
    phase: 'tools',
    bytesDone: 50 << 20,
    bytesTotal: 200 << 20,
    etaSeconds: 12.2,
    updatedAt: '',
  },
};
const finished: Timeline = {
  ...installing,
  state: 'healthy',
  resultAt: t0 + 80_000,
  healthyAt: t0 + 110_000,
  progress: {
    hostname: 'lab1',
    phase: 'done',
    updatedAt: '',
    result: {
      ok: true,
      seconds: 60.2,
      phaseSeconds: { network: 1.4, plan: 2.8, tools: 32.7, storage: 21.2, logs: 0.01 },
      objects: { objectsFromCache: 54, bytesFromCache: 14 << 20, objectsFetched: 8413, bytesFetched: 442 << 20 },
    },
  },
};

test('the live line: stage, then bytes, percentage and ETA while installing', () => {
  assert.equal(liveLine(base, t0 + 5_000), 'lab1        5 s  network boot: firmware, DHCP, installer download');
  assert.equal(
    liveLine(installing, t0 + 30_000),
    'lab1       30 s  installer: tools 50.0 MiB of 200.0 MiB (25%), ETA 13 s',
  );
  assert.equal(
    stageOf({ ...installing, progress: { ...installing.progress!, bytesDone: 10 } }),
    'installer: tools',
    'the stage has no figures',
  );
  assert.match(
    liveLine({ ...installing, progress: { ...installing.progress!, bytesDone: 10, etaSeconds: 4e6 } }, t0),
    /\(0%\)$/,
    'no ETA from the first bytes',
  );
  assert.equal(
    stageOf({
      ...base,
      state: 'failed',
      progress: { hostname: 'lab1', phase: 'failed', updatedAt: '', result: { ok: false, error: 'image server down' } },
    }),
    'FAILED: image server down',
  );
  assert.equal(done(finished), true);
  assert.equal(done(installing), false);
  assert.equal(done({ ...installing, problem: 'QEMU stopped' }), true);
});

test('the summary table: stage times, bytes fetched and from cache, phases over 0.05 s', () => {
  assert.equal(
    summaryTable([finished, { ...base, problem: 'not done after 60 s' }]),
    [
      'machine  result               to installer  install  to running  total    fetched    from cache  installer phases',
      '-------  -------------------  ------------  -------  ----------  -------  ---------  ----------  -----------------------------------------------',
      'lab1     running              20.0 s        60.2 s   30.0 s      110.0 s  442.0 MiB  14.0 MiB    network 1.4, plan 2.8, tools 32.7, storage 21.2',
      'lab1     not done after 60 s  -             -        -           -        -          -           -',
    ].join('\n'),
  );
});

test("a machine's timeline counts only this run's changes and progress", () => {
  const at = (s: number) => new Date(Date.UTC(2026, 11, 6, 12, 0, s)).toISOString();
  const t0 = Date.parse(at(10));
  const record = {
    machine: { hostname: 'compute1', state: 'healthy' } as Machine,
    progress: { updatedAt: at(40), result: { ok: true } } as InstallProgress,
    history: [
      { from: 'installing', to: 'healthy', at: at(5) }, // the previous run's
      { from: 'birth', to: 'installing', at: at(20) },
      { from: 'installing', to: 'healthy', at: at(50) },
    ] as StateChange[],
  };
  const t = timelineFrom(record, { hostname: 'compute1', poweredOnAt: t0, serialLog: '/x.log' });
  assert.equal(t.installerAt, Date.parse(at(20)));
  assert.equal(t.resultAt, Date.parse(at(40)));
  assert.equal(t.healthyAt, Date.parse(at(50)));
  const stale = timelineFrom(
    { ...record, machine: { ...record.machine, state: 'installing' }, history: record.history.slice(0, 1) },
    { hostname: 'compute1', poweredOnAt: Date.parse(at(45)), exited: true, serialLog: '/x.log' },
  );
  assert.equal(stale.healthyAt, undefined);
  assert.equal(stale.progress, undefined, 'progress from before this run is not shown');
  assert.match(stale.problem ?? '', /powered off \(console: \/x\.log\)/);
});
