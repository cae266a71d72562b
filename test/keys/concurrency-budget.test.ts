/**
 * Reserve, then settle, under 100 concurrent requests of one key with a token budget and with a
 * USD budget. Every request reserves its estimate (an upper bound of the prompt + max_tokens, or
 * PROXYGPT_DEFAULT_MAX_TOKENS) in the same atomic step as the check, and is settled to the usage
 * the mock reports once its answer is over.
 *
 * Each burst is decided before any call settles: the mock holds every admitted call
 * (x-mock-hold) until all 100 are either refused or waiting upstream, then answers them. So the
 * budget admits exactly K = floor(budget / estimate) calls, whatever the timing; every budget here
 * is chosen so that K < 100 and the budget binds. A limiter that checked and reserved in two steps
 * (or did not hold the estimate) would admit more than K.
 *
 * - With max_tokens set, the estimate is an over-estimate: the settled total stays under the budget.
 * - Without max_tokens, the gateway sends the completion budget it reserved
 *   (PROXYGPT_DEFAULT_MAX_TOKENS) upstream as the cap, so the estimate stays an upper bound and the
 *   budget is never passed either (uncapped, the mock would answer 40 or 400 completion tokens).
 * - Only a prompt the estimate under-counts makes it short: each of the K calls in flight adds its
 *   own error, and the budget is closed once passed.
 * USD budgets use prices set here through the admin API, so every expected figure is arithmetic
 * written in the test. The capped token case runs with both limiters (memory, sqlite).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers.js';
import { admin, call, chatRequest, createKey, eventually, rateLimit, startAdminGateway, usageRows, type HttpResult } from './helpers.js';

const N = 100;
/** The gateway's prompt estimate of chatRequest() ("hi there": 1 + 2, 5 for its one message, 3 for the reply). */
const PROMPT_ESTIMATE = 11;

let gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  gateways = [];
});

async function start(env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startAdminGateway(env);
  gateways.push(gw);
  return gw;
}

interface Burst {
  results: HttpResult[];
  admitted: HttpResult[];
  refused: HttpResult[];
}

/**
 * Sends `n` identical calls at once. The mock holds each admitted call until every one of the `n`
 * is decided (refused with its answer, or held upstream); then it answers them all.
 */
async function burst(gw: TestGateway, key: string, n: number, body: Record<string, unknown>, mockHeaders: Record<string, string>): Promise<Burst> {
  let answered = 0;
  const headers = { ...mockHeaders, 'x-mock-hold': '1' };
  const pending = Array.from({ length: n }, () =>
    call(gw, key, { body, headers }).then((r) => {
      answered++;
      return r;
    }),
  );
  await eventually(`all ${n} calls are refused or held upstream`, () => answered + gw.mock.held, (decided) => decided === n);
  gw.mock.release();
  const results = await Promise.all(pending);
  for (const r of results) expect([200, 429], r.text).toContain(r.status);
  return { results, admitted: results.filter((r) => r.status === 200), refused: results.filter((r) => r.status === 429) };
}

/** Exactly `k` of the burst admitted and seen upstream, the rest refused for this key's `unit`. */
function expectAdmitted(gw: TestGateway, b: Burst, k: number, unit: 'tokens' | 'usd'): void {
  expect(k).toBeLessThan(N); // the budget binds
  expect(b.admitted).toHaveLength(k);
  expect(b.refused).toHaveLength(N - k);
  expect(gw.mock.requests).toHaveLength(k);
  for (const r of b.refused) {
    expect(r.body).toMatchObject({ error: { code: 'rate_limit_exceeded', type: unit } });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  }
}

/** Waits until the key's limit `name` shows exactly `expected` used (every admitted call settled). */
async function settled(gw: TestGateway, key: string, name: string, expected: number): Promise<void> {
  await eventually(
    `${name} settles to ${expected}`,
    async () => (await rateLimit(gw, key)).body,
    (b) => b.key?.limits[name]?.used === expected,
  );
}

