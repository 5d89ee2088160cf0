// The installer's status page (port 6978): plain HTML from a snapshot, no JavaScript, so it works
// in any browser, in curl and in a text browser on a crash cart. It refreshes itself every few
// seconds with a meta refresh; the live log is a streamed text page (/logs/follow).
import { escapeHtml as h, formatBytes, formatDuration, progressSummary } from '../util/format.ts';
import type { StatusSnapshot } from './snapshot.ts';

export const REFRESH_SECONDS = 5;

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:72em}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.2em 0 .3em;border-bottom:1px solid #ccc}
table{border-collapse:collapse} td,th{padding:.15em .8em .15em 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#555} .num{text-align:right;font-variant-numeric:tabular-nums}
.state{display:inline-block;padding:.1em .6em;border-radius:.3em;color:#fff;font-weight:600}
.installing{background:#1565c0} .succeeded{background:#2e7d32} .failed{background:#c62828}
progress{width:30em;height:1.2em} pre{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:12px}
.hint{color:#666;font-size:.9em} nav a{margin-right:1em}`;

export function statusPage(s: StatusSnapshot, generatedAt: Date): string {
  const body = [
    `<h1>${h(s.hostname)}: installer <span class="state ${s.state}" id="state">${s.state}</span></h1>`,
    `<p>Attempt ${s.attempt}, up ${formatDuration(s.uptimeSeconds)}${s.image ? `, installing image <b>${h(s.image)}</b>` : ''}.</p>`,
    `<nav><a href="/logs">full log</a><a href="/logs/follow">live log</a><a href="/metrics">metrics</a><a href="/api/v1/status">status (JSON, needs a client certificate)</a></nav>`,
    now(s),
    phases(s),
    drives(s),
    network(s),
    reboot(s),
    shells(s),
    `<h2>Log (last ${s.log.length} lines; <a href="/logs/follow">follow it live</a>)</h2>`,
    `<pre id="log">${h(s.log.join('\n'))}</pre>`,
    `<p class="hint">Page generated at ${generatedAt.toISOString()}; it refreshes every ${REFRESH_SECONDS} s.</p>`,
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<title>${h(s.hostname)}: installer ${s.state}</title><style>${STYLE}</style></head>
<body>
${body.filter(Boolean).join('\n')}
</body></html>
`;
}

function now(s: StatusSnapshot): string {
  if (s.result) {
    return s.result.ok
      ? `<h2>Result</h2><p id="result">Installed in ${formatDuration(s.result.seconds)}.</p>`
      : `<h2>Result</h2><p id="result">Failed after ${formatDuration(s.result.seconds)}: <b>${h(s.result.error ?? 'no detail')}</b></p>`;
  }
  const p = s.progress;
  const bar =
    p && p.bytesTotal > 0
      ? `<p><progress id="progress" max="${p.bytesTotal}" value="${p.bytesDone}"></progress></p><p>${h(progressSummary(p))}</p>`
      : '';
  return `<h2>Now</h2><p id="phase">${s.phase ? `Phase <b>${h(s.phase)}</b>` : 'Starting'}</p>${bar}`;
}

function phases(s: StatusSnapshot): string {
  if (!s.phases.length) return '';
  const rows = s.phases.map(
    (p) =>
      `<tr><td>${h(p.name)}</td><td>${p.state === 'started' ? 'running' : p.state}</td><td class="num">${p.seconds.toFixed(2)} s</td></tr>`,
  );
  return `<h2>Phases</h2><table id="phases"><tr><th>Phase</th><th>State</th><th class="num">Time</th></tr>${rows.join('')}</table>`;
}

function drives(s: StatusSnapshot): string {
  if (!s.drives.length) return '';
  const rows = s.drives.flatMap((d) => [
    `<tr><td><b>${h(d.device)}</b></td><td class="num">${formatBytes(d.sizeBytes)}</td><td colspan="3">${h(d.model)}</td></tr>`,
    ...d.partitions.map(
      (p) =>
        `<tr><td>&nbsp;&nbsp;${h(p.device)}</td><td class="num">${formatBytes(p.sizeBytes)}</td><td>${h(p.mountPoint ?? p.name)}</td><td>${h(p.type ?? '')}</td><td>${p.encrypted ? 'LUKS2' : ''}</td></tr>`,
    ),
  ]);
  return `<h2>Drives</h2><table id="drives"><tr><th>Device</th><th class="num">Size</th><th>Mount point</th><th>File system</th><th>Encryption</th></tr>${rows.join('')}</table>`;
}

function network(s: StatusSnapshot): string {
  const n = s.network;
  if (!n.interfaces.length) return '';
  const rows = n.interfaces.map(
    (i) =>
      `<tr><td>${h(i.name)}${i.name === n.activeInterface ? ' (active)' : ''}</td><td>${h(i.mac)}</td><td>${h(i.driver)}</td><td>${h(i.addresses.join(', '))}</td></tr>`,
  );
  return `<h2>Network</h2><table id="network"><tr><th>Interface</th><th>MAC</th><th>Driver</th><th>Addresses</th></tr>${rows.join('')}</table>`;
}

function reboot(s: StatusSnapshot): string {
  const lines: string[] = [];
  if (s.reboot.heldBy) lines.push(`The reboot is <b>held</b> by ${h(s.reboot.heldBy)}.`);
  if (s.reboot.retryPossible)
    lines.push('The install failed and can be retried (RPC <code>POST /api/v1/retry</code>).');
  return lines.length ? `<h2>Reboot</h2><p id="reboot">${lines.join(' ')}</p>` : '';
}

function shells(s: StatusSnapshot): string {
  if (!s.shells.length) return '';
  const rows = s.shells.map((x) => `<tr><td>${h(x.tty)}</td><td>${h(x.user)}</td><td>${h(x.since)}</td></tr>`);
  return `<h2>Remote shells</h2><table id="shells"><tr><th>Terminal</th><th>User</th><th>Since</th></tr>${rows.join('')}</table>`;
}
