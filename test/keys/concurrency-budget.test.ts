/**
 * Reserve, then settle, under 100 concurrent requests of one key with a token budget and with a
 * USD budget. Every request reserves its estimate (an upper bound of the prompt + max_tokens, or
 * PROXYGPT_DEFAULT_MAX_TOKENS) in the same atomic step as the check, and is settled to the usage
 * the mock reports once its answer is over.
 *
 * - With max_tokens set, the estimate is an over-estimate: the settled total must never pass the
 *   budget at all (overshoot ≤ 0, "one request's estimate error" is 0 here).
 * - Without max_tokens, the gateway sends the completion budget it reserved
 *   (PROXYGPT_DEFAULT_MAX_TOKENS) upstream as the cap, so the estimate stays an upper bound and the
 *   budget is never passed either.
 * - Only a prompt the estimate misjudges can still make it short; with 100 calls in flight each one's
 *   error adds up: that overshoot is measured and printed, and the budget closes once passed.
 * The figures are printed with console.log: `[overshoot] …`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers.js';
import { admin, call, chatRequest, createKey, eventually, miniMicroUsd, rateLimit, startAdminGateway, usageRows, type HttpResult } from './helpers.js';

const CONCURRENT = 100;
const TOKEN_BUDGET = 2_000;
const USD_BUDGET = 0.01; // 10,000 micro-dollars
const PROMPT_ESTIMATE = 11; // chatRequest(): "hi there" → 1 + 2, + 5 per message + 3 (see per-key-limits)
const REPORTED_PROMPT = 10; // the mock's prompt_tokens
const COMPLETION = 40; // x-mock-completion-tokens
const ACTUAL_TOKENS = REPORTED_PROMPT + COMPLETION; // 50 per call

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
  admitted: number;
  refused: number;
}

/** Sends `n` identical calls at once; the mock holds each answer `delayMs` so they overlap. */
async function burst(
  gw: TestGateway,
  key: string,
  n: number,
  body: Record<string, unknown>,
  completion = COMPLETION,
  delayMs = 150,
  promptTokens = REPORTED_PROMPT,
): Promise<Burst> {
  const headers = { 'x-mock-completion-tokens': String(completion), 'x-mock-delay-ms': String(delayMs), 'x-mock-prompt-tokens': String(promptTokens) };
  const results = await Promise.all(Array.from({ length: n }, () => call(gw, key, { body, headers })));
  for (const r of results) expect([200, 429], r.text).toContain(r.status);
  const admitted = results.filter((r) => r.status === 200).length;
  expect(gw.mock.requests.length).toBeGreaterThanOrEqual(admitted);
  return { results, admitted, refused: n - admitted };
}

/** Waits until every admitted call is settled (the limit shows exactly `expected` used) and returns it. */
async function settled(gw: TestGateway, key: string, name: string, expected: number): Promise<number> {
  const body = await eventually(
    `${name} settles to ${expected}`,
    async () => (await rateLimit(gw, key)).body,
    (b) => b.key?.limits[name]?.used === expected,
  );
  return body.key!.limits[name]!.used;
}

function report(what: string, figures: Record<string, number | string>): void {
  console.log(`[overshoot] ${what}: ${Object.entries(figures).map(([k, v]) => `${k}=${v}`).join(' ')}`);
}

