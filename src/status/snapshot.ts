// What the installer is doing, as one plain object: the status page renders it, the RPC returns
// it, the metrics read it. `snapshotOf` is a pure function of what the install shows, so the page
// and the API are golden-tested without an install.
import type { InstallView } from '../installer/daemon.ts';
import type { InstallerEvent } from '../installer/progress.ts';
import { partitionDevice } from '../storage/partitions.ts';

export type InstallerState = 'installing' | 'succeeded' | 'failed';

export interface StatusSnapshot {
  hostname: string;
  state: InstallerState;
  /** 1 for the first attempt; a retry starts the next. */
  attempt: number;
  /** The phase running now, if any. */
  phase: string | null;
  phases: { name: string; state: 'started' | 'done' | 'failed'; seconds: number }[];
  progress: Omit<Extract<InstallerEvent, { type: 'progress' }>, 'type'> | null;
  result: { ok: boolean; seconds: number; error?: string } | null;
  image: string | null;
  reboot: { heldBy: string | null; retryPossible: boolean };
  network: {
    activeInterface: string | null;
    ip: string | null;
    interfaces: { name: string; mac: string; driver: string; addresses: string[] }[];
  };
  drives: {
    device: string;
    sizeBytes: number;
    model: string;
    partitions: {
      device: string;
      sizeBytes: number;
      name: string;
      mountPoint: string | null;
      type: string | null;
      encrypted: boolean;
    }[];
  }[];
  shells: { tty: string; user: string; since: string }[];
  uptimeSeconds: number;
  log: string[];
}

export interface SnapshotInput {
  view: InstallView;
  attempt: number;
  hostname: string;
  heldBy: string;
  retryPossible: boolean;
  /** IPv4/IPv6 addresses by interface name (os.networkInterfaces()). */
  addresses: Record<string, string[]>;
  shells: { tty: string; user: string; since: string }[];
  /** performance.now() at the time of the snapshot, for the running phase's seconds. */
  now: number;
  logLines: number;
}

export function snapshotOf(i: SnapshotInput): StatusSnapshot {
  const { progress, record, log } = i.view;
  const outcome = progress.outcome;
  const running = progress.phases.findLast((p) => p.state === 'started');
  const fsByPartition = new Map((record.plan?.fileSystems ?? []).map((f) => [f.partition, f]));
  const planned = new Map((record.plan?.drives ?? []).map((d) => [d.device, d]));
  const machine = record.machine;
  return {
    hostname: machine?.Hostname ?? i.hostname,
    state: outcome ? (outcome.ok ? 'succeeded' : 'failed') : 'installing',
    attempt: i.attempt,
    phase: running?.name ?? null,
    phases: progress.phases.map((p) => ({
      name: p.name,
      state: p.state,
      seconds: round(p.seconds ?? (i.now - p.startedAt) / 1000),
    })),
    progress: progress.latest ? stripType(progress.latest) : null,
    result: outcome
      ? { ok: outcome.ok, seconds: round(outcome.seconds), ...(outcome.error ? { error: outcome.error } : {}) }
      : null,
    image: record.imageName ?? null,
    reboot: { heldBy: i.heldBy || null, retryPossible: i.retryPossible },
    network: {
      activeInterface: record.activeInterface ?? null,
      ip: machine?.HostIpAddress ?? null,
      interfaces: record.interfaces.map((n) => ({
        name: n.name,
        mac: n.mac,
        driver: n.driver,
        addresses: i.addresses[n.name] ?? [],
      })),
    },
    drives: (record.drives ?? []).map((d) => ({
      device: d.path,
      sizeBytes: d.sizeBytes,
      model: d.model,
      partitions: (planned.get(d.path)?.partitions ?? []).map((p) => {
        const device = partitionDevice(d.path, p.number);
        const fs = fsByPartition.get(device);
        return {
          device,
          sizeBytes: p.sizeBytes,
          name: p.name,
          mountPoint: fs?.mountPoint ?? null,
          type: fs?.type ?? null,
          encrypted: !!fs?.luks,
        };
      }),
    })),
    shells: i.shells,
    uptimeSeconds: round(log.elapsed()),
    log: log.lines.slice(-i.logLines),
  };
}

function round(seconds: number): number {
  return Math.round(seconds * 100) / 100;
}

function stripType<T extends { type: string }>(e: T): Omit<T, 'type'> {
  const { type: _type, ...rest } = e;
  return rest;
}
