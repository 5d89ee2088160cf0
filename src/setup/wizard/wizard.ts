// `cradle setup`'s interactive wizard: Kusu's 11 screens in order, on any terminal (terminal.ts),
// producing nothing but an answer file (the install only ever reads one). A partial answer file
// pre-fills it: a screen whose section was given, and passes, is skipped going forward, and Back
// still reaches it. Exit statuses as Kusu's installer: 0 done, 1 internal error (the log kept in a
// file, and named), 2 the user quit. The root password is hashed before it is kept anywhere.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Answers, answersSchema, keyPath } from '../answers.ts';
import type { MachineFacts } from '../facts.ts';
import { hashAnswers } from '../plan.ts';
import { diskScreen } from './disk-screen.ts';
import { confirmScreen, kitsScreen } from './final-screens.ts';
import { findMediaKits, lookUpKitUrl } from './kits.ts';
import {
  emptyState,
  type Entries,
  isFound,
  type KitLookup,
  keepEntries,
  keysLine,
  promptText,
  resolveInput,
  type Screen,
  type ScreenId,
  stepTitle,
  type WizardState,
} from './model.ts';
import { gatewayScreen, networkScreen } from './network-screens.ts';
import {
  hostnameScreen,
  keyboardScreen,
  languageScreen,
  passwordScreen,
  timezoneScreen,
  welcomeScreen,
} from './screens.ts';
import { CTRL_C, Terminal } from './terminal.ts';

export const SCREENS: readonly Screen[] = [
  welcomeScreen,
  languageScreen,
  keyboardScreen,
  networkScreen,
  gatewayScreen,
  hostnameScreen,
  timezoneScreen,
  passwordScreen,
  diskScreen,
  kitsScreen,
  confirmScreen,
];

export interface WizardOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  facts: MachineFacts;
  /** A partial answer file: what it holds is not asked again. */
  prefill?: Partial<Answers>;
  /** The installation medium's kits directory (*.kit files). */
  kitsDir?: string;
  /** The root password's salt; a random one when not given. */
  salt?: string;
  /** Where the log is kept after an internal error (default: in the temporary directory). */
  logFile?: string;
  /** LANG, LC_ALL, LC_CTYPE and TERM decide between UTF-8 and ASCII (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** How a kit URL is looked up (tests replace it). */
  lookUpUrl?: (url: string, fingerprint?: string) => Promise<KitLookup>;
}

export interface WizardResult {
  status: 0 | 1 | 2;
  answers?: Answers;
}

/** The sections a screen asks for: a partial answer file holding one skips its screen. */
const SECTIONS: (keyof Answers)[] = [
  'language',
  'keyboard',
  'network',
  'hostname',
  'timezone',
  'rootPassword',
  'disks',
  'kits',
];

/** Refused answers given to the wizard: the caller's mistake, reported as Kusu reported errors. */
class GivenAnswersError extends Error {}

async function initialState(o: WizardOptions, lookUp: NonNullable<WizardOptions['lookUpUrl']>): Promise<WizardState> {
  const parsed = answersSchema.safeParse({ ...o.prefill, cradleSetup: 1 });
  if (!parsed.success)
    throw new GivenAnswersError(
      `the answers given to the wizard: ${parsed.error.issues.map((i) => `'${keyPath(i.path)}': ${i.message}`).join('; ')}`,
    );
  // A plain password is hashed at once: from here on only the hash exists.
  const answers = hashAnswers(parsed.data, o.salt);
  const urlKits: Record<string, KitLookup> = {};
  for (const u of answers.kits?.urls ?? []) urlKits[u.url] = await lookUp(u.url, u.fingerprint);
  return {
    ...emptyState(o.facts, o),
    answers,
    given: SECTIONS.filter((k) => o.prefill?.[k] !== undefined),
    mediaKits: await findMediaKits(o.kitsDir),
    urlKits,
  };
}

type Visit = { go: 'next' | 'back' | 'quit'; st: WizardState };

