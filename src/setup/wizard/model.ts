// The pure part of `cradle setup`'s wizard (Kusu's 11 screens): what a screen is, what the wizard
// carries from one screen to the next, and how one typed line becomes an answer. A screen shows a
// block of lines, asks its fields one by one (each with a default taken on Enter), then commits
// them: the draft answer file gains its section, or the screen gets its problems back and is asked
// again. Nothing here reads a terminal or a file, so every screen is tested with golden cases;
// terminal.ts does the I/O and wizard.ts walks the screens.
import { AnswersError, type Answers } from '../answers.ts';
import type { MachineFacts } from '../facts.ts';

/** Kusu's installer had 11 screens; Cradle keeps their documented order, kits before confirmation. */
export const STEPS = 11;

export type ScreenId =
  | 'welcome'
  | 'language'
  | 'keyboard'
  | 'network'
  | 'gateway'
  | 'hostname'
  | 'timezone'
  | 'password'
  | 'disks'
  | 'kits'
  | 'confirm';

/** The answer file as far as it is known: every section optional, as a partial file pre-fills it. */
export type Draft = Partial<Answers> & { cradleSetup: Answers['cradleSetup'] };

/** What was typed on one screen, by field id: the defaults when the screen is shown again (Back). */
export type Entries = Record<string, string>;

/** A kit the wizard could read: from the medium's kits directory (a file name) or from a URL. */
export interface FoundKit {
  source: string;
  name: string;
  version: string;
  kind: 'os' | 'addon';
  os?: string;
}

/** A kit file or URL whose kit.json could not be read, and why. */
export interface KitProblem {
  source: string;
  problem: string;
}

export type KitLookup = FoundKit | KitProblem;

export const isFound = (k: KitLookup): k is FoundKit => !('problem' in k);

export interface WizardState {
  facts: MachineFacts;
  answers: Draft;
  /** What was typed, by screen; secret fields are never kept here. */
  entries: Partial<Record<ScreenId, Entries>>;
  /** The sections of the answers given to the wizard: only their screens are ever skipped. */
  given: (keyof Answers)[];
  /** Where the kits of the installation medium were looked for. */
  kitsDir?: string;
  mediaKits: KitLookup[];
  /** Kits typed in as URLs, looked up by wizard.ts before the kits screen commits. */
  urlKits: Record<string, KitLookup>;
  /** The root password's salt (tests fix it; otherwise a random one). */
  salt?: string;
}

/** A wizard with nothing answered yet, for this machine. */
export function emptyState(facts: MachineFacts, o: { salt?: string; kitsDir?: string } = {}): WizardState {
  return {
    facts,
    answers: { cradleSetup: 1 },
    entries: {},
    given: [],
    mediaKits: [],
    urlKits: {},
    ...(o.kitsDir ? { kitsDir: o.kitsDir } : {}),
    ...(o.salt ? { salt: o.salt } : {}),
  };
}

export type Checked = { value: string } | { problem: string };

export interface Field {
  id: string;
  prompt: string;
  /** Taken on Enter. Undefined: there is no default, an answer must be typed. */
  default?: string;
  /** How the default is shown in brackets, when not as itself (e.g. "keep the one set"). */
  shown?: string;
  /** Not echoed, and never kept in the entries (the root password). */
  secret?: boolean;
  /** Lines printed just before the prompt (the syntax of a list, say). */
  intro?: string[];
  /** Turns the typed text into the value kept, or says what is wrong with it. */
  check?: (raw: string, entered: Entries) => Checked;
}

export type Commit = { state: WizardState } | { problems: string[] };

export interface Screen {
  id: ScreenId;
  step: number;
  title: string;
  /** The given answers already hold this screen's section, and it passes: going forward skips it. */
  prefilled(st: WizardState): boolean;
  /** The lines shown above the fields. */
  body(st: WizardState): string[];
  /** The next field to ask, given what was typed so far on this visit; undefined when done. */
  next(st: WizardState, entered: Entries): Field | undefined;
  /** The typed values as the draft's section, or every problem found. */
  commit(st: WizardState, entered: Entries): Commit;
  /** Kit URLs to look up (over the network) before commit can judge them. */
  lookups?(st: WizardState, entered: Entries): { url: string; fingerprint?: string }[];
}

