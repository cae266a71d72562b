/**
 * Headless Chromium for the page tests (playwright-core driving Debian's /usr/bin/chromium;
 * Playwright's own browser download does not work here). When no Chromium is installed the page
 * suites are skipped with one line, except under CI=true, where that fails the run (.ci/run
 * installs it).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.PROXYGPT_TEST_CHROMIUM ?? '/usr/bin/chromium';

export const chromiumAvailable = existsSync(CHROMIUM_PATH);
if (!chromiumAvailable) {
  if (process.env.CI === 'true') throw new Error(`Chromium not found at ${CHROMIUM_PATH}: the page tests need it in CI (apt-get install -y chromium)`);
  console.warn(`Chromium not found at ${CHROMIUM_PATH}: skipping the page tests (apt-get install -y chromium)`);
}

/** A fresh headless browser; the flags keep it from reaching for Google's hosts on this closed network. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
