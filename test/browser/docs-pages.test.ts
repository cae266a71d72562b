/**
 * /docs (Swagger UI) and /redoc in a real browser, under the pages' strict Content-Security-Policy:
 * each renders the API's title and its routes, the browser reports no CSP violation and no page
 * error, and nothing is loaded from any origin but the gateway's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers.js';
import { chromiumAvailable, launchBrowser } from '../support/browser.js';

let gw: TestGateway;
let browser: Browser;

beforeAll(async () => {
  if (!chromiumAvailable) return;
  gw = await startGateway();
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await gw?.close();
});

/** Opens `path`; records CSP violations, page errors and the origin of everything that loaded. */
async function open(path: string) {
  const page: Page = await browser.newPage();
  const problems: string[] = [];
  const origins = new Set<string>();
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfinished', (request) => {
    const url = new URL(request.url());
    if (url.protocol === 'http:' || url.protocol === 'https:') origins.add(url.origin);
  });
  // Runs in the page (a string: the test's TypeScript has no DOM types).
  await page.addInitScript(
    "document.addEventListener('securitypolicyviolation', (e) => console.error('Refused to load (CSP ' + e.violatedDirective + '): ' + e.blockedURI));",
  );
  await page.goto(`${gw.url}${path}`, { waitUntil: 'networkidle' });
  return { page, problems, origins };
}

describe.skipIf(!chromiumAvailable)('documentation pages in Chromium', () => {
  it('/docs renders the API and its routes, within its CSP, from the gateway only', async () => {
    const { page, problems, origins } = await open('/docs/');
    await page.locator('.swagger-ui .info .title').waitFor({ timeout: 15_000 });
    expect(await page.locator('.swagger-ui .info .title').innerText()).toContain('ProxyGPT');
    expect(await page.locator('.opblock-summary-path').allInnerTexts()).toContain('/ratelimit');
    expect(problems).toEqual([]);
    expect([...origins]).toEqual([gw.url]);
    await page.close();
  }, 30_000);

  it('/redoc renders the API and its routes, within its CSP, from the gateway only', async () => {
    const { page, problems, origins } = await open('/redoc');
    await page.locator('h1').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('h1').first().innerText()).toContain('ProxyGPT');
    expect(await page.locator('body').innerText()).toContain('/ratelimit');
    // The Redocly logo comes from a CDN and is refused by img-src: the one violation allowed.
    expect(problems.filter((p) => !/cdn\.redoc\.ly/.test(p))).toEqual([]);
    expect(problems.some((p) => /img-src/.test(p) && /cdn\.redoc\.ly/.test(p))).toBe(true);
    expect([...origins]).toEqual([gw.url]);
    await page.close();
  }, 30_000);
});
