// Human-readable numbers for CLI output.

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatRate(bytes: number, seconds: number): string {
  return `${formatBytes(seconds > 0 ? bytes / seconds : 0)}/s`;
}

/** A plain left-aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Text made safe to place in HTML, between tags or in a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A duration in seconds as "42 s", "3 min 05 s" or "1 h 02 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/**
 * "1.2 GiB of 4.0 GiB (30%), 85.3 MiB/s, ETA 33 s". The ETA is left out until 2% is done (the
 * rate before that says little) or when it is over a day.
 */
export function progressSummary(p: {
  bytesDone?: number;
  bytesTotal: number;
  bytesPerSecond?: number;
  etaSeconds?: number | null;
}): string {
  const done = p.bytesDone ?? 0;
  const percent = p.bytesTotal > 0 ? Math.floor((100 * done) / p.bytesTotal) : 0;
  const rate = p.bytesPerSecond ? `, ${formatBytes(p.bytesPerSecond)}/s` : '';
  const eta =
    typeof p.etaSeconds === 'number' && p.etaSeconds < 86400 && done > 0.02 * p.bytesTotal
      ? `, ETA ${formatDuration(Math.ceil(p.etaSeconds))}`
      : '';
  return `${formatBytes(done)} of ${formatBytes(p.bytesTotal)} (${percent}%)${rate}${eta}`;
}
