// Kusu's Partitioning screen: the machine's disks listed by model, serial and size (never the
// medium the setup booted from), the ones to use chosen by number or name, then Cradle's default
// layout or custom volumes typed one a line. The rules are layoutProblems', each with its own
// message: 40 GB in all, /, /boot and /depot present, /boot not on LVM. The answer file chooses
// disks by filter rather than by list (so one file fits a rack of alike machines): the choice is
// written as the simplest filter that selects exactly those disks here.
import { AnswersError, parseSize, type VolumeAnswer } from '../answers.ts';
import { describeDisk, selectDisks } from '../disks.ts';
import type { DiskFact, MachineFacts } from '../facts.ts';
import { DEFAULT_VOLUMES, planHeadLayout, VOLUME_GROUP } from '../layout.ts';
import {
  before,
  type Checked,
  choice,
  type Entries,
  problemsOf,
  type Screen,
  type WizardState,
  words,
} from './model.ts';

type DiskAnswers = NonNullable<WizardState['answers']['disks']>;
type DiskFilter = Omit<DiskAnswers, 'layout'>;

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const MAX_VOLUMES = 32;
const MOUNT = /^(\/[A-Za-z0-9._/-]*|swap)$/;

/** The disks the screen offers: every disk but the boot medium and empty ones (card readers). */
export const offeredDisks = (f: MachineFacts) => f.disks.filter((d) => d.name !== f.bootMedium && d.sizeBytes > 0);

/** A size as typed back: 16GiB, 512MiB, 40GB, or bytes. */
export function formatSize(s: number | 'rest'): string {
  if (s === 'rest') return 'rest';
  for (const [unit, n] of [
    ['TiB', 2 ** 40],
    ['GiB', GiB],
    ['MiB', MiB],
    ['GB', 1e9],
    ['MB', 1e6],
  ] as const)
    if (s % n === 0) return `${s / n}${unit}`;
  return String(s);
}

/** A volume as one line: mount, size, the file system when not the usual, `plain` when not in LVM. */
export function formatVolume(v: VolumeAnswer): string {
  const usual = v.mount === 'swap' ? 'swap' : 'ext4';
  return [
    v.mount,
    formatSize(v.size),
    ...(v.fs && v.fs !== usual ? [v.fs] : []),
    ...(v.lvm === false ? ['plain'] : []),
    ...(v.lvm === true ? ['lvm'] : []),
  ].join(' ');
}

/** `MOUNT SIZE [ext4|xfs|swap] [plain|lvm]` as a volume, or what is wrong with it. */
export function parseVolume(text: string): { volume: VolumeAnswer } | { problem: string } {
  const [mount, size, ...rest] = words(text);
  const syntax = "write a mount point (or swap) and a size, e.g. '/var 4GiB' or '/boot 1GiB plain'";
  if (!MOUNT.test(mount ?? '')) return { problem: `'${mount}' is not a mount point such as /var, or swap: ${syntax}` };
  if (!size) return { problem: `${mount} has no size: ${syntax}` };
  const bytes = size.toLowerCase() === 'rest' ? 'rest' : parseSize(size);
  if (bytes === undefined) return { problem: `'${size}' is not a size: write e.g. 40GB, 12GiB, 512MiB or rest` };
  const v: VolumeAnswer = { mount, size: bytes };
  for (const w of rest.map((x) => x.toLowerCase())) {
    if (w === 'ext4' || w === 'xfs' || w === 'swap') v.fs = w;
    else if (w === 'plain' || w === 'lvm') v.lvm = w === 'lvm';
    else return { problem: `'${w}': after the size come ext4, xfs or swap, and plain or lvm` };
  }
  return { volume: v };
}

