// The head node's progress as its serial console tells it, the only view the lab has of it until
// its services answer: the ISO's GRUB menu, the setup's answers (or the wizard's first screen), the
// disks made, the restart into the installed system, its own GRUB menu and its first boot. The
// lines are the ones the code prints today (each marker names where); `ConsoleClock` notes when
// each is first seen, fed the console as it arrives. Pure but for the clock's default `now`.
import { StringDecoder } from 'node:string_decoder';

export interface HeadTimeline {
  hostname: string;
  poweredOnAt: number;
  /** The ISO's GRUB menu: the firmware found the CD. */
  isoMenuAt?: number;
  /** The setup runs on the live system: it read its answers, or the wizard shows its first screen. */
  isoBootedAt?: number;
  /** The setup is done asking and planning: it makes the disks. */
  setupDoneAt?: number;
  /** The install is written and bootable: the ISO's init restarts the machine (or stays, cradle.reboot=no). */
  installedAt?: number;
  /** The head node's own GRUB menu, from its disks. */
  headMenuAt?: number;
  /** The first boot copied the machine database into PostgreSQL. */
  dbMovedAt?: number;
  /** The first boot is done; the services start after it. */
  firstBootAt?: number;
  /** The services answer: set by the lab's probe, no console line says so. */
  servingAt?: number;
  /** The last `cradle setup:` or `cradle first boot:` line of the current system, from that prefix on. */
  lastLine?: string;
  /** Why the head node will not get to serving. */
  problem?: string;
}

type MarkedAt =
  | 'isoMenuAt'
  | 'isoBootedAt'
  | 'setupDoneAt'
  | 'installedAt'
  | 'headMenuAt'
  | 'dbMovedAt'
  | 'firstBootAt';

/**
 * A console line (escapes stripped) per phase, in the order they come. Lines from the installed
 * system's services reach the console through journald, after a timestamp and `cradle[PID]: `.
 */
export const HEAD_MARKERS: Record<MarkedAt, RegExp> = {
  // initramfs/iso.ts headNodeIsoEntries: the setup's menu entry.
  isoMenuAt: /Cradle head-node setup/,
  // cli/setup.ts: `answers from …` once the answers are complete; setup/wizard/model.ts stepTitle.
  isoBootedAt: /^answers from |\bStep 1 of 11\b/,
  // cli/setup.ts installOnDisks.
  setupDoneAt: /^cradle setup: making the disks: /,
  // initramfs/init.sh, after the setup left /run/cradle/reboot.
  installedAt: /^cradle: (restarting into|cradle\.reboot=no: not restarting into) the head node /,
  // setup/boot.ts headGrubConfig.
  headMenuAt: /Cradle head node, Linux /,
  // setup/first-boot.ts firstBoot (a repeated first boot finds it moved already).
  dbMovedAt:
    /cradle first boot: (machine database (copied|already) in PostgreSQL|the machine database was already moved)/,
  // cli/setup.ts `setup first-boot`, its last line.
  firstBootAt: /cradle first boot: done\b/,
};

/** `cradle: …` lines of init.sh that say how things go, not what went wrong. */
const INIT_NEWS =
  /^(installer image built|drivers loaded|the setup exited|the installer exited|restarting into|cradle\.reboot=no)/;
/** An error as cli/program.ts prints it (`cradle: MESSAGE`), on the ISO or through journald. */
const ERROR = /^(?:\[[\s\d.]+\] )?(?:\S+\[\d+\]: )?cradle: (.+)$/;
const PROGRESS = /(cradle (?:setup|first boot): .*)$/;

/** ANSI escapes (GRUB's menu, systemd's colours) and other control characters but tabs. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
const ESCAPES = /\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_])|[\x00-\x08\x0b-\x1f\x7f]/g;

/** The longest partial line kept: a prompt with no end of line is no marker. */
const MAX_PENDING = 4096;

/** Notes when each marker is first seen on the console, fed the console's chunks as they arrive. */
export class ConsoleClock {
  readonly timeline: HeadTimeline;
  private pending = '';
  private lastError?: string;
  private readonly decoder = new StringDecoder('utf8');

  constructor(hostname: string, poweredOnAt = Date.now()) {
    this.timeline = { hostname, poweredOnAt };
  }

  /** A chunk of the console: any split, bytes (UTF-8 split anywhere) or text; \r\n, \n or \r ends a line. */
  feed(chunk: string | Uint8Array, now = Date.now()): void {
    const text = this.pending + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const lines = text.split(/\r\n|\r|\n/);
    this.pending = (lines.pop() as string).slice(-MAX_PENDING);
    for (const raw of lines) {
      const line = raw.replace(ESCAPES, '').trimEnd();
      if (line) this.read(line, now);
    }
  }

  /** One whole console line, its escapes stripped. */
  private read(line: string, now: number): void {
    const t = this.timeline;
    for (const [at, re] of Object.entries(HEAD_MARKERS) as [MarkedAt, RegExp][]) if (re.test(line)) t[at] ??= now;
    // The installed system is a new one: the setup's last line is not its news.
    if (HEAD_MARKERS.installedAt.test(line)) t.lastLine = undefined;
    const progress = PROGRESS.exec(line);
    if (progress) t.lastLine = progress[1];
    const status = /^cradle: the setup exited with status (\d+)/.exec(line);
    if (status && status[1] !== '0') this.end(this.lastError ?? `the setup exited with status ${status[1]}`);
    else if (/^cradle: (the setup found no medium|cradle\.reboot=no: )/.test(line))
      this.end(line.slice('cradle: '.length));
    else if (/^(stopped at the confirmation: |dry run: nothing was touched)/.test(line))
      this.end(line.replace(/^stopped /, ''));
    else if (/Failed to start .*(cradle-first-boot|Cradle head node first boot)/.test(line))
      this.end(`the first boot failed: ${this.lastError ?? 'see journalctl -u cradle-first-boot on the head node'}`);
    const error = ERROR.exec(line);
    if (error && !INIT_NEWS.test(error[1])) this.lastError = error[1];
  }

  /** The first reason it stops is the one kept. */
  private end(problem: string): void {
    this.timeline.problem ??= problem;
  }

  /** The lab's probe found the services answering. */
  serving(now = Date.now()): void {
    this.timeline.servingAt ??= now;
  }
}
