// The wizard's terminal: line by line, like Anaconda's text mode and for the same reason, since a
// head node is often installed over a serial console (80x24, TERM=vt100 or linux, a tty that
// reports 0x0 until someone runs stty). No cursor addressing and no escape sequence is ever
// written: every line is cut to fit 80 columns (79, so a terminal that wraps at the last column
// does not add blank lines), control characters from the machine's facts are masked, and only
// ASCII is written unless the locale and the terminal are UTF-8. Input is read with node:readline
// as plain lines, so the kernel's line discipline echoes and edits them; for a secret the tty is
// put in raw mode (no echo) for that one line.
import readline from 'node:readline';
import { Transform } from 'node:stream';
import type { ReadStream, WriteStream } from 'node:tty';

/** What a tty reporting 0 columns or rows (a serial console before stty) is taken to be. */
export const DEFAULT_COLUMNS = 80;
export const DEFAULT_ROWS = 24;

/** UTF-8 when the locale says so (LC_ALL, then LC_CTYPE, then LANG) and the terminal is not a VT100's kin. */
export function isUtf8(env: NodeJS.ProcessEnv): boolean {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /\.utf-?8/i.test(locale) && !/^(vt\d+|dumb|ansi)\b/.test(env.TERM ?? '');
}

/** Glyphs beyond ASCII the wizard's own text may use, and their ASCII forms. */
const TO_ASCII: Record<string, string> = {
  '\u2500': '-',
  '\u2026': '...',
  '\u2013': '-',
  '\u2014': '-',
  '\u2018': "'",
  '\u2019': "'",
  '\u201c': '"',
  '\u201d': '"',
};

/** A line as it may be written: tabs as spaces, control characters masked, ASCII only if asked. */
export function clean(line: string, ascii: boolean): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: masking them is the point
  let s = line.replace(/\t/g, '  ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  if (ascii) s = s.replace(/[^ -~]/gu, (c) => TO_ASCII[c] ?? '?');
  return s;
}

/** A line cut into lines of at most `max` columns, at spaces where it can be; continuations indented. */
export function wrap(line: string, max: number): string[] {
  if ([...line].length <= max) return [line];
  const indent = (/^ */.exec(line)?.[0] ?? '').slice(0, Math.floor(max / 2));
  // Prose continues at the margin; an indented item (a disk, a problem) continues under its text.
  const cont = indent ? `${indent}  ` : '';
  const out: string[] = [];
  let rest = [...line];
  let lead = indent.length;
  while (rest.length > max) {
    let cut = rest.lastIndexOf(' ', max);
    if (cut <= lead) cut = max;
    out.push(rest.slice(0, cut).join('').trimEnd());
    rest = [...cont, ...rest.slice(cut).join('').trimStart()];
    lead = cont.length;
  }
  out.push(rest.join(''));
  return out;
}

/** A secret line as typed in raw mode: backspaces and Ctrl-U applied (the line discipline is off). */
export function editLine(raw: string): string {
  let s = '';
  for (const c of raw) {
    if (c === '\x7f' || c === '\b') s = [...s].slice(0, -1).join('');
    else if (c === '\x15') s = '';
    else s += c;
  }
  return s;
}

/** Ctrl-C typed while the tty is raw (it sends no signal then): taken as the quit key. */
export const CTRL_C = '\x03';

export class Terminal {
  readonly width: number;
  readonly rows: number;
  readonly ascii: boolean;
  /** Long blocks pause every screenful, on a terminal only (not when the output is a file or a pipe). */
  readonly paged: boolean;
  private readonly rl: readline.Interface;
  private readonly queue: string[] = [];
  private waiting?: (line: string | undefined) => void;
  private ended = false;
  private sinceInput = 0;

  private readonly input: NodeJS.ReadableStream;
  /** On a tty: CR to LF, before readline. */
  private readonly splitter?: Transform;
  private readonly output: NodeJS.WritableStream;

  constructor(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env) {
    this.input = input;
    this.output = output;
    const tty = output as Partial<WriteStream>;
    this.width = Math.min(tty.columns && tty.columns > 0 ? tty.columns : DEFAULT_COLUMNS, DEFAULT_COLUMNS);
    this.rows = tty.rows && tty.rows > 0 ? tty.rows : DEFAULT_ROWS;
    this.ascii = !isUtf8(env);
    this.paged = !!tty.isTTY;
    // On a tty, Enter is one CR in raw mode (a secret) and one LF otherwise (the line discipline
    // maps it): each CR is a line's end of its own. readline would instead wait for an LF to pair
    // with the CR, and swallow the next line's LF. From a pipe or a file, CR LF is one line end.
    if ((input as Partial<ReadStream>).isTTY)
      this.splitter = input.pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            done(
              null,
              Buffer.from(chunk).map((b) => (b === 0x0d ? 0x0a : b)),
            );
          },
        }),
      );
    this.rl = readline.createInterface({
      input: this.splitter ?? input,
      terminal: false,
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    this.rl.on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(line);
      } else this.queue.push(line);
    });
    this.rl.on('close', () => {
      this.ended = true;
      this.waiting?.(undefined);
      this.waiting = undefined;
    });
  }

  /** The widest line written. */
  get max(): number {
    return this.width - 1;
  }

  /** A screen's title line, ruled across. */
  rule(title: string): string {
    const bar = this.ascii ? '=' : '\u2500';
    const head = `${bar}${bar} ${title} `;
    return `${head}${bar.repeat(Math.max(0, this.max - head.length))}`;
  }

  /** Writes lines, pausing every screenful on a terminal; false when the input ended at a pause. */
  async print(lines: string[]): Promise<boolean> {
    for (const line of lines.flatMap((l) => wrap(clean(l, this.ascii), this.max))) {
      if (this.paged && this.sinceInput >= this.rows - 2) {
        if ((await this.ask('-- more: press Enter --')) === undefined) return false;
      }
      this.output.write(`${line}\n`);
      this.sinceInput++;
    }
    return true;
  }

  /** Asks one line; undefined when the input ended. A secret is not echoed (on a tty). */
  async ask(prompt: string, secret = false): Promise<string | undefined> {
    const lines = wrap(clean(prompt.trimEnd(), this.ascii), this.max);
    const last = lines.pop() as string;
    if (!(await this.print(lines))) return undefined;
    const tty = this.input as Partial<ReadStream>;
    const raw = secret && !!tty.isTTY && typeof tty.setRawMode === 'function';
    if (raw) tty.setRawMode?.(true);
    this.output.write(`${last} `);
    let line: string | undefined;
    try {
      line = await this.nextLine();
    } finally {
      if (raw) {
        tty.setRawMode?.(false);
        // Raw mode echoed nothing, not even the Enter.
        this.output.write('\n');
      }
    }
    this.sinceInput = 1;
    if (line === undefined) return undefined;
    return raw ? (line.includes(CTRL_C) ? CTRL_C : editLine(line)) : line;
  }

  /** Ctrl-C in cooked mode (SIGINT): the pending prompt gets CTRL_C, as it would in raw mode. */
  interrupt(): void {
    if (!this.waiting) return;
    const w = this.waiting;
    this.waiting = undefined;
    this.output.write('\n');
    w(CTRL_C);
  }

  private nextLine(): Promise<string | undefined> {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  close(): void {
    this.rl.close();
    if (this.splitter) {
      this.input.unpipe(this.splitter);
      this.input.pause();
    }
  }
}
