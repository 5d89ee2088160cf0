// The boot server's fleet dashboard: every machine with its state, phase, progress and ETA; a
// page per machine with its result, state history and installer log. Pages are rendered here,
// whole, so they work without JavaScript (a <noscript> refresh keeps them current). With
// JavaScript, dashboard.js re-fetches the same server-rendered fragments every two seconds and
// appends new log lines: one renderer, no second copy of it in the browser.
import { createHash } from 'node:crypto';
import type { InstallProgress, Machine, StateChange } from '../inventory/types.ts';
import { escapeHtml as h, formatBytes, formatDuration, progressSummary } from '../util/format.ts';

export interface MachineView {
  machine: Machine;
  progress: InstallProgress | null;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .5em} h2{font-size:1.1em;margin:1.2em 0 .3em;border-bottom:1px solid #ccc}
table{border-collapse:collapse} td,th{padding:.25em .9em .25em 0;text-align:left;vertical-align:middle}
th{font-weight:600;color:#555;border-bottom:1px solid #ddd} .num{text-align:right;font-variant-numeric:tabular-nums}
.state{display:inline-block;min-width:6em;text-align:center;padding:.1em .5em;border-radius:.3em;color:#fff;font-weight:600}
.healthy{background:#2e7d32} .installing{background:#1565c0} .failed{background:#c62828}
.birth,.rebirth,.clean{background:#6a1b9a} .unknown{background:#757575}
progress{width:14em;height:1em;vertical-align:middle} pre{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:12px;max-height:40em}
.hint{color:#666;font-size:.9em} a{color:#0d47a1}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${h(title)}</title>
<noscript><meta http-equiv="refresh" content="10"></noscript>
<style>${STYLE}</style><script src="/dashboard.js" defer></script></head>
<body>
${body}
</body></html>
`;
}

function stateBadge(state: string): string {
  return `<span class="state ${h(state)}">${h(state)}</span>`;
}

/** What the machine is doing, in words: the phase, the bytes with rate and ETA, or the result. */
export function activity(v: MachineView): string {
  const p = v.progress;
  if (!p) return '';
  if (p.result)
    return p.result.ok
      ? `installed${p.result.seconds ? ` in ${formatDuration(p.result.seconds)}` : ''}`
      : `failed: ${p.result.error ?? 'no detail'}`;
  if (v.machine.state !== 'installing') return '';
  if (p.bytesTotal) return `${p.phase}: ${progressSummary({ ...p, bytesTotal: p.bytesTotal })}`;
  return p.phase;
}

function progressBar(v: MachineView): string {
  const p = v.progress;
  if (v.machine.state !== 'installing' || !p?.bytesTotal || p.result) return '';
  return `<progress max="${p.bytesTotal}" value="${p.bytesDone ?? 0}"></progress>`;
}

/** The rows of the fleet table (also the fragment dashboard.js refreshes). */
export function machineRows(views: MachineView[]): string {
  if (!views.length)
    return `<tr><td colspan="6" class="hint">No machines yet: add them with 'cradle machine add', or let DHCP register unknown ones (--unknown-machines birth).</td></tr>`;
  return views
    .map((v) => {
      const m = v.machine;
      return `<tr data-host="${h(m.hostname)}"><td><a href="/machines/${encodeURIComponent(m.hostname)}">${h(m.hostname)}</a></td><td>${stateBadge(m.state)}</td><td>${progressBar(v)}</td><td class="activity">${h(activity(v))}</td><td>${h(m.ip ?? '')}</td><td>${h(m.macs[0] ?? '')}</td></tr>`;
    })
    .join('\n');
}

export function fleetPage(views: MachineView[], now: Date): string {
  const counts = new Map<string, number>();
  for (const v of views) counts.set(v.machine.state, (counts.get(v.machine.state) ?? 0) + 1);
  const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'none';
  return page(
    'Cradle: fleet',
    `<h1>Cradle fleet</h1>
<p id="summary">${views.length} machine${views.length === 1 ? '' : 's'}: ${h(summary)}.</p>
<table id="machines"><thead><tr><th>Machine</th><th>State</th><th>Progress</th><th>Activity</th><th>Address</th><th>MAC</th></tr></thead>
<tbody data-live="/fragments/machines">
${machineRows(views)}
</tbody></table>
<p class="hint">Generated at ${now.toISOString()}. The JSON API: <a href="/api/v1/machines">/api/v1/machines</a>.</p>`,
  );
}

/** The machine's state and install summary (also a refreshed fragment). */
export function machineSummary(v: MachineView): string {
  const m = v.machine;
  const p = v.progress;
  const rows: [string, string][] = [
    ['State', `${stateBadge(m.state)} since ${h(m.stateChangedAt)}`],
    ['Activity', `${progressBar(v)} ${h(activity(v))}`],
    ['Address', h(m.ip ?? '(from a pool)')],
    ['MACs', h(m.macs.join(', '))],
    ['Firmware', h(m.firmware ?? 'not seen yet')],
    ['Image', h(m.tags.RequiredImage ?? '(the server default)')],
  ];
  const r = p?.result;
  if (r?.phaseSeconds && Object.keys(r.phaseSeconds).length)
    rows.push([
      'Phases',
      h(
        Object.entries(r.phaseSeconds)
          .map(([k, s]) => `${k} ${s.toFixed(1)} s`)
          .join(', '),
      ),
    ]);
  if (r?.objects)
    rows.push([
      'Objects',
      h(
        `${r.objects.objectsFetched} fetched (${formatBytes(r.objects.bytesFetched)}), ${r.objects.objectsFromCache} from the old system (${formatBytes(r.objects.bytesFromCache)})`,
      ),
    ]);
  if (p) rows.push(['Last report', h(p.updatedAt)]);
  return `<table>${rows.map(([k, val]) => `<tr><th>${k}</th><td>${val}</td></tr>`).join('')}</table>`;
}

/** What identifies a machine's log: its first kept line. Another one means another run (or trimmed). */
export function logStart(first: { seq: number; line: string } | undefined): string {
  return first ? `${first.seq}-${createHash('sha256').update(first.line).digest('hex').slice(0, 16)}` : 'empty';
}

export function machinePage(
  v: MachineView,
  history: StateChange[],
  log: { seq: number; line: string }[],
  start: string,
): string {
  const host = encodeURIComponent(v.machine.hostname);
  const next = log.length ? log[log.length - 1].seq + 1 : 0;
  const historyRows = [...history]
    .reverse()
    .map(
      (c) => `<tr><td>${h(c.at)}</td><td>${stateBadge(c.from)} → ${stateBadge(c.to)}</td><td>${h(c.reason)}</td></tr>`,
    )
    .join('');
  return page(
    `Cradle: ${v.machine.hostname}`,
    `<p><a href="/">← fleet</a></p>
<h1>${h(v.machine.hostname)}</h1>
<div id="summary" data-live="/fragments/machines/${host}/summary">${machineSummary(v)}</div>
<h2>Installer log</h2>
<pre id="log" data-append="/fragments/machines/${host}/log" data-next="${next}" data-start="${h(start)}">${h(log.map((l) => l.line).join('\n'))}</pre>
<h2>History</h2>
<table id="history"><thead><tr><th>When</th><th>Change</th><th>Why</th></tr></thead><tbody>${historyRows}</tbody></table>`,
  );
}

/** The page script: refresh [data-live] parts, append to [data-append] logs; nothing else. */
export const DASHBOARD_JS = `'use strict';
// Re-fetches the server-rendered parts of the page, so it stays live without a reload.
async function refresh() {
  for (const el of document.querySelectorAll('[data-live]')) {
    const res = await fetch(el.dataset.live, { cache: 'no-store' }).catch(() => null);
    if (res && res.ok) el.innerHTML = await res.text();
  }
  for (const el of document.querySelectorAll('[data-append]')) {
    const res = await fetch(el.dataset.append + '?since=' + el.dataset.next, { cache: 'no-store' }).catch(() => null);
    if (!res || !res.ok) continue;
    const text = await res.text();
    const next = res.headers.get('x-next-seq');
    const start = res.headers.get('x-log-start');
    // Another run's log (another first line): start over from its beginning.
    if (start !== null && start !== el.dataset.start) { el.textContent = ''; el.dataset.next = '0'; el.dataset.start = start; continue; }
    if (text) el.append((el.textContent ? '\\n' : '') + text.replace(/\\n$/, ''));
    if (next !== null) el.dataset.next = next;
  }
  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
}
// One refresh at a time: the next starts 2 s after the last one ended.
(async function loop() {
  await refresh().catch(() => {});
  setTimeout(loop, 2000);
})();
`;
