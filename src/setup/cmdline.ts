// What the kernel command line tells `cradle setup` (as boot arguments reached Kusu's
// installer through ISOLINUX and /proc/cmdline): where the answers are, the consent to wipe disks
// without asking, and canned settings that pre-fill the answers.
import type { Answers } from './answers.ts';

export interface SetupBootArgs {
  /** cradle.answers=: a path on the medium, an http(s):// URL, or label:NAME. */
  answers?: string;
  /** cradle.answers-fingerprint=: the SHA-256 fingerprint of the answers server's certificate. */
  fingerprint?: string;
  /** cradle.wipe=yes: disks may be erased with no question. Anything else: they may not. */
  wipe: boolean;
  /**
   * cradle.dry-run=yes: a rehearsal; the setup shows its plan (after the wizard, if it asks) and
   * touches nothing, as `cradle setup --dry-run` does.
   */
  dryRun: boolean;
  /** Canned settings: cradle.language=, cradle.keyboard=, cradle.timezone=. */
  canned: Partial<Pick<Answers, 'language' | 'keyboard' | 'timezone'>>;
}

export function setupBootArgs(cmdline: string): SetupBootArgs {
  const args = new Map<string, string>();
  for (const token of cmdline.trim().split(/\s+/)) {
    const m = /^cradle\.([a-z-]+)=(.*)$/.exec(token);
    if (m) args.set(m[1], m[2]);
  }
  const canned: SetupBootArgs['canned'] = {};
  for (const key of ['language', 'keyboard', 'timezone'] as const) {
    const v = args.get(key);
    if (v) canned[key] = v;
  }
  return {
    ...(args.get('answers') ? { answers: args.get('answers') } : {}),
    ...(args.get('answers-fingerprint') ? { fingerprint: args.get('answers-fingerprint') } : {}),
    wipe: args.get('wipe') === 'yes',
    dryRun: args.get('dry-run') === 'yes',
    canned,
  };
}
