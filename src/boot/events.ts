// What the installer's progress events (docs/installer-events.md) do to the machine database:
// the first event of a run moves the machine to `installing`, progress is kept, a failed result
// moves it to `failed`. A successful result leaves it `installing` with that result recorded, so
// its next network boot goes to the local disk; the installed system reporting in makes it `healthy`.
import { z } from 'zod';
import { objectCountsSchema } from '../inventory/validate.ts';
import type { InstallProgress, Inventory, Machine } from '../inventory/types.ts';

const eventSchema = z.looseObject({
  seq: z.number().int().min(0),
  time: z.string(),
  type: z.enum(['phase', 'progress', 'result']),
  phase: z.string().max(64).optional(),
  state: z.enum(['started', 'done', 'failed']).optional(),
  bytesDone: z.number().min(0).optional(),
  bytesTotal: z.number().min(0).optional(),
  bytesPerSecond: z.number().min(0).optional(),
  etaSeconds: z.number().nullable().optional(),
  ok: z.boolean().optional(),
  // Long errors (a command's whole stderr) are cut, never refused: a refused batch would be sent
  // again and again and the failure never recorded.
  error: z
    .string()
    .transform((e) => e.slice(0, 4000))
    .optional(),
  // A result's summary of the run, kept with the progress for dashboards and the lab's table.
  seconds: z.number().min(0).optional(),
  phaseSeconds: z.record(z.string().max(64), z.number().min(0)).optional(),
  objects: objectCountsSchema.optional(),
});

export const eventsBodySchema = z.object({
  machine: z.object({ macs: z.array(z.string()).max(64), hostname: z.string().optional(), ip: z.string().optional() }),
  events: z.array(eventSchema).max(1000),
  // The installer's log lines from line `from` on; a run's log starts again at 0.
  log: z.object({ from: z.number().int().min(0), lines: z.array(z.string()).max(1000) }).optional(),
});

export type EventsBody = z.infer<typeof eventsBodySchema>;

/** The machine the events are from: by hostname, else by any of its MACs. */
export async function machineOf(inv: Inventory, who: EventsBody['machine']): Promise<Machine | undefined> {
  if (who.hostname) {
    const m = await inv.getMachine(who.hostname);
    if (m) return m;
  }
  for (const mac of who.macs) {
    const m = await inv.findMachineByMac(mac.toLowerCase());
    if (m) return m;
  }
  return undefined;
}

const STARTS = new Set(['birth', 'rebirth', 'clean']);

/**
 * Keeps the installer's log lines. A new installer process replaces the last one's log: it starts
 * at line 0, or (its first lines dropped while the server was unreachable) sends a line whose
 * number the kept log has with other text (every line starts with its time since start).
 */
export async function applyLog(inv: Inventory, machine: Machine, log: EventsBody['log']): Promise<void> {
  if (!log?.lines.length) return;
  const [kept] = await inv.installerLog(machine.hostname, log.from, 1);
  if (log.from === 0 || (kept && kept.seq === log.from && kept.line !== log.lines[0].slice(0, kept.line.length)))
    await inv.clearInstallerLog(machine.hostname);
  await inv.appendInstallerLog(machine.hostname, log.from, log.lines);
}

export async function applyEvents(
  inv: Inventory,
  machine: Machine,
  events: EventsBody['events'],
  now = new Date(),
): Promise<Machine> {
  let m = machine;
  let last: Omit<InstallProgress, 'hostname' | 'updatedAt'> | undefined;
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    // Only a machine waiting to be installed starts installing: an installed (healthy) one is never
    // sent back to the installer by an event, nor a failed one without an operator.
    if (e.type === 'phase' && e.state === 'started' && STARTS.has(m.state)) {
      m = await inv.setState(m.hostname, 'installing', `installer started (phase ${e.phase || 'unknown'})`);
    }
    if (m.state !== 'installing') continue;
    if (e.type === 'phase') last = { phase: e.phase || 'unknown' };
    if (e.type === 'progress')
      last = {
        phase: e.phase || last?.phase || 'unknown',
        bytesDone: e.bytesDone,
        bytesTotal: e.bytesTotal,
        bytesPerSecond: e.bytesPerSecond,
        etaSeconds: e.etaSeconds,
      };
    if (e.type === 'result') {
      const { seconds, phaseSeconds, objects } = e;
      last = {
        phase: e.ok ? 'done' : 'failed',
        result: {
          ok: Boolean(e.ok),
          ...(e.error ? { error: e.error } : {}),
          ...(seconds !== undefined ? { seconds } : {}),
          ...(phaseSeconds ? { phaseSeconds } : {}),
          ...(objects ? { objects } : {}),
        },
      };
      if (!e.ok) m = await inv.setState(m.hostname, 'failed', `installer failed: ${e.error ?? 'no detail'}`);
    }
  }
  // Stamped after any state change, so the result is newer than the run it belongs to.
  if (last)
    await inv.recordProgress({
      hostname: m.hostname,
      ...last,
      updatedAt: new Date(Math.max(now.getTime(), Date.now())).toISOString(),
    });
  return m;
}