describe('a token budget under 100 concurrent requests', () => {
  it('with max_tokens (over-estimate): the settled total never passes the budget', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'tokens-over', tokens_per_hour: TOKEN_BUDGET });
    const estimate = PROMPT_ESTIMATE + 60;
    const b = await burst(gw, k.key, CONCURRENT, chatRequest({ max_tokens: 60 }));

    const used = await settled(gw, k.key, 'tokens_per_hour', b.admitted * ACTUAL_TOKENS);
    report(`tokens, max_tokens 60 (estimate ${estimate}, actual ${ACTUAL_TOKENS})`, {
      budget: TOKEN_BUDGET,
      admitted: b.admitted,
      refused: b.refused,
      settled: used,
      overshoot: used - TOKEN_BUDGET,
    });
    expect(used).toBeLessThanOrEqual(TOKEN_BUDGET);
    // The budget was used, not wasted: at least as many as fit side by side by their estimates.
    expect(b.admitted).toBeGreaterThanOrEqual(Math.floor(TOKEN_BUDGET / estimate));
    expect(gw.mock.requests).toHaveLength(b.admitted);
    // Every refusal is a 429 for this key's tokens with a retry promise (the holds end with their calls).
    for (const r of b.results.filter((x) => x.status === 429)) {
      expect(r.body).toMatchObject({ error: { code: 'rate_limit_exceeded', type: 'tokens' } });
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // The usage records say the same, call by call.
    const rows = await usageRows(gw, k.id, CONCURRENT);
    expect(rows.filter((r) => r.status === 200).reduce((s, r) => s + r.prompt_tokens + r.completion_tokens, 0)).toBe(used);

    // And the budget stays closed to a call that no longer fits.
    const room = TOKEN_BUDGET - used;
    if (room < estimate) expect((await call(gw, k.key, { body: chatRequest({ max_tokens: 60 }) })).status).toBe(429);
  });

  it('without max_tokens: the completion is capped at the reserved budget, so 100 at once never pass it', async () => {
    const gw = await start({ PROXYGPT_DEFAULT_MAX_TOKENS: '5' });
    const k = await createKey(gw, { name: 'tokens-capped', tokens_per_hour: TOKEN_BUDGET });
    const estimate = PROMPT_ESTIMATE + 5;
    const b = await burst(gw, k.key, CONCURRENT, chatRequest());
    // The mock would answer 40 completion tokens, but the gateway sent the reserved 5 as the cap.
    for (const r of gw.mock.requests) expect(JSON.parse(r.body)).toMatchObject({ max_completion_tokens: 5 });
    const actual = REPORTED_PROMPT + 5;
    const used = await settled(gw, k.key, 'tokens_per_hour', b.admitted * actual);
    report(`tokens, 100 concurrent, no max_tokens, default 5 (estimate ${estimate}, actual ${actual})`, {
      budget: TOKEN_BUDGET,
      admitted: b.admitted,
      settled: used,
      overshoot: used - TOKEN_BUDGET,
    });
    expect(used).toBeLessThanOrEqual(TOKEN_BUDGET);
    expect(b.admitted).toBe(Math.min(CONCURRENT, Math.floor(TOKEN_BUDGET / estimate)));
  });

  // Where the estimate can still be short: a prompt the pre-call estimate misjudges (the mock
  // reports 40 prompt tokens for a prompt estimated at 11, as random base64 text would do). Every
  // call in flight then carries its own error; the figure is measured and printed, and what the
  // gateway does guarantee is checked: the holds never passed the budget, and once the settled
  // usage has passed it every further call is refused until it expires.
  it('prompt under-estimated, 100 at once: measures the overshoot; the budget closes once passed', async () => {
    const gw = await start({ PROXYGPT_DEFAULT_MAX_TOKENS: '5' });
    const k = await createKey(gw, { name: 'tokens-under', tokens_per_hour: TOKEN_BUDGET });
    const estimate = PROMPT_ESTIMATE + 5;
    const actual = 40 + 5;
    const b = await burst(gw, k.key, CONCURRENT, chatRequest(), COMPLETION, 150, 40);
    const used = await settled(gw, k.key, 'tokens_per_hour', b.admitted * actual);
    report(`tokens, 100 concurrent, prompt under-estimated (estimate ${estimate}, actual ${actual})`, {
      budget: TOKEN_BUDGET,
      admitted: b.admitted,
      settled: used,
      overshoot: used - TOKEN_BUDGET,
      oneRequestError: actual - estimate,
    });
    expect(b.admitted * estimate).toBeLessThanOrEqual(TOKEN_BUDGET);
    expect(used).toBeGreaterThan(TOKEN_BUDGET);
    const after = await burst(gw, k.key, 10, chatRequest());
    expect(after.admitted).toBe(0);
    for (const r of after.results) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(3_000);
  });
});

describe('a USD budget under 100 concurrent requests', () => {
  const usdOf = (micro: number) => micro / 1e6;
  // gpt-4o-mini: 10 prompt + 400 completion tokens reported = ceil(1.5 + 240) = 242 micro-dollars.
  const actualMicro = miniMicroUsd(REPORTED_PROMPT, 400);

  it('with max_tokens (over-estimate): the settled spend never passes the budget', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'usd-over', usd_per_day: USD_BUDGET });
    const estimateMicro = miniMicroUsd(PROMPT_ESTIMATE, 600);
    expect(estimateMicro).toBeGreaterThan(actualMicro);
    const b = await burst(gw, k.key, CONCURRENT, chatRequest({ max_tokens: 600 }), 400);
    const used = await settled(gw, k.key, 'usd_per_day', usdOf(b.admitted * actualMicro));
    report(`USD, max_tokens 600 (estimate ${estimateMicro} µ$, actual ${actualMicro} µ$)`, {
      budgetMicroUsd: USD_BUDGET * 1e6,
      admitted: b.admitted,
      settledMicroUsd: Math.round(used * 1e6),
      overshootMicroUsd: Math.round(used * 1e6) - USD_BUDGET * 1e6,
    });
    expect(used).toBeLessThanOrEqual(USD_BUDGET);
    expect(b.admitted).toBeGreaterThanOrEqual(Math.floor((USD_BUDGET * 1e6) / estimateMicro));
    expect(gw.mock.requests).toHaveLength(b.admitted);

    // The admin's usage report adds up to the same spend.
    await usageRows(gw, k.id, CONCURRENT);
    const usage = await admin<{ usd: number; requests: number; status_counts: Record<string, number> }>(gw, 'GET', `/usage?key=${k.id}`);
    expect(usage.body).toMatchObject({ requests: CONCURRENT, status_counts: { '200': b.admitted, '429': b.refused } });
    expect(usage.body.usd).toBeCloseTo(used, 9);
  });

  it('without max_tokens: the completion is capped at the reserved budget, so 100 at once never pass it', async () => {
    const gw = await start({ PROXYGPT_DEFAULT_MAX_TOKENS: '5' });
    const k = await createKey(gw, { name: 'usd-capped', usd_per_day: USD_BUDGET });
    const estimateMicro = miniMicroUsd(PROMPT_ESTIMATE, 5);
    const b = await burst(gw, k.key, CONCURRENT, chatRequest(), 400);
    const actualCapped = miniMicroUsd(REPORTED_PROMPT, 5);
    const used = await settled(gw, k.key, 'usd_per_day', usdOf(b.admitted * actualCapped));
    report(`USD, 100 concurrent, no max_tokens, default 5 (estimate ${estimateMicro} µ$, actual ${actualCapped} µ$)`, {
      budgetMicroUsd: USD_BUDGET * 1e6,
      admitted: b.admitted,
      settledMicroUsd: Math.round(used * 1e6),
      overshootMicroUsd: Math.round(used * 1e6) - USD_BUDGET * 1e6,
    });
    expect(used).toBeLessThanOrEqual(USD_BUDGET);
  });
});
