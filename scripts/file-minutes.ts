// How long one test file may run before scripts/run-tests.ts stops it: 20 minutes, or what the
// file asks for in a header comment near its top (`// cradle-test-minutes: 30`), for the few VM
// tiers that install a head node and then let it birth a machine; CRADLE_TEST_FILE_MINUTES
// overrides both for a run.
export const DEFAULT_FILE_MINUTES = 20;

export function fileMinutes(source: string, override?: string): number {
  if (override !== undefined && override !== '') {
    const n = Number(override);
    if (!(n > 0)) throw new Error(`CRADLE_TEST_FILE_MINUTES='${override}': give a positive number of minutes`);
    return n;
  }
  // Only the file's opening comment counts: a string in a test body must not change the limit.
  const head = source.split('\n').slice(0, 40).join('\n');
  const m = /^\/\/ cradle-test-minutes: (\d+)\s*$/m.exec(head);
  return m ? Number(m[1]) : DEFAULT_FILE_MINUTES;
}