/** The line that heads every screen. */
export const stepTitle = (s: Pick<Screen, 'step' | 'title'>) => `Step ${s.step} of ${STEPS}: ${s.title}`;

/** The keys, under every screen's body. */
export function keysLine(s: Pick<Screen, 'step'>): string {
  const back = s.step > 1 ? '  < or b: Back' : '';
  const next = s.step === STEPS ? 'yes: install' : 'Enter: the [default], then Next';
  return `${next}${back}  q: quit`;
}

/** The prompt as printed: `ens3 role (public/provisioning/unused) [public]: `. */
export function promptText(f: Field): string {
  const shown = f.shown ?? (f.default ? f.default : undefined);
  return `${f.prompt}${shown ? ` [${shown}]` : ''}: `;
}

/** One typed line (already known not to be a key: Back, quit) as the field's value, or its problem. */
export function resolveInput(f: Field, raw: string, entered: Entries): Checked {
  const text = f.secret ? raw : raw.trim();
  if (text === '') {
    if (f.default === undefined) return { problem: `${f.prompt}: an answer is needed here (there is no default)` };
    if (f.default === '' || !f.check) return { value: f.default };
    return f.check(f.default, entered);
  }
  return f.check ? f.check(text, entered) : { value: text };
}

/**
 * Drives a screen with typed lines, as the terminal would (without Back or quit): what the unit
 * tests use. Returns the commit, with the problems of single fields on the way.
 */
export function answerScreen(
  screen: Screen,
  st: WizardState,
  inputs: string[],
): Commit & { fieldProblems: string[]; asked: Field[] } {
  const entered: Entries = {};
  const secret = new Set<string>();
  const fieldProblems: string[] = [];
  const asked: Field[] = [];
  const queue = [...inputs];
  for (let f = screen.next(st, entered); f; f = screen.next(st, entered)) {
    asked.push(f);
    if (!queue.length) throw new Error(`${screen.id}: the script ends at '${f.prompt}'`);
    const r = resolveInput(f, queue.shift() as string, entered);
    if ('problem' in r) fieldProblems.push(r.problem);
    else entered[f.id] = r.value;
    if (f.secret) secret.add(f.id);
  }
  if (queue.length) throw new Error(`${screen.id}: ${queue.length} inputs left over: ${queue.join(' | ')}`);
  const c = screen.commit(st, entered);
  // As wizard.ts does: what was typed is kept for the next visit.
  return { ...('state' in c ? { state: keepEntries(screen, c.state, entered, secret) } : c), fieldProblems, asked };
}

/** The entries kept for Back: the typed values without the secret ones. */
export function keepEntries(screen: Screen, st: WizardState, entered: Entries, secret: Set<string>): WizardState {
  const kept = Object.fromEntries(Object.entries(entered).filter(([k]) => !secret.has(k)));
  return { ...st, entries: { ...st.entries, [screen.id]: kept } };
}

/** What was typed before on this screen (Back keeps it), for a field's default. */
export const before = (st: WizardState, id: ScreenId, field: string): string | undefined => st.entries[id]?.[field];

/**
 * The problems an AnswersError names, one per entry: planHeadLayout and planNetwork write
 * "heading:\n  problem\n  problem". Anything else is a bug, and is thrown on.
 */
export function problemsOf(err: unknown): string[] {
  if (!(err instanceof AnswersError)) throw err;
  const lines = err.message.split('\n');
  return lines.length > 1 ? lines.slice(1).map((l) => l.trim()) : [err.message];
}

/** One of `options`, typed whole or as a prefix that names only one, in any case. */
export function choice(options: readonly string[]): (raw: string) => Checked {
  return (raw) => {
    const t = raw.toLowerCase();
    const exact = options.find((o) => o === t);
    const found = exact ? [exact] : options.filter((o) => o.startsWith(t));
    if (found.length === 1) return { value: found[0] };
    return {
      problem: found.length
        ? `'${raw}' could be ${found.join(' or ')}: type more of it`
        : `'${raw}' is not one of ${options.join(', ')}`,
    };
  };
}

/** Items typed as a list: separated by spaces or commas. */
export const words = (raw: string) => raw.split(/[\s,]+/).filter(Boolean);

export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