/** What the usage records of the burst's admitted calls add up to (they are written apart from the limiter). */
async function recorded(gw: TestGateway, keyId: string, calls: number): Promise<{ ok: number; tokens: number; microUsd: number }> {
  const rows = (await usageRows(gw, keyId, calls)).filter((r) => r.status === 200);
  return {
    ok: rows.length,
    tokens: rows.reduce((s, r) => s + r.prompt_tokens + r.completion_tokens, 0),
    microUsd: rows.reduce((s, r) => s + r.cost_micro_usd, 0),
  };
}

describe('a token budget under 100 concurrent requests', () => {
  it('with max_tokens (over-estimate): exactly the calls whose estimates fit are admitted; the settled total stays under', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'tokens-over', tokens_per_hour: 2_000 });
    // Estimate 11 + 60 = 71 per call: 28 × 71 = 1988 fit in 2000, 29 × 71 = 2059 do not.
    const b = await burst(gw, k.key, N, chatRequest({ max_tokens: 60 }), { 'x-mock-prompt-tokens': '10', 'x-mock-completion-tokens': '40' });
    expectAdmitted(gw, b, 28, 'tokens');
    // Each admitted call saw its own reservation: 2000 - 71, 2000 - 2 × 71, ... 2000 - 28 × 71.
    const remaining = b.admitted.map((r) => Number(r.headers.get('x-ratelimit-remaining-tokens'))).sort((x, y) => y - x);
    expect(remaining).toEqual(Array.from({ length: 28 }, (_, i) => 2_000 - (i + 1) * 71));
    for (const r of b.refused) expect(r.headers.get('x-ratelimit-remaining-tokens')).toBe('12');

    // Settled to the reported 10 + 40 = 50 each: 28 × 50 = 1400 of the 2000; the usage records agree.
    await settled(gw, k.key, 'tokens_per_hour', 1_400);
    expect(await recorded(gw, k.id, N)).toMatchObject({ ok: 28, tokens: 1_400 });

    // 600 left: a call estimated at 11 + 590 = 601 does not fit, one at 11 + 589 = 600 does.
    const tooBig = await call(gw, k.key, { body: chatRequest({ max_tokens: 590 }) });
    expect(tooBig.status, tooBig.text).toBe(429);
    expect(tooBig.body).toMatchObject({ error: { code: 'rate_limit_exceeded', type: 'tokens' } });
    expect((await call(gw, k.key, { body: chatRequest({ max_tokens: 589 }) })).status).toBe(200);
    expect(gw.mock.requests).toHaveLength(29);
  });

  for (const limiter of ['memory', 'sqlite']) {
    it(`without max_tokens: the completion is capped at the reserved budget, so 100 at once never pass it (PROXYGPT_LIMITER=${limiter})`, async () => {
      const gw = await start({ PROXYGPT_DEFAULT_MAX_TOKENS: '5', PROXYGPT_LIMITER: limiter });
      const k = await createKey(gw, { name: 'tokens-capped', tokens_per_hour: 1_000 });
      // Estimate 11 + 5 = 16: 62 × 16 = 992 fit in 1000, 63 × 16 = 1008 do not.
      const b = await burst(gw, k.key, N, chatRequest(), { 'x-mock-prompt-tokens': '10', 'x-mock-completion-tokens': '40' });
      expectAdmitted(gw, b, 62, 'tokens');
      // The mock would answer 40 completion tokens, but the gateway sent the reserved 5 as the cap.
      for (const r of gw.mock.requests) expect(JSON.parse(r.body)).toMatchObject({ max_completion_tokens: 5 });
      // Settled to 10 + 5 = 15 each: 62 × 15 = 930 of the 1000 (uncapped it would be 62 × 50 = 3100).
      await settled(gw, k.key, 'tokens_per_hour', 930);
      expect(await recorded(gw, k.id, N)).toMatchObject({ ok: 62, tokens: 930 });
    });
  }

  it('prompt under-estimated, 100 at once: each call in flight adds its error; the budget closes once passed', async () => {
    const gw = await start({ PROXYGPT_DEFAULT_MAX_TOKENS: '5' });
    const k = await createKey(gw, { name: 'tokens-under', tokens_per_hour: 1_000 });
    // The mock reports 40 prompt tokens for a prompt estimated at 11 (as random base64 text would
    // do). The holds still never pass the budget: 62 × 16 = 992 are admitted.
    const b = await burst(gw, k.key, N, chatRequest(), { 'x-mock-prompt-tokens': '40', 'x-mock-completion-tokens': '40' });
    expectAdmitted(gw, b, 62, 'tokens');
    // Settled to 40 + 5 = 45 each: 62 × 45 = 2790, 1790 past the budget (62 × (45 - 16) = 1798 of
    // estimate error on top of the 992 held).
    await settled(gw, k.key, 'tokens_per_hour', 2_790);
    expect(await recorded(gw, k.id, N)).toMatchObject({ ok: 62, tokens: 2_790 });
    // Passed, the budget is closed to every further call until the hour's tokens expire.
    const after = await Promise.all(Array.from({ length: 10 }, () => call(gw, k.key)));
    for (const r of after) {
      expect(r.status, r.text).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(3_000);
    }
    expect(gw.mock.requests).toHaveLength(62);
  });
});

