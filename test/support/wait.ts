// Waiting for a state in a test, never for a number of seconds: `check` is polled until it holds,
// and `ms` is only the bound after which the test fails, naming what it waited for.
import assert from 'node:assert/strict';

export async function until(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`still waiting, after ${ms} ms, for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
