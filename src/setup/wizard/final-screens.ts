// Kusu's last two screens. Kits: the kits of the installation medium, chosen by number (all by
// default), and kits typed in as URLs; the head node needs an OS kit (Kusu demanded one too) and
// the Cradle kit, the add-on named `cradle` that brings Cradle's own services. Confirmation: the
// whole plan as `cradle setup --dry-run` prints it, every disk to be erased named by model, serial
// and size, and nothing happens until `yes` is typed.
import { type Answers, answersSchema, keyPath } from '../answers.ts';
import { describePlan, planSetup } from '../plan.ts';
import {
  before,
  type Checked,
  type Entries,
  type FoundKit,
  isFound,
  problemsOf,
  type Screen,
  type WizardState,
  words,
} from './model.ts';

type KitAnswers = NonNullable<Answers['kits']>;

/** The name of the Cradle kit (src/kit/cradle-kit.ts builds it). */
export const CRADLE_KIT = 'cradle';
const URL_RE = /^https:\/\/\S+$/i;
const FINGERPRINT_RE = /^(sha256:)?([0-9a-fA-F]{2}:?){32}$/;

const label = (k: Pick<FoundKit, 'name' | 'version'>) => `${k.name}/${k.version}`;
const describeKit = (k: FoundKit) => `${label(k)} (${k.kind === 'os' ? `OS kit, ${k.os ?? 'an OS'}` : 'add-on'})`;

/** `URL [FINGERPRINT]` as one kit source, or what is wrong with it. */
export function parseKitUrl(text: string): { url: string; fingerprint?: string } | { problem: string } {
  const [url, fingerprint, ...extra] = words(text);
  if (!URL_RE.test(url ?? ''))
    return {
      problem: `'${url}' is not an https:// URL of a kit file (only https tells a site's kit from one put in its way)`,
    };
  if (extra.length) return { problem: 'after the URL comes at most the certificate fingerprint' };
  if (fingerprint === undefined) return { url };
  if (!FINGERPRINT_RE.test(fingerprint))
    return { problem: `'${fingerprint}' is not a SHA-256 fingerprint: 64 hex digits, colons allowed` };
  return { url, fingerprint };
}

/** Which of the medium's kits a typed choice names: all, none, numbers, or name[/version]. */
export function parseKitChoice(raw: string, found: FoundKit[]): { kits: FoundKit[] } | { problem: string } {
  const t = words(raw.toLowerCase());
  if (t.length === 1 && t[0] === 'all') return { kits: found };
  if (t.length === 1 && t[0] === 'none') return { kits: [] };
  const chosen = new Set<FoundKit>();
  for (const w of t) {
    const k = /^\d+$/.test(w) ? found[Number(w) - 1] : found.find((x) => x.name === w || label(x) === w);
    if (!k)
      return {
        problem: `there is no kit '${w}' on the medium: choose among ${found.map((x, i) => `${i + 1} (${label(x)})`).join(', ') || 'none'}, all or none`,
      };
    chosen.add(k);
  }
  return { kits: found.filter((k) => chosen.has(k)) };
}

/** The rules for the kits chosen: an OS kit and the Cradle kit. */
export function kitProblems(kits: FoundKit[]): string[] {
  const problems: string[] = [];
  const chosen = kits.map(describeKit).join(', ') || 'none';
  if (!kits.some((k) => k.kind === 'os'))
    problems.push(
      `no OS kit among the kits chosen (${chosen}): the head node and its compute nodes are installed from one; choose one from the medium or give its URL`,
    );
  if (!kits.some((k) => k.name === CRADLE_KIT && k.kind === 'addon'))
    problems.push(
      `no Cradle kit among the kits chosen (${chosen}): the add-on named '${CRADLE_KIT}' brings Cradle's own services to the head node; choose it from the medium or give its URL`,
    );
  return problems;
}

const urlLines = (entered: Entries) => {
  const out: string[] = [];
  for (let k = 1; entered[`url${k}`] !== undefined && entered[`url${k}`] !== '.'; k++)
    if (entered[`url${k}`] !== '-') out.push(entered[`url${k}`]);
  return out;
};

/** The kits section for what was typed, with every problem: unreadable URLs, a missing OS or Cradle kit. */
export function kitsFrom(
  st: WizardState,
  media: string,
  urls: string[],
): { kits: KitAnswers } | { problems: string[] } {
  const found = st.mediaKits.filter(isFound);
  const picked = parseKitChoice(media, found);
  if ('problem' in picked) return { problems: [picked.problem] };
  const problems: string[] = [];
  const sources: KitAnswers['urls'] = [];
  const fromUrls: FoundKit[] = [];
  for (const line of urls) {
    const u = parseKitUrl(line);
    if ('problem' in u) {
      problems.push(u.problem);
      continue;
    }
    sources.push(u);
    const k = st.urlKits[u.url];
    if (!k) problems.push(`${u.url}: not looked up yet`);
    else if (isFound(k)) fromUrls.push(k);
    else problems.push(`${u.url}: its kit.json cannot be read: ${k.problem}`);
  }
  problems.push(...kitProblems([...picked.kits, ...fromUrls]));
  if (problems.length) return { problems };
  // `all` only when every kit file was readable: the install would add an unreadable one too.
  const everyOne = picked.kits.length === found.length && found.length === st.mediaKits.length;
  return { kits: { fromMedia: everyOne && found.length ? 'all' : picked.kits.map(label), urls: sources } };
}