/** The disks a typed choice names (numbers of the list, names, paths, or all), in the machine's order. */
export function parseDiskChoice(raw: string, facts: MachineFacts): { disks: DiskFact[] } | { problem: string } {
  const offered = offeredDisks(facts);
  const t = words(raw);
  if (t.length === 1 && t[0].toLowerCase() === 'all') return { disks: offered.filter((d) => !d.removable) };
  const chosen = new Set<DiskFact>();
  for (const w of t) {
    const d = /^\d+$/.test(w) ? offered[Number(w) - 1] : offered.find((x) => x.name === w || x.path === w);
    if (!d) {
      const medium = facts.disks.find((x) => x.name === facts.bootMedium && (x.name === w || x.path === w));
      return {
        problem: medium
          ? `${medium.path} holds the medium the setup booted from: it is never wiped`
          : `there is no disk '${w}' here: choose among ${offered.map((x, i) => `${i + 1} (${x.name})`).join(', ') || 'none'}`,
      };
    }
    chosen.add(d);
  }
  if (!chosen.size) return { problem: 'choose at least one disk' };
  return { disks: offered.filter((d) => chosen.has(d)) };
}

const sameDisks = (a: DiskFact[], b: DiskFact[]) => a.length === b.length && a.every((d) => b.includes(d));

function selects(spec: DiskFilter, facts: MachineFacts, chosen: DiskFact[]): boolean {
  try {
    return sameDisks(selectDisks({ ...spec, layout: 'default' }, facts), chosen);
  } catch (err) {
    if (err instanceof AnswersError) return false;
    throw err;
  }
}

/** The simplest filter that selects exactly `chosen` on this machine (the given one when it still does). */
export function filterFor(chosen: DiskFact[], facts: MachineFacts, given?: DiskAnswers): DiskFilter | undefined {
  const paths = chosen.map((d) => d.path);
  let prefix = paths[0] ?? '';
  for (const p of paths) while (!p.startsWith(prefix)) prefix = prefix.slice(0, -1);
  const candidates: DiskFilter[] = [];
  if (given)
    candidates.push({
      ...(given.match ? { match: given.match } : {}),
      pick: given.pick,
      ...(given.count ? { count: given.count } : {}),
    });
  candidates.push({ pick: 'all' });
  if (chosen.length === 1) candidates.push({ match: { path: chosen[0].path }, pick: 'all' });
  candidates.push({ match: { path: `${prefix}*` }, pick: 'all' });
  if (paths.every((p) => p.length === paths[0].length))
    candidates.push({
      match: { path: [...paths[0]].map((c, i) => (paths.every((p) => p[i] === c) ? c : '?')).join('') },
      pick: 'all',
    });
  for (const pick of ['smallest', 'largest'] as const) candidates.push({ pick, count: chosen.length });
  return candidates.find((c) => selects(c, facts, chosen));
}

/** layoutProblems' messages, for someone at the wizard rather than editing a file. */
export function layoutForOperator(message: string): string {
  return message
    .replace(/; choose more or larger disks \('disks\.match', 'disks\.pick'\)/, ': choose more or larger disks')
    .replace(/add a volume with 'mount: ([^']+)'/, 'add a volume for $1 (a custom layout)')
    .replace("write 'lvm: false' for /boot", "write 'plain' on /boot's line")
    .replace(
      "swap is 'mount: swap' with 'fs: swap', and only that",
      'swap is the volume swap with the file system swap, and only that',
    );
}

/** The disks the given answers select here, as the list's numbers; undefined when they select none. */
function givenChoice(st: WizardState): string | undefined {
  if (!st.answers.disks) return undefined;
  try {
    const offered = offeredDisks(st.facts);
    return selectDisks(st.answers.disks, st.facts)
      .map((d) => offered.indexOf(d) + 1)
      .join(' ');
  } catch (err) {
    if (err instanceof AnswersError) return undefined;
    throw err;
  }
}

/** The volume lines offered as defaults: as typed before, as given, or Cradle's default layout. */
function volumeDefaults(st: WizardState): string[] {
  const typed = st.entries.disks;
  if (typed?.vol1 !== undefined) {
    const out: string[] = [];
    for (let k = 1; typed[`vol${k}`] !== undefined && typed[`vol${k}`] !== '.'; k++) out.push(typed[`vol${k}`]);
    return out;
  }
  const layout = st.answers.disks?.layout;
  return (Array.isArray(layout) ? layout : DEFAULT_VOLUMES).map(formatVolume);
}

function diskProblems(disks: DiskAnswers, facts: MachineFacts): string[] {
  try {
    planHeadLayout(disks.layout, selectDisks(disks, facts), facts.firmware);
    return [];
  } catch (err) {
    return problemsOf(err).map(layoutForOperator);
  }
}

