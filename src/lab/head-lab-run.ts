// A head-node lab's run, start to end: the ISO and kits ready, the networks up, the head node on;
// its console tells its phases (lab/head-console.ts) until its services answer through the relay
// as the lab's operator (lab/head-api.ts); then the compute nodes power on, and the head node's
// own database, read through its API, tells how each one is doing until all run their new system.
import fs from 'node:fs';
import path from 'node:path';
import { HeadApi, HeadPinError, startDashboardProxy, type DashboardProxy } from './head-api.ts';
import { ConsoleClock, type HeadTimeline } from './head-console.ts';
import type { HeadLab } from './head-lab.ts';
import { PROVISIONING } from './head-lab-plan.ts';
import { logIn, runAtConsole } from './head-shell.ts';
import { relayCommand } from './relay.ts';
import { done, type Timeline, timelineFrom } from './report.ts';

export interface HeadLabRun {
  head: HeadTimeline;
  compute: Timeline[];
}

export interface HeadRunOptions {
  /** Give up on the head node, or a compute node, after this many seconds of its own. */
  timeoutSeconds: number;
  /** A local port for the dashboard proxy (0: any free port); none when undefined. */
  dashboardPort?: number;
  /** A person goes through the wizard on the head node's console; called once it runs. */
  attach?: (head: NonNullable<HeadLab['head']>, timeline: HeadTimeline) => Promise<void>;
  /** Called about once a second. */
  onTick?: (run: HeadLabRun) => void;
  /**
   * Leave the machines, the network and the dashboard running at the end until the process is
   * stopped; `onDone` is told the run first.
   */
  keepRunning?: boolean;
  onDone?: (run: HeadLabRun) => void;
  log: (line: string) => void;
}

/** The server certificate's fingerprint the setup prints: the lab pins the head node's API to it. */
const FINGERPRINT = /server certificate sha256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/;

const tick = () => new Promise((r) => setTimeout(r, 1000));

export class HeadLabSession {
  readonly lab: HeadLab;
  readonly clock: ConsoleClock;
  fingerprint?: string;
  api?: HeadApi;
  proxy?: DashboardProxy;
  private recent = '';

  constructor(lab: HeadLab) {
    this.lab = lab;
    this.clock = new ConsoleClock('head');
  }

  get socket(): string {
    return path.join(this.lab.opts.dir, 'head-api.sock');
  }

  /** The networks, the relay to the head node's HTTPS, and the head node powered on. */
  start(): void {
    const { lab } = this;
    lab.startNetworks();
    lab.net.spawn(relayCommand(this.socket, `${PROVISIONING.head}:6977`), path.join(lab.logs, 'relay.log'));
    // A rebirth's head node printed its fingerprint in the previous run.
    if (lab.opts.rebirth && fs.existsSync(lab.fingerprintFile))
      this.fingerprint = fs.readFileSync(lab.fingerprintFile, 'utf8').trim();
    const head = lab.powerOnHead();
    this.clock.timeline.poweredOnAt = lab.headPoweredOnAt;
    head.onData((text) => {
      this.clock.feed(text);
      if (this.fingerprint) return;
      this.recent = (this.recent + text).slice(-512);
      this.fingerprint = FINGERPRINT.exec(this.recent)?.[1];
      if (this.fingerprint) fs.writeFileSync(lab.fingerprintFile, `${this.fingerprint}\n`);
    });
  }

  /** The head node's API as the lab's operator, pinned to the certificate its setup printed. */
  private headApi(): HeadApi {
    const pki = this.lab.pki!;
    this.api ??= new HeadApi({
      socket: this.socket,
      cert: pki.operator.cert,
      key: pki.operator.key,
      ...(this.fingerprint ? { fingerprint: this.fingerprint } : {}),
    });
    return this.api;
  }

  /** Waits for the head node's services to answer (or its console to say why they never will). */
  async waitServing(o: HeadRunOptions): Promise<HeadTimeline> {
    const t = this.clock.timeline;
    const deadline = Date.now() + o.timeoutSeconds * 1000;
    while (t.servingAt === undefined && !t.problem) {
      if (!this.lab.head || this.lab.head.hasExited)
        t.problem = `the head node powered off (console: ${this.lab.plan.head.serialLog})`;
      else if (Date.now() > deadline) t.problem = `not serving after ${o.timeoutSeconds} s`;
      // From its own disks on (its first boot, or a rebirth's restart), its services may answer.
      else if (t.firstBootAt !== undefined || t.headMenuAt !== undefined) {
        try {
          if (await this.headApi().serving()) this.clock.serving();
        } catch (err) {
          if (err instanceof HeadPinError) t.problem = err.message;
        }
      }
      o.onTick?.({ head: t, compute: [] });
      if (t.servingAt === undefined && !t.problem) await tick();
    }
    return t;
  }

