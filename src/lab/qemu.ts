// QEMU machines for the lab and the VM tests: the command line (pure, from what the machine is),
// and a running machine whose serial console is logged to a file and can be waited on.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

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
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/**
 * The QEMU command line: network boot first, then the first disk (iPXE's `exit` falls through
 * to it), serial console on stdio. The default CPU model: under TCG the named models are slower
 * (they turn on page-table isolation) and `-cpu max` is 1.5-2x slower on file-system work.
 */
/** A value inside a comma-separated QEMU option: commas are doubled. */
const opt = (value: string) => value.replaceAll(',', ',,');

export function qemuArgs(m: QemuMachine): string[] {
  const args = [
    '-name',
    m.name,
    '-m',
    String(m.memoryMiB),
    '-smp',
    '2',
    '-nographic',
    '-nodefaults',
    '-serial',
    'stdio',
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

/** A running QEMU whose console goes to `log`; `waitFor` watches it. */
export class RunningMachine {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Console output not yet consumed by a match of waitFor. */
  private unread = '';
  private watchers: { re: RegExp; done: (m: RegExpMatchArray | undefined) => void }[] = [];
  private closed = false;

  readonly log: string;

  constructor(command: string[], log: string) {
    this.log = log;
    const out = fs.openSync(log, 'a');
    // stdin is the serial console's keyboard (type()).
    this.child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', out] });
    this.child.stdin!.on('error', () => {});
    fs.closeSync(out);
    this.child.stdout!.on('data', (chunk: Buffer) => {
      fs.appendFileSync(log, chunk);
      this.unread = (this.unread + chunk.toString('latin1')).slice(-1 << 20);
      this.match();
    });
    // 'close', not 'exit': the console's last output may still be in the pipe at 'exit'.
    this.exited = new Promise((r) =>
      this.child.once('close', (code) => {
        this.closed = true;
        for (const w of this.watchers.splice(0)) w.done(undefined);
        r(code);
      }),
    );
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
    this.child.stdin!.write(text);
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

  async stop(): Promise<void> {
    if (this.closed) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}
