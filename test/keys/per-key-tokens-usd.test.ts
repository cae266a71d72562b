/**
 * Per-key tokens and USD through the real HTTP gateway: tokens per hour and day settled to the
 * upstream's reported usage, the x-ratelimit-*-tokens headers, a request too large for its limit
 * (429 without a retry promise), and USD per rolling day and per calendar month (the bundled
 * gpt-4o-mini price, $0.15 / $0.60 per 1M tokens; injected clock across a month boundary). Every
 * expected figure is the mock's reported usage times that price, worked out in the test.
 */
import { describe, expect, it } from 'vitest';
import { PROXY_KEY } from '../helpers.js';
import { call, chatRequest, createKey, rateLimit, settledUsage, usageRows } from './helpers.js';
import { adminGateways } from './gateway-fixture.js';
import { DAY, expect429, HOUR, T0 } from './per-key-helpers.js';

/**
 * The gateway's upper-bound prompt estimate for chatRequest(): "hi" + " there" (1 + 2) + 5 per
 * message + 3 (worked out in usage-estimate-prices; the token headers below show it reserved).
 */
const PROMPT_ESTIMATE = 11;

const { start } = adminGateways();

describe('tokens per hour and per day', () => {
  it('settles each call to the usage the upstream reported, JSON and streamed', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'tokens', tokens_per_hour: 5_000, tokens_per_day: 8_000 });

    const reported: number[] = [];
    const json = await call(gw, k.key, { body: chatRequest({ max_tokens: 300 }), headers: { 'x-mock-completion-tokens': '120' } });
    expect(json.status).toBe(200);
    expect(json.body.usage).toMatchObject({ total_tokens: 130 });
    reported.push(130);

    now = T0 + 60_000;
    const big = await call(gw, k.key, {
      body: chatRequest({ max_tokens: 800 }),
      headers: { 'x-mock-prompt-tokens': '321', 'x-mock-completion-tokens': '654' },
    });
    expect(big.body.usage).toMatchObject({ total_tokens: 975 });
    reported.push(975);

    now = T0 + 120_000;
    const stream = await call(gw, k.key, { body: chatRequest({ stream: true, max_tokens: 50 }), headers: { 'x-mock-chunks': '7' } });
    expect(stream.status).toBe(200);
    expect(stream.text).not.toContain('"usage"'); // asked for by the gateway, hidden from this client
    reported.push(10 + 7);

    const sum = reported.reduce((a, b) => a + b, 0);
    expect(await settledUsage(gw, k.key, 'tokens_per_hour', sum)).toMatchObject({ limit: 5_000, remaining: 5_000 - sum, reset_seconds: 3600 - 120 });
    expect((await rateLimit(gw, k.key)).body.key!.limits.tokens_per_day).toMatchObject({ limit: 8_000, used: sum, remaining: 8_000 - sum });

    // An hour after the first call, it has left the hourly window but not the daily one.
    now = T0 + HOUR;
    const limits = (await rateLimit(gw, k.key)).body.key!.limits;
    expect(limits.tokens_per_hour!.used).toBe(sum - 130);
    expect(limits.tokens_per_day!.used).toBe(sum);
  });

  it('refuses a call whose estimate does not fit until enough tokens leave the window', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'tph', tokens_per_hour: 1_000 });
    const first = await call(gw, k.key, { body: chatRequest({ max_tokens: 950 }), headers: { 'x-mock-completion-tokens': '900' } });
    expect(first.status).toBe(200);
    await settledUsage(gw, k.key, 'tokens_per_hour', 910);

    now = T0 + 10 * 60_000;
    // 910 counted + 11 + 100 estimated > 1000: the first call's 910 must leave (at T0 + 1 h).
    const refused = await call(gw, k.key, { body: chatRequest({ max_tokens: 100 }) });
    expect429(refused, /1000 tokens per hour for this key/, HOUR - 10 * 60_000);
    expect((refused.body as { error: { type: string } }).error.type).toBe('tokens');
    expect(refused.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(refused.headers.get('x-ratelimit-remaining-tokens')).toBe('90');
    // A call that fits in the 90 left (11 + 79) is admitted meanwhile; one token more does not fit.
    expect((await call(gw, k.key, { body: chatRequest({ max_tokens: 80 }) })).status).toBe(429);
    expect((await call(gw, k.key, { body: chatRequest({ max_tokens: 79 }) })).status).toBe(200);
    expect(gw.mock.requests).toHaveLength(2);
    now = T0 + HOUR;
    expect((await call(gw, k.key, { body: chatRequest({ max_tokens: 100 }) })).status).toBe(200);
  });

  it('sends x-ratelimit-limit/remaining/reset-tokens for the tightest token limit', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'headers', tokens_per_hour: 1_000, tokens_per_day: 5_000, requests_per_hour: 50 });

    const first = await call(gw, k.key, { body: chatRequest({ max_tokens: 100 }) });
    expect(first.status).toBe(200);
    // The estimate (11 + 100) is held while the call runs: the header counts it.
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(first.headers.get('x-ratelimit-remaining-tokens')).toBe(String(1_000 - PROMPT_ESTIMATE - 100));
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('50');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('49');
    await settledUsage(gw, k.key, 'tokens_per_hour', 13); // the mock reports 10 + 3 ("Echo: hi there")

    now = T0 + 60_000;
    const second = await call(gw, k.key, { body: chatRequest({ max_tokens: 200 }) });
    expect(second.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(second.headers.get('x-ratelimit-remaining-tokens')).toBe(String(1_000 - 13 - PROMPT_ESTIMATE - 200));
    // The first call's 13 tokens leave the hourly window at T0 + 1 h.
    expect(second.headers.get('x-ratelimit-reset-tokens')).toBe('59m0s');
    await settledUsage(gw, k.key, 'tokens_per_hour', 26);

    // Two hours later the hourly window is empty again (the day still counts 26 of 5000): the hour,
    // with 1000 - 11 - 10 left, is still the tightest (the next test has the day tighter).
    now = T0 + 2 * HOUR;
    const third = await call(gw, k.key, { body: chatRequest({ max_tokens: 10 }) });
    expect(third.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(third.headers.get('x-ratelimit-remaining-tokens')).toBe(String(1_000 - PROMPT_ESTIMATE - 10));

    // Environment keys have no token limits: no token headers.
    const env = await call(gw, PROXY_KEY);
    expect(env.headers.get('x-ratelimit-limit-tokens')).toBeNull();
  });

  it('uses the daily limit for the token headers when it has less room than the hourly one', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'tight-day', tokens_per_hour: 1_000, tokens_per_day: 1_200 });
    expect((await call(gw, k.key, { body: chatRequest({ max_tokens: 900 }), headers: { 'x-mock-completion-tokens': '890' } })).status).toBe(200);
    await settledUsage(gw, k.key, 'tokens_per_day', 900);
    now = T0 + HOUR + 1;
    const r = await call(gw, k.key, { body: chatRequest({ max_tokens: 100 }) });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-ratelimit-limit-tokens')).toBe('1200');
    expect(r.headers.get('x-ratelimit-remaining-tokens')).toBe(String(1_200 - 900 - PROMPT_ESTIMATE - 100));
    // The 900 tokens counted at T0 leave the day at T0 + 24 h: 23 h less 1 ms from now (rounded up).
    expect(r.headers.get('x-ratelimit-reset-tokens')).toBe('23h0m0s');
  });

  // When the only thing in a window is this call's own *held* estimate, its tokens will be counted
  // for the next hour: the reset is one window, not 0s (as for counted amounts). The same holds for
  // a request slot held in PROXYGPT_RATE_LIMIT_COUNT=success mode.
  it('the reset header of the first call in an empty window is one window, not 0s (held tokens, held request slots)', async () => {
    const now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'reset', tokens_per_hour: 1_000 });
    const first = await call(gw, k.key, { body: chatRequest({ max_tokens: 100 }) });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-reset-tokens')).toBe('1h0m0s');

    const success = await start({ PROXYGPT_RATE_LIMIT_COUNT: 'success' }, () => now);
    const r = await createKey(success, { name: 'reset-requests', requests_per_hour: 5 });
    const held = await call(success, r.key);
    expect(held.status).toBe(200);
    expect(held.headers.get('x-ratelimit-remaining-requests')).toBe('4');
    expect(held.headers.get('x-ratelimit-reset-requests')).toBe('1h0m0s');
  });

  it('refuses a call whose own estimate exceeds the limit with 429 and no retry promise', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'small', tokens_per_hour: 1_000, usd_per_day: 1 });
    const r = await call(gw, k.key, { body: chatRequest({ max_tokens: 5_000 }) });
    expect429(r, /alone needs more than the limit of 1000 tokens per hour/, null);
    expect((r.body as { error: { type: string } }).error.type).toBe('tokens');
    expect(r.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    // Without max_tokens the default completion budget (PROXYGPT_DEFAULT_MAX_TOKENS, 1024) is assumed.
    expect429(await call(gw, k.key), /alone needs more/, null);
    expect(gw.mock.requests).toHaveLength(0);
    expect((await rateLimit(gw, k.key)).body.key!.limits.tokens_per_hour).toMatchObject({ used: 0 });
    // A call that fits is fine.
    expect((await call(gw, k.key, { body: chatRequest({ max_tokens: 500 }) })).status).toBe(200);
  });
});

