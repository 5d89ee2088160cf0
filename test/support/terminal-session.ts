// A test at a terminal, as a person at a console would be: it waits for a prompt, types a line,
// and presses Enter at every "-- more" pause on the way. The terminal is anything that takes keys
// and reports output: a program in a PTY (node-pty, as test/setup-wizard.test.ts runs the wizard)
// or a QEMU machine's serial console (src/lab/qemu.ts RunningMachine, the lab's head node).
import type pty from '@lydell/node-pty';
import type { RunningMachine } from '../../src/lab/qemu.ts';

/** What a session needs of a terminal: node-pty's IPty and RunningMachine both are one. */
export interface Terminal {
  write(text: string): void;
  onData(cb: (text: string) => void): unknown;
}

/** One step of a script: wait for `expect` in the output; then, if `reply` is given, type it and Enter. */
export interface ScriptStep {
  expect: RegExp;
  reply?: string;
}

/** How the terminal asks to see more of a long screen; Enter goes on. */
export const MORE_PAUSE = '-- more: press Enter --';

export class TerminalSession<T extends Terminal = Terminal> {
  readonly term: T;
  /** Everything the terminal printed since the session began. */
  output = '';
  /** How long a prompt may take to appear before the session fails (a guard, not a pause). */
  readonly promptLimitMs: number;
  private seen = 0;
  private check?: () => void;

  constructor(term: T, o: { promptLimitMs?: number } = {}) {
    this.term = term;
    this.promptLimitMs = o.promptLimitMs ?? 30_000;
    term.onData((d) => {
      this.output += d;
      this.check?.();
    });
  }

  /** Waits until `re` appears in what is new since the last wait; Enter at every "-- more" pause. */
  expect(re: RegExp, limitMs = this.promptLimitMs): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.check = undefined;
        reject(
          new Error(`no ${re} in the output within ${limitMs / 1000} s; the end of it:\n${this.output.slice(-3000)}`),
        );
      }, limitMs);
      this.check = () => {
        const rest = this.output.slice(this.seen);
        const m = re.exec(rest);
        const more = rest.indexOf(MORE_PAUSE);
        if (m && (more < 0 || m.index < more)) {
          this.seen += m.index + m[0].length;
          clearTimeout(timer);
          this.check = undefined;
          resolve();
        } else if (more >= 0) {
          this.seen += more + MORE_PAUSE.length;
          this.term.write('\r');
        }
      };
      this.check();
    });
  }

  /** Waits for a prompt, then types a line. */
  async answer(prompt: RegExp, text: string): Promise<void> {
    await this.expect(prompt);
    this.term.write(`${text}\r`);
  }

  /** Plays a script, step by step. */
  async run(script: readonly ScriptStep[]): Promise<void> {
    for (const step of script) {
      if (step.reply === undefined) await this.expect(step.expect);
      else await this.answer(step.expect, step.reply);
    }
  }

  get lines(): string[] {
    return this.output.split(/\r?\n/);
  }
}

/** A session with a program in a PTY: its exit status too. */
export class PtySession extends TerminalSession<pty.IPty> {
  readonly exit: Promise<number> = new Promise((resolve) => this.term.onExit((e) => resolve(e.exitCode)));
}

/** A session at a QEMU machine's serial console: `new TerminalSession(machine, { promptLimitMs })`. */
export type MachineSession = TerminalSession<RunningMachine>;