export async function runWizard(o: WizardOptions): Promise<WizardResult> {
  const log: string[] = [];
  const note = (line: string) => log.push(`${new Date().toISOString()} ${line}`);
  const term = new Terminal(o.input, o.output, o.env ?? process.env);
  const lookUp = o.lookUpUrl ?? ((url: string, fp?: string) => lookUpKitUrl(url, fp));

  const confirmQuit = async (): Promise<boolean> => {
    const a = await term.ask('quit? y/N:');
    return a === undefined || a === CTRL_C || /^y(es)?$/i.test(a.trim());
  };

  /** One screen: its block of lines, then its fields; asked again, with its problems, until it commits. */
  const visit = async (screen: Screen, start: WizardState): Promise<Visit> => {
    let st = start;
    let problems: string[] = [];
    for (;;) {
      note(`step ${screen.step} ${screen.title}${problems.length ? ', again' : ''}`);
      const block = [
        '',
        term.rule(stepTitle(screen)),
        ...screen.body(st),
        ...(problems.length ? ['', 'Not accepted:', ...problems.map((p) => `  ! ${p}`), ''] : []),
        keysLine(screen),
      ];
      if (!(await term.print(block))) return { go: 'quit', st };
      const entered: Entries = {};
      const secret = new Set<string>();
      for (let f = screen.next(st, entered); f; f = screen.next(st, entered)) {
        if (f.intro && !(await term.print(f.intro))) return { go: 'quit', st };
        const raw = await term.ask(promptText(f), f.secret);
        if (raw === undefined) return { go: 'quit', st };
        const key = raw.trim().toLowerCase();
        if (key === '<' || key === 'b') return { go: 'back', st: keepEntries(screen, st, entered, secret) };
        if (key === 'q' || raw === CTRL_C) {
          if (await confirmQuit()) return { go: 'quit', st };
          continue;
        }
        const r = resolveInput(f, raw, entered);
        if ('problem' in r) {
          note(`step ${screen.step} ${f.id}: ${r.problem}`);
          if (!(await term.print([`  ! ${r.problem}`]))) return { go: 'quit', st };
          continue;
        }
        entered[f.id] = r.value;
        if (f.secret) secret.add(f.id);
      }
      for (const u of screen.lookups?.(st, entered) ?? []) {
        const known = st.urlKits[u.url];
        if (known && isFound(known)) continue;
        await term.print([`looking up ${u.url} ...`]);
        st = { ...st, urlKits: { ...st.urlKits, [u.url]: await lookUp(u.url, u.fingerprint) } };
      }
      const c = screen.commit(st, entered);
      if ('problems' in c) {
        for (const p of c.problems) note(`step ${screen.step}: ${p}`);
        problems = c.problems;
        // Asked again with what was typed as the defaults.
        st = keepEntries(screen, st, entered, secret);
        continue;
      }
      return { go: 'next', st: keepEntries(screen, c.state, entered, secret) };
    }
  };

  // Ctrl-C asks "quit?" like q instead of killing the process: exit status 2 is how the caller
  // learns the user quit (Kusu's installer was quit by a key too).
  const interactive = !!(o.input as { isTTY?: boolean }).isTTY;
  const onInterrupt = () => term.interrupt();
  if (interactive) process.on('SIGINT', onInterrupt);
  try {
    if (o.prefill?.kits?.urls?.length) await term.print(['Looking up the kit URLs given ...']);
    let st = await initialState(o, lookUp);
    const shown = new Set<ScreenId>();
    for (let i = 0; ; ) {
      const screen = SCREENS[i];
      if (!shown.has(screen.id) && screen.prefilled(st)) {
        note(`step ${screen.step} ${screen.title}: given, skipped`);
        i++;
        continue;
      }
      shown.add(screen.id);
      const v = await visit(screen, st);
      st = v.st;
      if (v.go === 'quit') {
        note('quit');
        await term.print(['', 'Setup quit: nothing was written.']);
        return { status: 2 };
      }
      if (v.go === 'back') {
        // Back reaches a skipped screen too: it is shown from now on.
        if (i > 0) i--;
        shown.add(SCREENS[i].id);
        continue;
      }
      if (screen.id === 'confirm') {
        const answers = answersSchema.parse(st.answers);
        note('confirmed');
        await term.print(['', 'Confirmed: the answers are complete.']);
        return { status: 0, answers };
      }
      i++;
    }
  } catch (err) {
    const file = o.logFile ?? path.join(os.tmpdir(), `cradle-setup-wizard-${process.pid}.log`);
    note(`internal error: ${(err as Error).stack ?? String(err)}`);
    let kept = `the log is kept in ${file}`;
    try {
      fs.writeFileSync(file, `${log.join('\n')}\n`, { mode: 0o600 });
    } catch (e) {
      kept = `the log could not be kept in ${file}: ${(e as Error).message}`;
    }
    const why = err instanceof GivenAnswersError ? err.message : `internal error: ${(err as Error).message}`;
    await term.print(['', why, kept]).catch(() => {});
    return { status: 1 };
  } finally {
    if (interactive) process.off('SIGINT', onInterrupt);
    term.close();
  }
}
