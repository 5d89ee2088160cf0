// Headless Chromium for the web pages' tests: Debian's chromium, driven by playwright-core.
import fs from 'node:fs';

/** The browser binary itself (/usr/bin/chromium is a wrapper script). */
export const CHROMIUM = '/usr/lib/chromium/chromium';

export function hasChromium(): boolean {
  return fs.existsSync(CHROMIUM);
}