/** The given kits section, as the screen's typed values would be. */
function givenEntries(st: WizardState): { media: string; urls: string[] } | undefined {
  const k = st.answers.kits;
  if (!k) return undefined;
  const found = st.mediaKits.filter(isFound);
  const media =
    k.fromMedia === 'all'
      ? 'all'
      : k.fromMedia.length
        ? k.fromMedia
            .map((n) => found.findIndex((x) => x.name === n || label(x) === n) + 1)
            .map((i, j) => (i ? String(i) : (k.fromMedia as string[])[j]))
            .join(' ')
        : 'none';
  return { media, urls: k.urls.map((u) => (u.fingerprint ? `${u.url} ${u.fingerprint}` : u.url)) };
}

export const kitsScreen: Screen = {
  id: 'kits',
  step: 10,
  title: 'Kits',
  prefilled: (st) => {
    if (!st.given.includes('kits')) return false;
    const g = givenEntries(st);
    return !!g && 'kits' in kitsFrom(st, g.media, g.urls);
  },
  body: (st) => [
    st.kitsDir ? `The kits on the installation medium (${st.kitsDir}):` : 'No kits directory was given.',
    ...st.mediaKits
      .filter(isFound)
      .map((k, i) => `  ${String(i + 1).padStart(2)}  ${describeKit(k).padEnd(36)} ${k.source}`),
    ...st.mediaKits.filter((k) => !isFound(k)).map((k) => `   -  ${k.source}: ${'problem' in k ? k.problem : ''}`),
    ...(st.kitsDir && !st.mediaKits.length ? ['  (none)'] : []),
    `The head node needs an OS kit and the Cradle kit (the add-on named ${CRADLE_KIT}).`,
    "More kits can come from http(s):// URLs, one a line, each optionally followed by the SHA-256 fingerprint of the server's certificate when no trusted CA signed it.",
  ],
  next: (st, entered) => {
    const given = givenEntries(st);
    if (entered.media === undefined && st.mediaKits.some(isFound))
      return {
        id: 'media',
        prompt: 'kits from the medium (numbers or names, all or none)',
        default: before(st, 'kits', 'media') ?? given?.media ?? 'all',
        check: (raw): Checked => {
          const r = parseKitChoice(raw, st.mediaKits.filter(isFound));
          return 'problem' in r ? r : { value: words(raw.toLowerCase()).join(' ') };
        },
      };
    const typed = st.entries.kits;
    const defaults: string[] = [];
    if (typed?.url1 !== undefined)
      for (let k = 1; typed[`url${k}`] !== undefined && typed[`url${k}`] !== '.'; k++) defaults.push(typed[`url${k}`]);
    else defaults.push(...(given?.urls ?? []));
    for (let k = 1; ; k++) {
      const v = entered[`url${k}`];
      if (v === '.') return undefined;
      if (v !== undefined) continue;
      return {
        id: `url${k}`,
        prompt: `kit URL ${k} (- drops it, . ends)`,
        default: defaults[k - 1] ?? '.',
        check: (raw): Checked => {
          if (raw === '.' || raw === '-') return { value: raw };
          const r = parseKitUrl(raw);
          return 'problem' in r ? r : { value: r.fingerprint ? `${r.url} ${r.fingerprint}` : r.url };
        },
      };
    }
  },
  lookups: (st, entered) => {
    const lines = entered.url1 === undefined ? (givenEntries(st)?.urls ?? []) : urlLines(entered);
    return lines.map(parseKitUrl).filter((u) => 'url' in u);
  },
  commit: (st, entered) => {
    const r = kitsFrom(st, entered.media ?? 'none', urlLines(entered));
    if ('problems' in r) return r;
    return { state: { ...st, answers: { ...st.answers, kits: r.kits } } };
  },
};

/** The draft as a complete answer file and its plan, or every problem left. */
export function finalPlan(
  st: WizardState,
): { answers: Answers; plan: ReturnType<typeof planSetup> } | { problems: string[] } {
  const parsed = answersSchema.safeParse(st.answers);
  if (!parsed.success) return { problems: parsed.error.issues.map((i) => `'${keyPath(i.path)}': ${i.message}`) };
  try {
    const plan = planSetup(parsed.data, st.facts, { salt: st.salt });
    return { answers: plan.answers, plan };
  } catch (err) {
    return { problems: problemsOf(err) };
  }
}

/** The kits the plan takes, as the Kits screen found them. */
function kitsLine(st: WizardState): string {
  const k = st.answers.kits;
  if (!k) return '';
  const found = st.mediaKits.filter(isFound);
  const names = k.fromMedia === 'all' ? undefined : k.fromMedia;
  const media = names ? found.filter((x) => names.some((n) => n === x.name || n === label(x))) : found;
  const all = [...media, ...k.urls.map((u) => st.urlKits[u.url]).filter((x) => x && isFound(x))] as FoundKit[];
  return `kits chosen: ${all.map(describeKit).join(', ')}`;
}

export const confirmScreen: Screen = {
  id: 'confirm',
  step: 11,
  title: 'Confirmation',
  prefilled: () => false,
  body: (st) => {
    const r = finalPlan(st);
    if ('problems' in r)
      return [
        'The answers cannot be planned yet:',
        ...r.problems.map((p) => `  ${p}`),
        'Go back (<) to the screen concerned.',
      ];
    return [...describePlan(r.plan).trimEnd().split('\n'), kitsLine(st), ''];
  },
  next: (_st, entered) =>
    entered.confirm === undefined
      ? {
          id: 'confirm',
          prompt: 'Type yes to erase the disks above and install',
          check: (raw) =>
            raw.toLowerCase() === 'yes'
              ? { value: 'yes' }
              : { problem: 'type yes to erase the disks and install, < to go back, or q to quit' },
        }
      : undefined,
  commit: (st) => {
    const r = finalPlan(st);
    if ('problems' in r) return r;
    return { state: { ...st, answers: r.answers } };
  },
};