function volumesFrom(entered: Entries): VolumeAnswer[] {
  const out: VolumeAnswer[] = [];
  for (let k = 1; entered[`vol${k}`] !== undefined && entered[`vol${k}`] !== '.'; k++) {
    const r = parseVolume(entered[`vol${k}`]);
    if ('volume' in r) out.push(r.volume);
  }
  return out;
}

const VOLUME_SYNTAX = [
  'One volume a line: a mount point (or swap), a size (4GiB, 500MiB, 40GB, or rest), then optionally ext4, xfs or swap, and plain (a partition, as /boot must be) or lvm (the default). Enter keeps the line shown, - drops it, . ends the list.',
];

export const diskScreen: Screen = {
  id: 'disks',
  step: 9,
  title: 'Partitioning',
  prefilled: (st) =>
    st.given.includes('disks') && !!st.answers.disks && diskProblems(st.answers.disks, st.facts).length === 0,
  body: (st) => {
    const offered = offeredDisks(st.facts);
    const medium = st.facts.disks.find((d) => d.name === st.facts.bootMedium);
    return [
      medium
        ? `The disks of this machine (${medium.path}, the medium the setup booted from, is never offered):`
        : 'The disks of this machine:',
      ...(offered.length
        ? offered.map((d, i) => `  ${String(i + 1).padStart(2)}  ${describeDisk(d)}${d.removable ? ' removable' : ''}`)
        : ['  (none)']),
      'The disks chosen are erased once step 11 is confirmed; the first holds /boot and boots. A head node needs at least 40 GB in all, and /, /boot and /depot.',
      `The default layout: ${DEFAULT_VOLUMES.map(formatVolume).join(', ')}; all but /boot in LVM (volume group ${VOLUME_GROUP}).`,
    ];
  },
  next: (st, entered) => {
    if (entered.disks === undefined) {
      const offered = offeredDisks(st.facts);
      const all = offered.filter((d) => !d.removable).map((d) => offered.indexOf(d) + 1);
      return {
        id: 'disks',
        prompt: 'disks to use (numbers or names, or all)',
        default: before(st, 'disks', 'disks') ?? givenChoice(st) ?? (all.length ? all.join(' ') : undefined),
        check: (raw): Checked => {
          const r = parseDiskChoice(raw, st.facts);
          if ('problem' in r) return r;
          const offeredNow = offeredDisks(st.facts);
          return { value: r.disks.map((d) => offeredNow.indexOf(d) + 1).join(' ') };
        },
      };
    }
    if (entered.layout === undefined)
      return {
        id: 'layout',
        prompt: 'layout (default or custom)',
        default: before(st, 'disks', 'layout') ?? (Array.isArray(st.answers.disks?.layout) ? 'custom' : 'default'),
        check: choice(['default', 'custom']),
      };
    if (entered.layout !== 'custom') return undefined;
    const defaults = volumeDefaults(st);
    for (let k = 1; k <= MAX_VOLUMES; k++) {
      const v = entered[`vol${k}`];
      if (v === '.') return undefined;
      if (v !== undefined) continue;
      return {
        id: `vol${k}`,
        prompt: `volume ${k}`,
        default: defaults[k - 1] ?? '.',
        ...(k === 1 ? { intro: VOLUME_SYNTAX } : {}),
        check: (raw): Checked => {
          if (raw === '.' || raw === '-') return { value: raw };
          const r = parseVolume(raw);
          return 'volume' in r ? { value: formatVolume(r.volume) } : r;
        },
      };
    }
    return undefined;
  },
  commit: (st, entered) => {
    const picked = parseDiskChoice(entered.disks, st.facts);
    if ('problem' in picked) return { problems: [picked.problem] };
    const filter = filterFor(picked.disks, st.facts, st.answers.disks);
    if (!filter)
      return {
        problems: [
          `no disk filter of the answer file selects exactly ${picked.disks.map((d) => d.name).join(', ')}: choose all the disks, one, or disks whose names share a pattern (sda, sdb)`,
        ],
      };
    const disks: DiskAnswers = { ...filter, layout: entered.layout === 'custom' ? volumesFrom(entered) : 'default' };
    const problems = diskProblems(disks, st.facts);
    if (problems.length) return { problems };
    return { state: { ...st, answers: { ...st.answers, disks } } };
  },
};
