/**
 * /dashboard in a real headless Chromium, on data from real proxied calls: the admin signs in
 * with the key typed into the password field and sees every key in the table and the charts
 * drawn; hostile notes and model names show as their characters and run nothing; a key disabled
 * from the page is refused on its next proxied call; a key holder sees only their own key, in
 * the page and in every answer it fetched; nothing is loaded from another origin, no key is ever
 * in a URL, and the page raises no CSP violation; the view refreshes itself every 30 s (on
 * Playwright's clock). Screenshots go to test-output/dashboard/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumAvailable, launchBrowser } from '../support/browser.js';
import { call } from '../keys/helpers.js';
import { dashboardFixture, HOSTILE_MODEL, HOSTILE_NOTES, type DashboardFixture } from '../dashboard/fixture.js';

const SHOTS = join(process.cwd(), 'test-output', 'dashboard');

let fx: DashboardFixture;
let browser: Browser;

beforeAll(async () => {
  if (!chromiumAvailable) return;
  mkdirSync(SHOTS, { recursive: true });
  [fx, browser] = await Promise.all([dashboardFixture(), launchBrowser()]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await fx?.gw.close();
});

interface Watched {
  page: Page;
  context: BrowserContext;
  /** CSP violations, page errors, dialogs (an alert() would be one). */
  problems: string[];
  urls: string[];
  /** Bodies of every /dashboard/api answer the page received. */
  apiBodies: string[];
}

/** A fresh context (its own sessionStorage) on /dashboard, watching everything the page does. */
async function openDashboard(options: { fakeClock?: boolean } = {}): Promise<Watched> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  if (options.fakeClock === true) await page.clock.install();
  const watched: Watched = { page, context, problems: [], urls: [], apiBodies: [] };
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) watched.problems.push(m.text());
  });
  page.on('pageerror', (err) => watched.problems.push(`page error: ${err.message}`));
  page.on('dialog', (d) => {
    watched.problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('request', (r) => watched.urls.push(r.url()));
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/dashboard/api/')) void r.text().then((t) => watched.apiBodies.push(t), () => undefined);
  });
  await page.addInitScript(
    "document.addEventListener('securitypolicyviolation', (e) => console.error('Refused to load (CSP ' + e.violatedDirective + '): ' + e.blockedURI));",
  );
  await page.goto(`${fx.gw.url}/dashboard`, { waitUntil: 'networkidle' });
  return watched;
}

/** Runs `test` on a fresh dashboard page (openDashboard), closing its context afterwards, also when the test fails. */
async function withDashboard(options: { fakeClock?: boolean }, test: (w: Watched) => Promise<void>): Promise<void> {
  const w = await openDashboard(options);
  try {
    await test(w);
  } finally {
    await w.context.close();
  }
}

async function signIn(page: Page, key: string, range = '24h'): Promise<void> {
  await page.locator('#key-input').fill(key);
  await page.locator('#sign-in-form button[type=submit]').click();
  await page.locator(`body[data-loaded="${range}"]`).waitFor({ timeout: 10_000 });
}

/** What every page of this suite must hold to: same origin only, no key in a URL, no violation, nothing executed. */
async function expectClean(w: Watched): Promise<void> {
  expect(w.problems).toEqual([]);
  const origins = new Set(w.urls.filter((u) => u.startsWith('http')).map((u) => new URL(u).origin));
  expect([...origins]).toEqual([fx.gw.url]);
  for (const url of [...w.urls, w.page.url()]) for (const secret of fx.secrets) expect(url).not.toContain(secret);
  expect(await w.page.evaluate('window.__pwned')).toBeUndefined();
}

const cellTexts = (page: Page, selector: string) => page.locator(selector).allInnerTexts();