  /** The dashboard, for a browser on this host, through the relay as the lab's operator. */
  async startDashboard(port: number): Promise<string> {
    this.proxy = await startDashboardProxy(this.headApi(), { port });
    return this.proxy.url;
  }

  /** Each compute node (or those named) from the head node's database, until all are done. */
  async followCompute(o: HeadRunOptions, names?: string[]): Promise<HeadLabRun> {
    const { lab } = this;
    const head = this.clock.timeline;
    const deadline = Date.now() + o.timeoutSeconds * 1000;
    for (;;) {
      const compute = await Promise.all(
        lab.computeNodes(names).map(async (c): Promise<Timeline> => {
          const m = lab.computes.get(c.hostname);
          const exited = m?.hasExited;
          const poweredOnAt = lab.computePoweredOnAt.get(c.hostname);
          try {
            const record = await this.headApi().machine(c.hostname);
            return timelineFrom(record, { hostname: c.hostname, poweredOnAt, exited, serialLog: c.serialLog });
          } catch (err) {
            return {
              hostname: c.hostname,
              state: 'unknown',
              poweredOnAt: poweredOnAt ?? 0,
              ...(exited ? { problem: `the machine powered off (console: ${c.serialLog})` } : {}),
              ...(err instanceof HeadPinError ? { problem: err.message } : {}),
            };
          }
        }),
      );
      const headGone = !this.lab.head || this.lab.head.hasExited;
      for (const t of compute)
        if (done(t)) continue;
        else if (headGone) t.problem = `the head node powered off (console: ${lab.plan.head.serialLog})`;
        else if (Date.now() > deadline) t.problem = `not done after ${o.timeoutSeconds} s`;
      o.onTick?.({ head, compute });
      if (compute.every(done)) return { head, compute };
      await tick();
    }
  }

  /** An operator at the head node's console marks every compute node for reinstall. */
  async markForRebirth(o: HeadRunOptions): Promise<void> {
    const { lab } = this;
    o.log('rebirth: root logs in on the head node and marks the compute nodes for reinstall');
    await logIn(lab.head!, lab.password);
    for (const c of lab.plan.compute)
      await runAtConsole(lab.head!, `cradle machine set-state ${c.hostname} rebirth --reason 'cradle lab --rebirth'`);
  }

  async stop(): Promise<void> {
    await this.proxy?.close();
    await this.lab.destroy();
  }
}

/** The whole run: prepare, the head node up and serving, then its compute nodes born. */
export async function runHeadLab(lab: HeadLab, o: HeadRunOptions): Promise<HeadLabRun> {
  await lab.prepare();
  const session = new HeadLabSession(lab);
  try {
    session.start();
    if (o.attach) await o.attach(lab.head!, session.clock.timeline);
    const head = await session.waitServing(o);
    if (head.servingAt === undefined) return { head, compute: [] };
    o.log(
      `head node serving: its boot server answers the lab's operator (${session.fingerprint ? 'certificate pinned' : 'certificate not pinned: the setup printed no fingerprint'})`,
    );
    if (o.dashboardPort !== undefined)
      o.log(
        `head node dashboard: ${await session.startDashboard(o.dashboardPort)} (forwarded to https://${PROVISIONING.head}:6977 as the lab's operator)`,
      );
    if (lab.opts.rebirth) await session.markForRebirth(o);
    if (lab.plan.compute.length) {
      o.log(`powering on ${lab.plan.compute.map((c) => c.hostname).join(', ')}: they network-boot from the head node`);
      lab.powerOnComputes();
    }
    const run = await session.followCompute(o);
    o.onDone?.(run);
    if (o.keepRunning) {
      o.log('the head node and the compute nodes keep running; Ctrl-C stops them');
      await new Promise(() => {});
    }
    return run;
  } finally {
    if (!o.keepRunning) await session.stop();
  }
}
