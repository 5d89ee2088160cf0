// Runs `cradle setup`'s wizard on this process's terminal, for test/setup-wizard.test.ts (which
// drives it through a PTY): the machine's facts from a JSON file, the kits of a directory, and on
// success the answers written as JSON to a file. The exit status is the wizard's.
//   node test/support/wizard-driver.ts FACTS.json KITS-DIR OUT.json [SALT]
import fs from 'node:fs';
import { parseFacts } from '../../src/setup/facts.ts';
import { runWizard } from '../../src/setup/wizard/wizard.ts';

const [factsFile, kitsDir, out, salt] = process.argv.slice(2);
const result = await runWizard({
  input: process.stdin,
  output: process.stdout,
  facts: parseFacts(fs.readFileSync(factsFile, 'utf8'), factsFile),
  kitsDir,
  ...(salt ? { salt } : {}),
});
if (result.status === 0) fs.writeFileSync(out, `${JSON.stringify(result.answers, null, 2)}\n`);
process.exitCode = result.status;
