// The installer's Prometheus metrics (/metrics), read from the status snapshot at scrape time, plus
// the Node process's own (memory, CPU, event-loop lag).
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { StatusSnapshot } from './snapshot.ts';

/** The metrics in Prometheus text; the snapshot is taken once per scrape, not once per metric. */
export function installerMetrics(snapshot: () => StatusSnapshot): { contentType: string; metrics(): Promise<string> } {
  const registry = new Registry();
  let current: StatusSnapshot | undefined;
  collectDefaultMetrics({ register: registry, prefix: 'cradle_installer_' });
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge, s: StatusSnapshot) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this, current ?? snapshot());
      },
    });
  gauge('cradle_installer_state', '1 for the state the installer is in', ['state'], (g, s) => {
    for (const state of ['installing', 'succeeded', 'failed']) g.set({ state }, s.state === state ? 1 : 0);
  });
  gauge('cradle_installer_attempt', 'Install attempt (a retry starts the next)', [], (g, s) => g.set(s.attempt));
  gauge(
    'cradle_installer_phase_seconds',
    'Seconds each phase took, or has taken so far',
    ['phase', 'state'],
    (g, s) => {
      for (const p of s.phases) g.set({ phase: p.name, state: p.state === 'started' ? 'running' : p.state }, p.seconds);
    },
  );
  gauge(
    'cradle_installer_progress_bytes_done',
    'Bytes done in the running phase',
    ['phase'],
    (g, s) => s.progress && g.set({ phase: s.progress.phase }, s.progress.bytesDone),
  );
  gauge(
    'cradle_installer_progress_bytes_total',
    'Bytes to do in the running phase',
    ['phase'],
    (g, s) => s.progress && g.set({ phase: s.progress.phase }, s.progress.bytesTotal),
  );
  gauge(
    'cradle_installer_progress_bytes_per_second',
    'Recent rate of the running phase',
    ['phase'],
    (g, s) => s.progress && g.set({ phase: s.progress.phase }, s.progress.bytesPerSecond),
  );
  gauge('cradle_installer_progress_eta_seconds', 'Estimated seconds left in the running phase', ['phase'], (g, s) => {
    if (s.progress?.etaSeconds != null) g.set({ phase: s.progress.phase }, s.progress.etaSeconds);
  });
  gauge('cradle_installer_remote_shells', 'Remote shell sessions open', [], (g, s) => g.set(s.shells.length));
  gauge('cradle_installer_reboot_held', '1 while an operator holds the reboot', [], (g, s) =>
    g.set(s.reboot.heldBy ? 1 : 0),
  );
  return {
    contentType: registry.contentType,
    async metrics() {
      current = snapshot();
      try {
        return await registry.metrics();
      } finally {
        current = undefined;
      }
    },
  };
}
