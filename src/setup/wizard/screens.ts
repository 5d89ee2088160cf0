// The wizard's short screens (Kusu's Welcome, Language, Keyboard, Host name, Time zone and Root
// password): one or two fields each, checked by the answer file's own schema, so the wizard and
// an answer file refuse the same things with the same words.
import { sha512Crypt } from '../../util/sha512-crypt.ts';
import { answersSchema } from '../answers.ts';
import { before, type Checked, plural, type Screen, type WizardState } from './model.ts';

const schemaCheck =
  (key: 'language' | 'keyboard' | 'hostname', message?: string) =>
  (raw: string): Checked => {
    const r = answersSchema.shape[key].safeParse(raw);
    return r.success ? { value: raw } : { problem: `'${raw}': ${message ?? r.error.issues[0].message}` };
  };

const SECTION_NAMES: Partial<Record<string, string>> = {
  hostname: 'host name',
  timezone: 'time zone',
  rootPassword: 'root password',
};

const machineSummary = (st: WizardState) => {
  const f = st.facts;
  return `This machine: ${f.firmware.toUpperCase()} firmware, ${plural(f.disks.length, 'disk')}, ${plural(f.nics.length, 'network interface')}.`;
};

export const welcomeScreen: Screen = {
  id: 'welcome',
  step: 1,
  title: 'Welcome',
  prefilled: () => false,
  body: (st) => [
    'Cradle installs this machine as the head node of a cluster: the machine that network-boots and installs the compute nodes, on its provisioning network.',
    "The next screens ask for the language, keyboard, networks, host name, time zone, root password, disks and kits. Nothing is written to a disk before the last screen, where typing 'yes' confirms.",
    '',
    machineSummary(st),
    ...(st.given.length
      ? [
          `Given already: ${st.given.map((k) => SECTION_NAMES[k] ?? k).join(', ')}. Their screens are skipped where what was given passes; Back still reaches them.`,
        ]
      : []),
  ],
  next: (_st, entered) =>
    entered.start === undefined ? { id: 'start', prompt: 'Press Enter to begin', default: '' } : undefined,
  commit: (st) => ({ state: st }),
};

function textScreen(
  id: 'language' | 'keyboard',
  step: number,
  title: string,
  prompt: string,
  fallback: string,
  body: string[],
): Screen {
  return {
    id,
    step,
    title,
    prefilled: (st) =>
      st.given.includes(id) && st.answers[id] !== undefined && 'value' in schemaCheck(id)(st.answers[id] as string),
    body: () => body,
    next: (st, entered) =>
      entered[id] === undefined
        ? { id, prompt, default: before(st, id, id) ?? st.answers[id] ?? fallback, check: schemaCheck(id) }
        : undefined,
    commit: (st, entered) => ({ state: { ...st, answers: { ...st.answers, [id]: entered[id] } } }),
  };
}

export const languageScreen = textScreen('language', 2, 'Language', 'locale', 'en_US.UTF-8', [
  'The language of the head node: a locale such as en_US.UTF-8, de_DE.UTF-8, fr_FR.UTF-8 or ja_JP.UTF-8.',
]);

export const keyboardScreen = textScreen('keyboard', 3, 'Keyboard', 'keymap', 'us', [
  'The console keymap of the head node, such as us, uk, de, de-latin1, fr, fr-latin9, es, it, jp106 or dvorak.',
]);

export const hostnameScreen: Screen = {
  id: 'hostname',
  step: 6,
  title: 'Host name',
  prefilled: (st) =>
    st.given.includes('hostname') &&
    st.answers.hostname !== undefined &&
    answersSchema.shape.hostname.safeParse(st.answers.hostname).success,
  body: () => [
    "The head node's fully qualified host name, such as head.cluster.example.com. Its domain becomes the DNS domain of the compute nodes.",
  ],
  next: (st, entered) =>
    entered.hostname === undefined
      ? {
          id: 'hostname',
          prompt: 'host name',
          default: before(st, 'hostname', 'hostname') ?? st.answers.hostname,
          check: (raw) =>
            schemaCheck(
              'hostname',
              'expected a fully qualified host name, with its domain, such as head.cluster.example.com',
            )(raw.toLowerCase()),
        }
      : undefined,
  commit: (st, entered) => ({ state: { ...st, answers: { ...st.answers, hostname: entered.hostname } } }),
};