describe('USD per day and per calendar month', () => {
  /**
   * Each call: 20 prompt + 50,000 completion tokens reported, max_tokens 50,000. At $0.15 / $0.60
   * per 1M that is 20 × 0.15 + 50,000 × 0.6 = 3 + 30,000 micro-dollars; the estimate (11 prompt
   * tokens) is 1.65 + 30,000, a hair less.
   */
  const pricey = { body: chatRequest({ max_tokens: 50_000 }), headers: { 'x-mock-prompt-tokens': '20', 'x-mock-completion-tokens': '50000' } };
  const callCost = 30_003;

  it('USD per rolling day: three calls of $0.030003 fit in $0.10, the fourth waits a day', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'usd-day', usd_per_day: 0.1 });
    for (let i = 0; i < 3; i++) {
      now = T0 + i * 1_000;
      const r = await call(gw, k.key, pricey);
      expect(r.status, r.text).toBe(200);
      expect(r.headers.get('x-ratelimit-limit-tokens')).toBeNull(); // spend limits have no header of their own
    }
    now = T0 + HOUR;
    // Settled to what the upstream reported (3 × 30,003 = 90,009 µ$), not to the estimates.
    const limits = await settledUsage(gw, k.key, 'usd_per_day', 0.090009);
    expect(limits).toMatchObject({ limit: 0.1, remaining: (100_000 - 90_009) / 1e6 });
    expect((await usageRows(gw, k.id, 3)).map((row) => row.cost_micro_usd)).toEqual([30_003, 30_003, 30_003]);
    const refused = await call(gw, k.key, pricey);
    expect429(refused, /\$0\.10 USD per day for this key/, DAY - HOUR);
    // A cheap call still fits in what is left.
    expect((await call(gw, k.key, { body: chatRequest({ max_tokens: 100 }) })).status).toBe(200);
    now = T0 + DAY;
    expect((await call(gw, k.key, pricey)).status).toBe(200);
  });

  it('USD per calendar month resets at exactly 00:00 UTC on the first; the rolling day does not', async () => {
    const JAN31_23H = Date.UTC(2026, 0, 31, 23, 0, 0);
    const FEB1 = Date.UTC(2026, 1, 1);
    const MAR1 = Date.UTC(2026, 2, 1);
    let now = JAN31_23H;
    const gw = await start({}, () => now);
    const monthly = await createKey(gw, { name: 'monthly', usd_per_month: 0.1 });
    const daily = await createKey(gw, { name: 'daily', usd_per_day: 0.1, usd_per_month: 5 });

    for (let i = 0; i < 3; i++) {
      now = JAN31_23H + i * 1_000;
      expect((await call(gw, monthly.key, pricey)).status).toBe(200);
      expect((await call(gw, daily.key, pricey)).status).toBe(200);
    }
    await settledUsage(gw, monthly.key, 'usd_per_month', (3 * callCost) / 1e6);
    await settledUsage(gw, daily.key, 'usd_per_day', (3 * callCost) / 1e6);

    now = JAN31_23H + 10 * 60_000;
    const refused = await call(gw, monthly.key, pricey);
    expect429(refused, /\$0\.10 USD per calendar month for this key/, FEB1 - now);
    expect((await rateLimit(gw, monthly.key)).body.key!.limits.usd_per_month).toMatchObject({
      used: (3 * callCost) / 1e6,
      reset_seconds: (FEB1 - now) / 1000,
    });

    now = FEB1 - 1;
    expect429(await call(gw, monthly.key, pricey), /per calendar month/, 1);

    now = FEB1;
    const monthLimits = (await rateLimit(gw, monthly.key)).body.key!.limits;
    expect(monthLimits.usd_per_month).toMatchObject({ used: 0, remaining: 0.1, reset_seconds: 0 });
    expect((await call(gw, monthly.key, pricey)).status).toBe(200);
    expect(await settledUsage(gw, monthly.key, 'usd_per_month', callCost / 1e6)).toMatchObject({ reset_seconds: (MAR1 - FEB1) / 1000 });

    // The rolling day still holds January's three calls.
    const dailyLimits = (await rateLimit(gw, daily.key)).body.key!.limits;
    expect(dailyLimits.usd_per_month).toMatchObject({ used: 0 });
    expect(dailyLimits.usd_per_day).toMatchObject({ used: (3 * callCost) / 1e6 });
    expect429(await call(gw, daily.key, pricey), /USD per day for this key/, JAN31_23H + DAY - FEB1);
    now = JAN31_23H + DAY;
    expect((await call(gw, daily.key, pricey)).status).toBe(200);
  });

  it('refuses a call whose estimated cost alone exceeds the USD limit, without a retry promise', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'usd-small', usd_per_day: 0.01, usd_per_month: 1 });
    expect429(await call(gw, k.key, pricey), /alone needs more than the limit of \$0\.01 USD per day/, null);
    expect(gw.mock.requests).toHaveLength(0);
  });
});
