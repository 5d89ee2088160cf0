// What the lab shows: a live line per machine while it works, and a table at the end with the time
// of each stage from power-on to the installed system running, and where the image's bytes came
// from (the network, or the old system's disk). Pure: from timelines to text.
import type { InstallProgress, Machine, MachineState, StateChange } from '../inventory/types.ts';
import { formatBytes, progressSummary } from '../util/format.ts';

export interface Timeline {
  hostname: string;
  state: MachineState;
  progress?: InstallProgress;
  poweredOnAt: number;
  /** When the installer's first event arrived (state `installing`). */
  installerAt?: number;
  /** When the installer sent its result. */
  resultAt?: number;
  /** When the installed system reported in (state `healthy`). */
  healthyAt?: number;
  /** Why the machine ended without reporting in (QEMU stopped, timeout). */
  problem?: string;
}

/** What the machine database says of one machine: the lab's own, or a head node's through its API. */
export interface MachineRecord {
  machine: Machine;
  progress?: InstallProgress | null;
  history: StateChange[];
}

/**
 * Where a machine is, from its record and what the lab did to it: only this run's changes count,
 * from the moment the lab marked it for install or powered it on (a run right after another would
 * otherwise find the previous run's `healthy`).
 */
export function timelineFrom(
  r: MachineRecord,
  m: { hostname: string; poweredOnAt?: number; markedAt?: number; exited?: boolean; serialLog: string },
): Timeline {
  const since = m.poweredOnAt ?? 0;
  const from = m.markedAt ?? since;
  const changes = r.history.filter((c) => Date.parse(c.at) >= from);
  const at = (to: string) => {
    const c = changes.find((x) => x.to === to);
    return c ? Date.parse(c.at) : undefined;
  };
  const fresh = r.progress && Date.parse(r.progress.updatedAt) >= from ? r.progress : undefined;
  return {
    hostname: m.hostname,
    state: r.machine.state,
    ...(fresh ? { progress: fresh } : {}),
    poweredOnAt: since,
    installerAt: at('installing'),
    resultAt: fresh?.result ? Date.parse(fresh.updatedAt) : undefined,
    healthyAt: at('healthy'),
    ...(m.exited && r.machine.state !== 'healthy'
      ? { problem: `the machine powered off (console: ${m.serialLog})` }
      : {}),
  };
}

const secs = (from: number | undefined, to: number | undefined) =>
  from !== undefined && to !== undefined ? `${((to - from) / 1000).toFixed(1)} s` : '-';

export function done(t: Timeline): boolean {
  return t.state === 'healthy' || t.state === 'failed' || t.problem !== undefined;
}

/** The stage a machine is in, without figures: the lab prints a line when it changes. */
export function stageOf(t: Timeline): string {
  if (t.problem) return `stopped: ${t.problem}`;
  if (t.state === 'healthy') return 'installed system running (reported in)';
  if (t.state === 'failed') return `FAILED: ${t.progress?.result?.error ?? 'see the console log'}`;
  if (t.state !== 'installing' || !t.progress) return 'network boot: firmware, DHCP, installer download';
  if (t.progress.result?.ok) return 'installed; booting the installed system';
  return `installer: ${t.progress.phase}`;
}

/** One line: where the machine is now, with bytes, percentage and ETA while it installs. */
export function liveLine(t: Timeline, now: number): string {
  const p = t.progress;
  const elapsed = `${((now - t.poweredOnAt) / 1000).toFixed(0)} s`.padStart(6);
  let detail = '';
  if (t.state === 'installing' && p?.bytesTotal && !p.result) {
    detail = ` ${progressSummary({ ...p, bytesTotal: p.bytesTotal })}`;
  }
  return `${t.hostname.padEnd(8)} ${elapsed}  ${stageOf(t)}${detail}`;
}

/** The final table: stage times, installer phases, bytes fetched vs from cache, result. */
export function summaryTable(timelines: Timeline[]): string {
  const header = [
    'machine',
    'result',
    'to installer',
    'install',
    'to running',
    'total',
    'fetched',
    'from cache',
    'installer phases',
  ];
  const rows = timelines.map((t) => {
    const r = t.progress?.result;
    const result = t.state === 'healthy' ? 'running' : t.state === 'failed' ? 'failed' : (t.problem ?? t.state);
    const phases = r?.phaseSeconds
      ? Object.entries(r.phaseSeconds)
          .filter(([, s]) => s >= 0.05)
          .map(([p, s]) => `${p} ${s.toFixed(1)}`)
          .join(', ')
      : '-';
    return [
      t.hostname,
      result,
      secs(t.poweredOnAt, t.installerAt),
      r?.seconds !== undefined ? `${r.seconds.toFixed(1)} s` : secs(t.installerAt, t.resultAt),
      secs(t.resultAt, t.healthyAt),
      secs(t.poweredOnAt, t.healthyAt ?? t.resultAt),
      r?.objects ? formatBytes(r.objects.bytesFetched) : '-',
      r?.objects ? formatBytes(r.objects.bytesFromCache) : '-',
      phases,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