describe.skipIf(!chromiumAvailable)('dashboard in Chromium', () => {
  it('admin: sign-in, the keys table, charts with data, hostile strings as text; disabling a key refuses its next call', () =>
    withDashboard({}, async (w) => {
      const { page } = w;
      expect(await page.locator('#key-input').getAttribute('type')).toBe('password');
      await signIn(page, fx.adminKey);
      expect(await page.locator('#who').innerText()).toBe('Signed in as admin');

      // One row per key: the three stored keys and the two environment keys.
      const names = await cellTexts(page, '#keys-table tbody tr .key-name');
      expect(names).toEqual(['alice', 'bob', 'carol', 'env-key-1', 'env-key-2']);
      const aliceRow = page.locator('#keys-table tbody tr', { hasText: fx.alice.id });
      expect(await aliceRow.locator('.notes').innerText()).toBe(HOSTILE_NOTES);
      expect(await aliceRow.innerText()).toContain('requests per hour: 6 of 100 used, 94 left');
      const carolRow = page.locator('#keys-table tbody tr', { hasText: fx.carol.id });
      expect(await carolRow.innerText()).toContain('requests per hour: 2 of 2 used, 0 left');

      // The breakdown by model shows the client's model name as its characters.
      const models = await cellTexts(page, '#models-table tbody tr td:first-child');
      expect(models).toContain(HOSTILE_MODEL);
      expect(models).toContain('gpt-4o-mini');
      // No element came out of any of the hostile strings.
      expect(await page.locator('main img, main script').count()).toBe(0);

      // The cards and charts carry the calls made: 12 calls (alice 6, bob 2, carol 4), two 429s, one upstream error.
      const cards = await page.locator('#totals .card').allInnerTexts();
      expect(cards[0]).toBe('Requests\n12');
      expect(cards.find((c) => c.startsWith('429s'))).toContain('2');
      expect(cards.find((c) => c.startsWith('Upstream errors'))).toContain('1');
      for (const chart of ['requests', 'tokens', 'usd', 'errors', 'latency']) {
        const node = page.locator(`#chart-${chart}`);
        expect(await node.locator('canvas').count(), chart).toBe(1);
        expect(Number(await node.getAttribute('data-points')), chart).toBeGreaterThan(0);
      }
      // The per-key lines are labelled with the keys' names (uPlot's legend).
      const legend = await page.locator('#chart-requests .u-legend').innerText();
      for (const name of ['All keys', 'alice', 'bob', 'carol']) expect(legend).toContain(name);
      await page.screenshot({ path: join(SHOTS, 'admin-24h.png'), fullPage: true });

      // Another range reloads the data.
      await page.locator('#ranges button[data-range="1h"]').click();
      await page.locator('body[data-loaded="1h"]').waitFor();
      expect((await page.locator('#totals .card').first().innerText())).toContain('12');
      await page.screenshot({ path: join(SHOTS, 'admin-1h.png'), fullPage: true });

      // Disable bob from the page: his next proxied call is refused.
      expect((await call(fx.gw, fx.bob.key)).status).toBe(200);
      const bobRow = page.locator('#keys-table tbody tr', { hasText: fx.bob.id });
      await bobRow.locator('button', { hasText: 'Disable' }).click();
      await page.locator('#keys-table tbody tr', { hasText: fx.bob.id }).locator('.badge-disabled').waitFor();
      expect(await page.locator('#keys-table tbody tr', { hasText: fx.bob.id }).locator('button').innerText()).toBe('Enable');
      const refused = await call(fx.gw, fx.bob.key);
      expect(refused.status).toBe(401);
      expect(refused.text).toContain('disabled');
      await page.screenshot({ path: join(SHOTS, 'admin-bob-disabled.png'), fullPage: true });
      // And Enable lets him in again.
      await page.locator('#keys-table tbody tr', { hasText: fx.bob.id }).locator('button', { hasText: 'Enable' }).click();
      await page.locator('#keys-table tbody tr', { hasText: fx.bob.id }).locator('.badge-active').waitFor();
      expect((await call(fx.gw, fx.bob.key)).status).toBe(200);

      // Sign-out forgets the key.
      await page.locator('#sign-out').click();
      await page.locator('#sign-in').waitFor();
      expect(await page.evaluate('sessionStorage.length')).toBe(0);
      await expectClean(w);
    }), 60_000);

  it('key holder: their own key, limits and usage only, in the page and in every answer', () =>
    withDashboard({}, async (w) => {
      const { page } = w;
      await signIn(page, fx.alice.key);
      expect(await page.locator('#who').innerText()).toBe('Signed in with key alice');
      const text = await page.locator('body').innerText();
      for (const other of [fx.bob, fx.carol]) {
        expect(text).not.toContain(other.name);
        expect(text).not.toContain(other.id);
      }
      expect(text).not.toContain(HOSTILE_MODEL); // bob's model
      expect(text).not.toContain('team bob');
      expect(text).not.toContain(HOSTILE_NOTES); // the admin's notes about alice herself
      // Her limits: allowed, used, remaining, reset.
      const limits = await page.locator('#own-limits tbody tr').allInnerTexts();
      expect(limits.find((r) => r.startsWith('requests per hour'))).toMatch(/^requests per hour\s+100\s+\d+\s+\d+\s+\S+/);
      expect(limits.some((r) => r.startsWith('tokens per day'))).toBe(true);
      expect(await page.locator('#totals .card').first().innerText()).toContain('6');
      expect(await page.locator('#models-table tbody tr td:first-child').allInnerTexts()).toEqual(['gpt-4o-mini']);
      await page.screenshot({ path: join(SHOTS, 'key-holder.png'), fullPage: true });

      // Nothing about another key reached the browser in any answer.
      expect(w.apiBodies.length).toBeGreaterThanOrEqual(3);
      for (const body of w.apiBodies) {
        for (const other of [fx.bob, fx.carol]) {
          expect(body).not.toContain(other.id);
          expect(body).not.toContain(`"${other.name}"`);
        }
        expect(body).not.toContain('env-key-');
      }
      await expectClean(w);
    }), 60_000);

  it('refreshes itself every 30 s: a call made after the page loaded shows up without a click', () =>
    withDashboard({ fakeClock: true }, async (w) => {
      const { page } = w;
      await signIn(page, fx.carol.key);
      // From here the page's time moves only when the test moves it (its 30 s timer started at load).
      await page.clock.pauseAt(Date.now() + 1_000);
      const requestsCard = page.locator('#totals .card').first();
      const before = Number((await requestsCard.innerText()).replace(/\D+/g, ''));
      const overviews = () => w.urls.filter((u) => u.includes('/dashboard/api/overview')).length;
      const read = overviews();
      expect((await call(fx.gw, fx.carol.key)).status).toBe(429); // carol's 2 per hour are used: still a call in her usage
      // Until its usage record is written (batched), a refresh could not show it.
      const served = async () => {
        const res = await fetch(`${fx.gw.url}/dashboard/api/overview?range=24h`, { headers: { authorization: `Bearer ${fx.carol.key}` } });
        return ((await res.json()) as { total: { requests: number } }).total.requests;
      };
      await expect.poll(served, { timeout: 10_000 }).toBe(before + 1);
      await page.clock.runFor(20_000);
      expect(overviews()).toBe(read);
      await page.clock.runFor(10_000);
      await expect.poll(async () => Number((await requestsCard.innerText()).replace(/\D+/g, '')), { timeout: 10_000 }).toBe(before + 1);
      expect(overviews()).toBe(read + 1);
      await expectClean(w);
    }), 60_000);

  it('a wrong key is refused with the reason, and nothing is stored', () =>
    withDashboard({}, async (w) => {
      const { page } = w;
      await page.locator('#key-input').fill('pgpt-not-a-real-key-0000000000');
      await page.locator('#sign-in-form button[type=submit]').click();
      await page.locator('#sign-in-error', { hasText: 'Invalid proxy key' }).waitFor();
      expect(await page.locator('#board').isHidden()).toBe(true);
      expect(await page.evaluate('sessionStorage.length')).toBe(0);
      await page.screenshot({ path: join(SHOTS, 'sign-in-refused.png') });
      expect(w.problems).toEqual([]);
      for (const url of w.urls) expect(url).not.toContain('pgpt-not-a-real-key');
    }), 30_000);
});
