/**
 * Debian's Chromium through playwright-core, for the browser tests. Where
 * there is no browser (a fresh machine), a browser test file reports itself
 * skipped with the reason; with REQUIRE_BROWSER=1 (CI) a missing browser is a
 * failure instead. CHROMIUM_PATH points at another executable (or, to see the
 * skip, at one that is not there).
 */
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { describe } from 'vitest';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Why the browser cannot be launched here, or undefined when it can. */
function missingBrowser(): string | undefined {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return undefined;
  } catch (error) {
    return `no browser at ${CHROMIUM} (${(error as NodeJS.ErrnoException).code}); install Debian's chromium to run it`;
  }
}

/**
 * describe(), for a suite that needs the browser: skipped, with its reason in
 * its name and on the console, when there is none (a failure under REQUIRE_BROWSER=1).
 */
export function describeWithBrowser(name: string, suite: () => void): void {
  const missing = missingBrowser();
  if (!missing) {
    describe(name, suite);
    return;
  }
  if (process.env.REQUIRE_BROWSER === '1') throw new Error(`REQUIRE_BROWSER=1, but ${missing}`);
  console.warn(`skipped "${name}": ${missing}`);
  describe.skip(`${name} (skipped: ${missing})`, suite);
}

/** Chromium, headless, as the tests drive it. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
