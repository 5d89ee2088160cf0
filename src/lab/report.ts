// What the lab shows: a live line per machine while it works, and a table at the end with the time
// of each stage from power-on to the installed system running, and where the image's bytes came
// from (the network, or the old system's disk); the same for a head node, from its console
// (head-console.ts). Pure: from timelines to text.
import type { InstallProgress, Machine, MachineState, StateChange } from '../inventory/types.ts';
import { formatBytes, progressSummary } from '../util/format.ts';
import type { HeadTimeline } from './head-console.ts';

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
  return table(header, rows);
}

/** Columns as wide as their widest cell, two spaces apart, the last one unpadded. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function headDone(t: HeadTimeline): boolean {
  return t.servingAt !== undefined || t.problem !== undefined;
}

/** The stage the head node is in, from its console (and the lab's probe for serving). */
export function headStage(t: HeadTimeline): string {
  if (t.problem) return `stopped: ${t.problem}`;
  if (t.servingAt !== undefined) return 'serving';
  if (t.firstBootAt !== undefined) return 'first boot done; services starting';
  if (t.dbMovedAt !== undefined) return 'first boot: database in PostgreSQL';
  if (t.headMenuAt !== undefined) return 'booting from its disks';
  if (t.installedAt !== undefined) return 'installed; restarting from its disks';
  if (t.setupDoneAt !== undefined) return 'installing';
  if (t.isoBootedAt !== undefined) return 'setup: answers, plan';
  if (t.isoMenuAt !== undefined) return 'ISO: kernel, drivers';
  return 'power-on: firmware, ISO';
}

/** The widest detail (the console's last setup or first-boot line) a live line shows. */
const DETAIL_COLUMNS = 60;

/** One line: the head node's stage and, while it works, its console's latest news. */
export function headLiveLine(t: HeadTimeline, now: number): string {
  const elapsed = `${((now - t.poweredOnAt) / 1000).toFixed(0)} s`.padStart(6);
  const news = t.lastLine?.replace(/^cradle (setup|first boot): /, '');
  const detail = news && !headDone(t) ? ` - ${cut(news, DETAIL_COLUMNS)}` : '';
  return `${t.hostname.padEnd(8)} ${elapsed}  ${headStage(t)}${detail}`;
}

const cut = (s: string, columns: number) => (s.length > columns ? `${s.slice(0, columns - 3)}...` : s);

/** The head node's final table: each phase's time, and power-on to serving. */
export function headSummaryTable(t: HeadTimeline): string {
  const result = t.servingAt !== undefined ? 'serving' : (t.problem ?? 'not serving');
  return table(
    ['machine', 'result', 'ISO boot', 'setup', 'install', 'first boot', 'power-on to serving'],
    [
      [
        t.hostname,
        result,
        secs(t.poweredOnAt, t.isoBootedAt),
        secs(t.isoBootedAt, t.setupDoneAt),
        secs(t.setupDoneAt, t.installedAt),
        secs(t.installedAt, t.firstBootAt),
        secs(t.poweredOnAt, t.servingAt),
      ],
    ],
  );
}
