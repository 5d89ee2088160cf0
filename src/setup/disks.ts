// Which disks the head node is installed on: the answer file's filters (path, model, serial,
// size; then all, the smallest or the largest), never the medium the setup booted from. A filter
// that selects nothing, or selects the boot medium, is refused with the disks that were seen, so
// the operator can write a better one (what users of other installers ask for most: an installer
// that cannot wipe the wrong disk).
import { AnswersError, type Answers } from './answers.ts';
import type { DiskFact, MachineFacts } from './facts.ts';

/** Shell-style match: `*` any run, `?` one character; the whole text must match. */
export function globMatch(pattern: string, text: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(text);
}

export const gb = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;

/** How an operator recognises a disk: path, model, serial, size. */
export function describeDisk(d: DiskFact): string {
  return `${d.path} (${[d.model || 'no model', d.serial ? `serial ${d.serial}` : 'no serial', gb(d.sizeBytes)].join(', ')})`;
}

type DiskAnswers = NonNullable<Answers['disks']>;

function matches(m: DiskAnswers['match'], d: DiskFact): boolean {
  if (!m) return true;
  return (
    (!m.path || globMatch(m.path, d.path) || globMatch(m.path, d.name)) &&
    (!m.model || globMatch(m.model, d.model)) &&
    (!m.serial || globMatch(m.serial, d.serial)) &&
    (m.minSize === undefined || d.sizeBytes >= m.minSize) &&
    (m.maxSize === undefined || d.sizeBytes <= m.maxSize)
  );
}

/** The disks the answers choose on this machine, in the order they will be used (the first boots). */
export function selectDisks(spec: DiskAnswers, facts: MachineFacts): DiskFact[] {
  const seen = facts.disks.map((d) => `  ${describeDisk(d)}${d.name === facts.bootMedium ? ': the boot medium' : ''}`);
  const listing = seen.length ? `the disks of this machine:\n${seen.join('\n')}` : 'this machine has no disks';
  const matching = facts.disks.filter((d) => matches(spec.match, d));
  const medium = matching.find((d) => d.name === facts.bootMedium);
  if (medium && spec.match)
    throw new AnswersError(
      `'disks.match' selects ${describeDisk(medium)}, the medium the setup booted from, which is never wiped: narrow the filter (model, serial or path); ${listing}`,
    );
  const usable = matching.filter((d) => d.name !== facts.bootMedium && !d.removable && d.sizeBytes > 0);
  if (!usable.length)
    throw new AnswersError(
      `'disks.match' selects no disk${spec.match ? '' : ' (removable disks and the boot medium are left out)'}: ${listing}`,
    );
  if (spec.pick === 'all') return spec.count ? usable.slice(0, spec.count) : usable;
  const bySize = [...usable].sort((a, b) =>
    spec.pick === 'smallest' ? a.sizeBytes - b.sizeBytes : b.sizeBytes - a.sizeBytes,
  );
  return bySize.slice(0, spec.count ?? 1);
}
