// QEMU machines for the lab and the VM tests: the command line (pure, from what the machine is),
// and a running machine whose serial console is logged to a file and can be waited on.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import {
  type ConsoleMode,
  type ConsoleTransport,
  consoleArgs,
  openPtyConsole,
  ptyDevice,
  stdioConsole,
} from './qemu-console.ts';

export type { ConsoleMode } from './qemu-console.ts';
export { consoleArgs } from './qemu-console.ts';

export type Firmware = 'bios' | 'uefi';

export interface QemuMachine {
  name: string;
  /** One tap device per NIC, in order; the first is the boot NIC. */
  nics: { tap: string; mac: string }[];
  disks: string[];
  firmware: Firmware;
  memoryMiB: number;
  /** KVM only where a smoke boot proved it works; TCG (emulation) otherwise. */
  accel: 'kvm' | 'tcg';
  /** UEFI variable store of this machine (a copy of OVMF_VARS). */
  uefiVars?: string;
  /** An ISO in a CD drive, last in the boot order: blank disks fall through to it. */
  cdrom?: string;
  /**
   * Network boot first (the default), as compute nodes do; false for a machine that starts from
   * its disks, then its CD (a head node).
   */
  netBoot?: boolean;
  /**
   * The serial console on QEMU's stdio (the default), or on a PTY: a real terminal, for a person
   * (`attach`) or a test driving a program that asks line by line (the setup wizard).
   */
  console?: ConsoleMode;
  /** A PTY console's log: QEMU appends the console's output to it (RunningMachine's `log`). */
  consoleLog?: string;
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** A value inside a comma-separated QEMU option: commas are doubled. */
const opt = (value: string) => value.replaceAll(',', ',,');

/**
 * The QEMU command line: network boot first, then the first disk (iPXE's `exit` falls through
 * to it), the serial console on stdio or a PTY. The default CPU model: under TCG the named models
 * are slower (they turn on page-table isolation) and `-cpu max` is 1.5-2x slower on file-system
 * work.
 */
export function qemuArgs(m: QemuMachine): string[] {
  if (m.console === 'pty' && !m.consoleLog)
    throw new Error(`${m.name}: a PTY console needs its log file (consoleLog), where QEMU keeps its output`);
  const args = [
    '-name',
    m.name,
    '-m',
    String(m.memoryMiB),
    '-smp',
    '2',
    '-nographic',
    '-nodefaults',
    ...consoleArgs(m.console ?? 'stdio', m.consoleLog),
    '-vga',
    'none',
  ];
  args.push('-accel', m.accel === 'kvm' ? 'kvm' : 'tcg,thread=multi');
  if (m.firmware === 'uefi') {
    if (!m.uefiVars) throw new Error(`${m.name}: a UEFI machine needs its own variable store`);
    args.push(
      '-machine',
      'q35',
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${opt(m.uefiVars)}`,
    );
  }
  const netBoot = m.netBoot ?? true;
  m.nics.forEach((n, i) => {
    args.push('-netdev', `tap,id=n${i},ifname=${opt(n.tap)},script=no,downscript=no`);
    args.push('-device', `virtio-net-pci,netdev=n${i},mac=${n.mac}${netBoot && i === 0 ? ',bootindex=1' : ''}`);
  });
  // Network boot: the first disk after it (iPXE's `exit` falls through). Otherwise every disk in
  // order (GRUB may sit on any of them), then the CD.
  m.disks.forEach((d, i) => {
    const bootIndex = netBoot ? (i === 0 ? ',bootindex=2' : '') : `,bootindex=${i + 2}`;
    args.push('-drive', `file=${opt(d)},if=none,id=d${i},format=raw,cache=unsafe,discard=unmap`);
    args.push('-device', `virtio-blk-pci,drive=d${i}${bootIndex}`);
  });
  if (m.cdrom) {
    args.push('-drive', `file=${opt(m.cdrom)},if=none,id=cd,format=raw,media=cdrom,readonly=on`);
    args.push('-device', `ide-cd,drive=cd,bootindex=${m.disks.length + 2}`);
  }
  return args;
}

/**
 * A running QEMU whose console goes to `log`: `waitFor` watches it, `type` types on it, `onData`
 * follows it and `attach` hands it to a person's terminal. The console is QEMU's stdio, or with
 * `console: 'pty'` a PTY (the command must carry consoleArgs('pty', log)), which the machine sees
 * as the same serial port.
 */
export class RunningMachine {
  readonly child: ChildProcess;
  /** Resolves when QEMU has exited and the console's last output has been read. */
  readonly exited: Promise<number | null>;

  /** QEMU has ended (the machine powered off, or was stopped); its last output may still come. */
  get hasExited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }
  readonly log: string;
  readonly console: ConsoleMode;
  /** Console output not yet consumed by a match of waitFor. */
  private unread = '';
  private watchers: { re: RegExp; done: (m: RegExpMatchArray | undefined) => void }[] = [];
  private listeners = new Set<(chunk: Buffer) => void>();
  private transport?: ConsoleTransport;
  /** Keys typed before the PTY was open: sent once it is. */
  private pending: (string | Uint8Array)[] = [];
  private closed = false;

  constructor(command: string[], log: string, o: { console?: ConsoleMode } = {}) {
    this.log = log;
    this.console = o.console ?? 'stdio';
    let start = 0;
    if (this.console === 'stdio') {
      const out = fs.openSync(log, 'a');
      // stdin is the serial console's keyboard (type()); QEMU's own messages go to the log.
      this.child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', out] });
      fs.closeSync(out);
      this.transport = stdioConsole(this.child, (chunk) => {
        fs.appendFileSync(log, chunk);
        this.received(chunk);
      });
    } else {
      start = fs.existsSync(log) ? fs.statSync(log).size : 0;
      this.child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      this.child.stdin!.on('error', () => {});
    }
    const consoleEnded = this.transport ? this.transport.ended : this.openPty(start);
    const childClosed = new Promise<number | null>((r) => this.child.once('close', (code) => r(code)));
    this.exited = Promise.all([childClosed, consoleEnded]).then(([code]) => {
      this.closed = true;
      for (const w of this.watchers.splice(0)) w.done(undefined);
      return code;
    });
  }

  /**
   * QEMU with a PTY console names the PTY on stdout as it starts, and appends the console's output
   * to the log itself. What it printed there before the PTY was open (log bytes from `start`)
   * counts as console output too; QEMU's own messages are added to the log after it, so they are
   * never taken for it. Resolves when the console's output has ended.
   */
  private openPty(start: number): Promise<void> {
    let said = '';
    let held: Buffer[] | undefined = [];
    let opened!: () => void;
    const ptyOpened = new Promise<void>((r) => (opened = r));
    const release = () => {
      for (const c of held ?? []) fs.appendFileSync(this.log, c);
      held = undefined;
      opened();
    };
    const fromQemu = (chunk: Buffer) => {
      if (!held) return fs.appendFileSync(this.log, chunk);
      held.push(chunk);
      said += chunk.toString('latin1');
      const device = ptyDevice(said);
      if (!device) return;
      try {
        // Measured before opening: output after this point reaches the PTY, so none is read twice.
        const early = Buffer.alloc(fs.statSync(this.log).size - start);
        this.transport = openPtyConsole(device, (c) => this.received(c));
        const fd = fs.openSync(this.log, 'r');
        fs.readSync(fd, early, 0, early.length, start);
        fs.closeSync(fd);
        if (early.length) this.received(early);
        for (const k of this.pending.splice(0)) this.transport.write(k);
      } catch (err) {
        held.push(Buffer.from(`cradle: the console ${device} could not be opened: ${(err as Error).message}\n`));
        this.child.kill('SIGTERM');
      }
      release();
    };
    this.child.stdout!.on('data', fromQemu);
    this.child.stderr!.on('data', fromQemu);
    this.child.once('close', () => {
      release();
      // The PTY ends once its last output is read (EIO after QEMU closed its side); in case not:
      setTimeout(() => this.transport?.close(), 2000).unref();
    });
    return ptyOpened.then(() => this.transport?.ended);
  }

  private received(chunk: Buffer): void {
    this.unread = (this.unread + chunk.toString('latin1')).slice(-1 << 20);
    this.match();
    for (const l of this.listeners) l(chunk);
  }

  private match(): void {
    for (const w of [...this.watchers]) {
      const m = w.re.exec(this.unread);
      if (!m) continue;
      this.unread = this.unread.slice(m.index + m[0].length);
      this.watchers.splice(this.watchers.indexOf(w), 1);
      w.done(m);
    }
  }

  /** Types on the serial console, as a person at it would (`\r` is Enter). */
  type(text: string): void {
    this.write(text);
  }

  /** As type(): the name a terminal session (test/support/terminal-session.ts) writes by. */
  write(data: string | Uint8Array): void {
    if (this.closed) return;
    if (this.transport) this.transport.write(data);
    else this.pending.push(data);
  }

  /** Calls `cb` with the console's output from now on, as UTF-8 text; returns how to stop. */
  onData(cb: (text: string) => void): () => void {
    const decoder = new StringDecoder('utf8');
    return this.onOutput((chunk) => cb(decoder.write(chunk)));
  }

  private onOutput(cb: (chunk: Buffer) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Resolves with the first match of `re` in console output after the previous match. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers = this.watchers.filter((w) => w.done !== done);
        reject(new Error(`no ${re} on the console within ${timeoutMs / 1000} s (console: ${this.log})`));
      }, timeoutMs);
      const done = (m: RegExpMatchArray | undefined) => {
        clearTimeout(timer);
        if (m) resolve(m);
        else reject(new Error(`the machine stopped before ${re} appeared (console: ${this.log})`));
      };
      if (this.closed) {
        const m = re.exec(this.unread);
        return done(m ?? undefined);
      }
      this.watchers.push({ re, done });
      this.match();
    });
  }

  /**
   * A person at the console: their keys go to the machine and its output to their terminal (raw,
   * when it is one, so every key goes through as typed, Ctrl-C included) until they press the
   * detach key (Ctrl-] by default, as telnet's), the machine stops, or `until` settles (the lab
   * hands the console back when the wizard's install is done). Their terminal is left as it was
   * found.
   */
  async attach(
    stdin: NodeJS.ReadStream,
    stdout: NodeJS.WriteStream,
    o: { detachKey?: number; until?: Promise<unknown> } = {},
  ): Promise<void> {
    const detachKey = o.detachKey ?? 0x1d;
    if (this.closed) return;
    const wasRaw = stdin.isTTY ? stdin.isRaw : false;
    let detach!: () => void;
    const detached = new Promise<void>((r) => (detach = r));
    const keys = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const at = b.indexOf(detachKey);
      if (at < 0) return this.write(b);
      if (at > 0) this.write(b.subarray(0, at));
      detach();
    };
    const stopShowing = this.onOutput((chunk) => stdout.write(chunk));
    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.on('data', keys);
    stdin.once('end', detach);
    stdin.resume();
    try {
      await Promise.race([detached, this.exited, ...(o.until ? [o.until.catch(() => {})] : [])]);
    } finally {
      stopShowing();
      stdin.off('data', keys);
      stdin.off('end', detach);
      stdin.pause();
      if (stdin.isTTY) stdin.setRawMode(wasRaw);
    }
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}
