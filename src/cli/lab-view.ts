// What both `cradle lab` runs show while they work (the plain lab's machines, a head node and the
// compute nodes it births): a line per machine, redrawn in place on a terminal, or printed when a
// machine's stage changes when the output is a file; the accelerator the machines run under; and
// Ctrl-C stopping the machines and servers before the process ends.

/** A line with the time of day, for what the lab does between the live lines. */
export const labLog = (line: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);

export interface LiveRow {
  host: string;
  /** The stage without figures: a line is printed when it changes (no terminal). */
  stage: string;
  line: string;
}

export class LiveView {
  private readonly tty = process.stdout.isTTY;
  private shownLines = 0;
  private readonly stages = new Map<string, string>();
  /** While a person holds a machine's console, nothing is drawn. */
  paused = false;

  show(rows: LiveRow[]): void {
    if (this.paused) return;
    if (this.tty) {
      if (this.shownLines) process.stdout.write(`\x1b[${this.shownLines}A`);
      for (const r of rows) process.stdout.write(`\x1b[2K${r.line}\n`);
      this.shownLines = rows.length;
      return;
    }
    for (const r of rows) {
      if (this.stages.get(r.host) === r.stage) continue;
      this.stages.set(r.host, r.stage);
      console.log(r.line);
    }
  }

  /** A line of the lab's own between redraws: the next redraw starts below it. */
  log(line: string): void {
    this.shownLines = 0;
    labLog(line);
  }
}

/** KVM only when a smoke boot proves it works here, unless asked; said on the console. */
export async function labAccelerator(asked: 'auto' | 'kvm' | 'tcg'): Promise<'kvm' | 'tcg'> {
  const { chooseAccelerator } = await import('../lab/accel.ts');
  const { newestKernel } = await import('../initramfs/build.ts');
  const accel = asked === 'auto' ? await chooseAccelerator(newestKernel()) : { accel: asked, why: 'asked for' };
  labLog(
    `machines run under ${accel.accel === 'kvm' ? 'KVM' : 'TCG (emulation, 10-40x slower than hardware)'}: ${accel.why}`,
  );
  return accel.accel;
}

/** Ctrl-C or SIGTERM: the lab's machines, servers and namespace go first. */
export function stopOnSignals(destroy: () => Promise<void>): void {
  const stop = () => {
    void destroy().then(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
