// The replay file: the answers as `cradle setup` used them (the wizard's included), the root
// password only as its hash, so `cradle setup --answers FILE` installs the same way with no
// question. The install saves it in the new system (services.ts HEAD_PATHS.answers, written by
// new-system.ts saveAnswers); the setup from the medium also keeps it in the live system
// (cli/setup.ts), stopped at the confirmation or not.
import { stringify } from 'yaml';
import type { Answers } from './answers.ts';

/** The replay file's text, as /root/cradle-answers.yaml holds it. `answers` as the plan keeps them (hashed). */
export function replayText(answers: Answers): string {
  return `# The answers this head node was installed with (cradle setup); the password is hashed.\n${stringify(answers)}`;
}