const ZONES = [...new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/UTC'])].sort();

/** A time zone by its name, in any case; else up to five that contain what was typed. */
export function checkTimezone(raw: string): Checked {
  const t = raw.replace(/ /g, '_');
  const exact = ZONES.find((z) => z.toLowerCase() === t.toLowerCase());
  if (exact) return { value: exact };
  const near = ZONES.filter((z) => z.toLowerCase().includes(t.toLowerCase()));
  if (near.length)
    return {
      problem: `there is no time zone '${raw}': did you mean ${near.slice(0, 5).join(', ')}${near.length > 5 ? ` (and ${near.length - 5} more)` : ''}?`,
    };
  return { problem: `there is no time zone '${raw}': give a region/city name such as Europe/Berlin, or UTC` };
}

export const timezoneScreen: Screen = {
  id: 'timezone',
  step: 7,
  title: 'Time zone',
  prefilled: (st) =>
    st.given.includes('timezone') && st.answers.timezone !== undefined && 'value' in checkTimezone(st.answers.timezone),
  body: () => [
    "The head node's time zone, as region/city: Europe/Berlin, America/New_York, Asia/Tokyo. A city alone is looked up (Berlin).",
  ],
  next: (st, entered) =>
    entered.timezone === undefined
      ? {
          id: 'timezone',
          prompt: 'time zone',
          default: before(st, 'timezone', 'timezone') ?? st.answers.timezone ?? 'UTC',
          check: checkTimezone,
        }
      : undefined,
  commit: (st, entered) => ({ state: { ...st, answers: { ...st.answers, timezone: entered.timezone } } }),
};

const MIN_PASSWORD = 8;
const MAX_PASSWORD = 256;

/**
 * The root password, typed twice and never echoed. It is hashed (SHA-512 crypt) here, at commit:
 * the draft, the entries and the answers returned hold only the hash.
 */
export const passwordScreen: Screen = {
  id: 'password',
  step: 8,
  title: 'Root password',
  prefilled: (st) => st.given.includes('rootPassword') && !!st.answers.rootPassword?.hash,
  body: (st) => [
    `The root password of the head node: at least ${MIN_PASSWORD} characters. It is not shown as it is typed, and only its SHA-512 crypt hash is kept.`,
    ...(st.answers.rootPassword?.hash ? ['A password is set already: Enter keeps it.'] : []),
  ],
  next: (st, entered) => {
    const keep = !!st.answers.rootPassword?.hash;
    if (entered.password === undefined)
      return {
        id: 'password',
        prompt: 'root password',
        secret: true,
        ...(keep ? { default: '', shown: 'keep the one set' } : {}),
        check: (raw) =>
          raw.length < MIN_PASSWORD
            ? { problem: `a root password has at least ${MIN_PASSWORD} characters: this one has ${raw.length}` }
            : raw.length > MAX_PASSWORD
              ? { problem: `a root password has at most ${MAX_PASSWORD} characters` }
              : { value: raw },
      };
    if (entered.password !== '' && entered.again === undefined)
      return { id: 'again', prompt: 'the same password again', secret: true };
    return undefined;
  },
  commit: (st, entered) => {
    if (entered.password === '') return { state: st };
    if (entered.password !== entered.again)
      return { problems: ['the two passwords differ: type the password twice, the same'] };
    const hash = sha512Crypt(entered.password, st.salt);
    return { state: { ...st, answers: { ...st.answers, rootPassword: { hash } } } };
  },
};