describe('a USD budget under 100 concurrent requests', () => {
  /** $2 / $10 per 1M tokens: 2 and 10 micro-dollars a token. */
  async function priced(env: Record<string, string> = {}): Promise<TestGateway> {
    const gw = await start(env);
    const put = await admin(gw, 'PUT', '/prices/gpt-4o-mini', { input: 2, output: 10 });
    expect(put.status, put.text).toBe(200);
    return gw;
  }

  it('with max_tokens (over-estimate): exactly the calls whose estimates fit are admitted; the settled spend stays under', async () => {
    const gw = await priced();
    const k = await createKey(gw, { name: 'usd-over', usd_per_day: 0.1 });
    // Estimate 11 × 2 + 600 × 10 = 6022 µ$: 16 × 6022 = 96,352 fit in 100,000 µ$, 17 × 6022 = 102,374 do not.
    const b = await burst(gw, k.key, N, chatRequest({ max_tokens: 600 }), { 'x-mock-prompt-tokens': '10', 'x-mock-completion-tokens': '400' });
    expectAdmitted(gw, b, 16, 'usd');
    // Settled to 10 × 2 + 400 × 10 = 4020 µ$ each: 16 × 4020 = 64,320 µ$ of the 100,000.
    await settled(gw, k.key, 'usd_per_day', 0.06432);
    expect(await recorded(gw, k.id, N)).toMatchObject({ ok: 16, tokens: 16 * 410, microUsd: 64_320 });

    // The admin's usage report adds up to the same spend.
    const usage = await admin<{ usd: number; requests: number; status_counts: Record<string, number> }>(gw, 'GET', `/usage?key=${k.id}`);
    expect(usage.body).toMatchObject({ requests: N, status_counts: { '200': 16, '429': 84 } });
    expect(usage.body.usd).toBeCloseTo(0.06432, 9);
  });

  it('without max_tokens: the completion is capped at the reserved budget, so 100 at once never pass it', async () => {
    const gw = await priced({ PROXYGPT_DEFAULT_MAX_TOKENS: '5' });
    const k = await createKey(gw, { name: 'usd-capped', usd_per_day: 0.005 });
    // Estimate 11 × 2 + 5 × 10 = 72 µ$: 69 × 72 = 4968 fit in 5000 µ$, 70 × 72 = 5040 do not.
    const b = await burst(gw, k.key, N, chatRequest(), { 'x-mock-prompt-tokens': '10', 'x-mock-completion-tokens': '400' });
    expectAdmitted(gw, b, 69, 'usd');
    for (const r of gw.mock.requests) expect(JSON.parse(r.body)).toMatchObject({ max_completion_tokens: 5 });
    // Settled to 10 × 2 + 5 × 10 = 70 µ$ each: 69 × 70 = 4830 µ$ of the 5000 (uncapped: 69 × 4020).
    await settled(gw, k.key, 'usd_per_day', 0.00483);
    expect(await recorded(gw, k.id, N)).toMatchObject({ ok: 69, microUsd: 4_830 });
  });
});
