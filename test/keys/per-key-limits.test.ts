/**
 * Per-key policy through the real HTTP gateway, keys created with the admin API: requests per hour
 * and day (on top of the global limit: a request must pass both), tokens per hour and day settled
 * to the upstream's reported usage, USD per rolling day and per calendar month (bundled prices,
 * injected clock across a month boundary), the x-ratelimit-*-tokens headers, a request too large
 * for its limit (429 without a retry promise), endpoint, model and IP allowlists, and /ratelimit
 * showing the caller's own key and nothing else.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { loadConfig } from '../../src/config.js';
import { createApp } from '../../src/app.js';
import { estimateUsage } from '../../src/metering/estimate.js';
import { startMockOpenAI } from '../fixtures/mock-openai.js';
import { PROXY_KEY, tempDir, UPSTREAM_KEY, type TestGateway } from '../helpers.js';
import {
  ADMIN_KEY,
  call,
  chatRequest,
  createKey,
  admin,
  miniMicroUsd,
  rateLimit,
  settledUsage,
  startAdminGateway,
  type HttpResult,
} from './helpers.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = 1_750_000_000_000;
/** The gateway's upper-bound prompt estimate for chatRequest(): "hi" + " there" (1 + 2) + 5 per message + 3. */
const PROMPT_ESTIMATE = 11;

let gateways: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  gateways = [];
});

async function start(env: Record<string, string> = {}, clock?: () => number): Promise<TestGateway> {
  const gw = await startAdminGateway(env, clock === undefined ? {} : { clock });
  gateways.push(gw);
  return gw;
}

function expect429(r: HttpResult, words: RegExp, retryAfterMs: number | null): void {
  expect(r.status, r.text).toBe(429);
  const error = (r.body as { error: Record<string, unknown> }).error;
  expect(error).toMatchObject({ code: 'rate_limit_exceeded', param: null });
  expect(String(error.message)).toMatch(words);
  if (retryAfterMs === null) {
    expect(r.headers.get('retry-after')).toBeNull();
    expect(r.headers.get('retry-after-ms')).toBeNull();
  } else {
    expect(r.headers.get('retry-after-ms')).toBe(String(retryAfterMs));
    expect(r.headers.get('retry-after')).toBe(String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  }
}

it('the prompt estimate of the test body is what these tests assume', () => {
  expect(estimateUsage(chatRequest(), 1024)).toEqual({ promptTokens: PROMPT_ESTIMATE, completionTokens: 1024, cachedTokens: 0 });
});

describe('requests per hour and per day', () => {
  it('admits exactly N per key, then 429 with an exact Retry-After; the global limit applies on top', async () => {
    let now = T0;
    const gw = await start({ USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '5' }, () => now);
    const a = await createKey(gw, { name: 'a', requests_per_hour: 3 });
    const b = await createKey(gw, { name: 'b', requests_per_hour: 10 });

    for (const offset of [0, 1_000, 2_000]) {
      now = T0 + offset;
      const ok = await call(gw, a.key);
      expect(ok.status, ok.text).toBe(200);
    }
    now = T0 + 10_000;
    const refused = await call(gw, a.key);
    expect429(refused, /3 requests per hour for this key/, HOUR - 10_000);
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(gw.mock.requests).toHaveLength(3);

    // The key's refusal took no global slot: b gets the 2 left, then the gateway's limit refuses b
    // although b's own limit has room.
    now = T0 + 20_000;
    expect((await call(gw, b.key)).status).toBe(200);
    expect((await call(gw, b.key)).status).toBe(200);
    const global = await call(gw, b.key);
    expect429(global, /5 requests per hour for this gateway/, HOUR - 20_000);
    expect(global.headers.get('x-ratelimit-limit-requests')).toBe('5');
    // Environment keys share the global limit.
    expect((await call(gw, PROXY_KEY)).status).toBe(429);
    expect(gw.mock.requests).toHaveLength(5);

    const status = (await rateLimit(gw, b.key)).body;
    expect(status).toMatchObject({ hourly_rate_limit: 5, hourly_api_usage: 5, hourly_remaining: 0 });
    expect(status.key!.limits.requests_per_hour).toMatchObject({ limit: 10, used: 2, remaining: 8 });
    expect((await rateLimit(gw, a.key)).body.key!.limits.requests_per_hour).toMatchObject({ limit: 3, used: 3, remaining: 0 });

    // One hour after a's first call, a fits again (one slot on each side), and only one call: then
    // both its own limit and the gateway's are full again until a's second call leaves.
    now = T0 + HOUR;
    expect((await call(gw, a.key)).status).toBe(200);
    expect429(await call(gw, a.key), /requests per hour/, 1_000);
    expect(gw.mock.requests).toHaveLength(6);
  });

  it('requests per day: a rolling day, not reset by the hour', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'daily', requests_per_day: 2, requests_per_hour: 10 });
    expect((await call(gw, k.key)).status).toBe(200);
    now = T0 + HOUR;
    expect((await call(gw, k.key)).status).toBe(200);
    now = T0 + 2 * HOUR;
    const refused = await call(gw, k.key);
    expect429(refused, /2 requests per day for this key/, DAY - 2 * HOUR);
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('2');
    now = T0 + DAY - 1;
    expect429(await call(gw, k.key), /per day/, 1);
    now = T0 + DAY;
    expect((await call(gw, k.key)).status).toBe(200);
    expect(gw.mock.requests).toHaveLength(3);
  });
});

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

  // BUG (src/limits/sqlite.ts, reserveNow, the `if (state.resetMs === 0 && !cost.hold)` branch):
  // when the only thing in a window is this call's own *held* estimate, the reset comes out as 0
  // and the header says `x-ratelimit-reset-tokens: 0s`, although the call's tokens will be counted
  // for the next hour (the limit does not "reset" in 0 s). Held amounts in an empty window should
  // report one window length (as counted ones already do). Same for held request slots in
  // PROXYGPT_RATE_LIMIT_COUNT=success mode. Not in this test's files: left failing.
  it('the reset-tokens header of the first call in an empty window is one window, not 0s', async () => {
    const now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'reset', tokens_per_hour: 1_000 });
    const first = await call(gw, k.key, { body: chatRequest({ max_tokens: 100 }) });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-reset-tokens')).toBe('1h0m0s');
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
  /** Each call: 10 prompt + 50,000 completion tokens reported, max_tokens 50,000 (estimate 11 + 50,000). */
  const pricey = { body: chatRequest({ max_tokens: 50_000 }), headers: { 'x-mock-completion-tokens': '50000' } };
  const callCost = miniMicroUsd(10, 50_000); // 30,002 micro-dollars
  const estimateCost = miniMicroUsd(PROMPT_ESTIMATE, 50_000);

  it('prices calls from the bundled table (gpt-4o-mini $0.15 / $0.60 per 1M)', () => {
    expect(callCost).toBe(30_002);
    expect(estimateCost).toBe(30_002);
  });

  it('USD per rolling day: three calls of $0.030002 fit in $0.10, the fourth waits a day', async () => {
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
    const limits = (await settledUsage(gw, k.key, 'usd_per_day', (3 * callCost) / 1e6));
    expect(limits).toMatchObject({ limit: 0.1, remaining: (100_000 - 3 * callCost) / 1e6 });
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

describe('endpoint and model allowlists', () => {
  const gatewayLists = {
    PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models',
    PROXYGPT_ALLOWED_MODELS: 'gpt-4o*, text-embedding-3-small',
  };

  it('a key cannot use endpoints or models outside its own lists (403), nor outside the gateway’s', async () => {
    const gw = await start(gatewayLists);
    const k = await createKey(gw, { name: 'narrow', endpoints: ['POST /v1/chat/completions'], models: ['gpt-4o-mini'] });
    const wide = await createKey(gw, { name: 'wide', models: ['*'] });

    expect((await call(gw, k.key)).status).toBe(200);
    const model = await call(gw, k.key, { body: chatRequest({ model: 'gpt-4o' }) });
    expect(model.status).toBe(403);
    expect(model.body).toMatchObject({ error: { code: 'model_not_allowed', type: 'permission_error' } });
    expect((model.body as { error: { message: string } }).error.message).toContain('this key');
    const embeddings = await call(gw, k.key, { path: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'x' } });
    expect(embeddings.status).toBe(403);
    expect(embeddings.body).toMatchObject({ error: { code: 'endpoint_not_allowed' } });
    const models = await call(gw, k.key, { path: '/v1/models', method: 'GET', body: null });
    expect(models.status).toBe(403);
    expect(models.body).toMatchObject({ error: { code: 'endpoint_not_allowed' } });

    // A key allowing every model is still held to the gateway's list.
    expect((await call(gw, wide.key, { body: chatRequest({ model: 'gpt-4o' }) })).status).toBe(200);
    const outside = await call(gw, wide.key, { body: chatRequest({ model: 'gpt-3.5-turbo' }) });
    expect(outside.status).toBe(403);
    expect((outside.body as { error: { message: string } }).error.message).toContain('this gateway');
    expect((await call(gw, wide.key, { path: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'x' } })).status).toBe(200);
    const unlisted = await call(gw, wide.key, { path: '/v1/completions', body: { model: 'gpt-4o', prompt: 'x' } });
    expect(unlisted.status).toBe(403);

    // Only the admitted calls reached the upstream.
    expect(gw.mock.requests.map((r) => r.url)).toEqual(['/v1/chat/completions', '/v1/chat/completions', '/v1/embeddings']);
  });

  it('creating or updating a key with endpoints or models outside the gateway’s lists is a 400', async () => {
    const gw = await start(gatewayLists);
    const cases: [Record<string, unknown>, string][] = [
      [{ endpoints: ['POST /v1/completions'] }, 'endpoints'],
      [{ endpoints: ['POST /v1/*'] }, 'endpoints'],
      [{ endpoints: ['GET /v1/chat/completions'] }, 'endpoints'],
      [{ endpoints: ['not an endpoint'] }, 'endpoints'],
      [{ models: ['gpt-3.5-turbo'] }, 'models'],
      [{ models: ['gpt-4o-mini', 'o1'] }, 'models'],
      [{ ips: ['10.0.0.0/33'] }, 'ips'],
      [{ ips: ['localhost'] }, 'ips'],
      [{ ips: ['10.0.0.0/8/8'] }, 'ips'],
    ];
    for (const [fields, param] of cases) {
      const r = await admin(gw, 'POST', '/keys', { name: 'outside', ...fields });
      expect(r.status, JSON.stringify(fields)).toBe(400);
      expect(r.body).toMatchObject({ error: { param, type: 'invalid_request_error' } });
    }
    expect((await admin<{ data: unknown[] }>(gw, 'GET', '/keys')).body.data).toHaveLength(0);

    const k = await createKey(gw, { name: 'inside', endpoints: ['POST /v1/embeddings', 'GET /v1/models'], models: ['gpt-4o*'] });
    const update = await admin(gw, 'PATCH', `/keys/${k.id}`, { models: ['gpt-4'] });
    expect(update.status).toBe(400);
    expect(update.body).toMatchObject({ error: { param: 'models' } });
    expect((await admin(gw, 'GET', `/keys/${k.id}`)).body).toMatchObject({ models: ['gpt-4o*'], endpoints: ['POST /v1/embeddings', 'GET /v1/models'] });
  });
});

describe('IP allowlist', () => {
  it('127.0.0.1/32 admits a loopback client; 10.0.0.0/8 refuses it with 403 ip_not_allowed', async () => {
    const gw = await start();
    const local = await createKey(gw, { name: 'local', ips: ['127.0.0.1/32'] });
    const office = await createKey(gw, { name: 'office', ips: ['10.0.0.0/8', '192.168.0.0/16'] });
    const many = await createKey(gw, { name: 'many', ips: ['10.0.0.0/8', '127.0.0.0/8'] });

    expect((await call(gw, local.key)).status).toBe(200);
    expect((await call(gw, many.key)).status).toBe(200);
    const refused = await call(gw, office.key);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { code: 'ip_not_allowed', type: 'permission_error' } });
    expect((refused.body as { error: { message: string } }).error.message).toContain('127.0.0.1');
    // Streams and the legacy route are refused the same way, before anything is forwarded.
    expect((await call(gw, office.key, { body: chatRequest({ stream: true }) })).status).toBe(403);
    const legacy = await call(gw, office.key, { path: '/api/openai/completions/gpt3', body: '[{"role":"user","content":"x"}]' });
    expect(legacy.status).toBe(403);
    expect(gw.mock.requests).toHaveLength(2);

    // Clearing the list lets the key in from anywhere, on the next request.
    expect((await admin(gw, 'PATCH', '/keys/office', { ips: null })).status).toBe(200);
    expect((await call(gw, office.key)).status).toBe(200);
  });

  // BUG (src/routes/ratelimit.ts, the onRequest hook authenticates but never checks the key's IP
  // allowlist): a key restricted to 10.0.0.0/8 can still read its id, name, expiry, limits and
  // usage over /ratelimit from any address. Every other route that takes a proxy key answers 403
  // ip_not_allowed. Fix: after authenticate, `gateway.keyAccess.get(principal)?.checkIp(request.ip)`.
  it('the IP allowlist applies to /ratelimit too', async () => {
    const gw = await start();
    const office = await createKey(gw, { name: 'office', ips: ['10.0.0.0/8'], requests_per_hour: 5 });
    const r = await rateLimit(gw, office.key);
    expect(r.status).toBe(403);
  });

  it('IPv6: ::1 and ::1/128 admit an IPv6 loopback client; 127.0.0.1/32 and fe80::/10 do not', async () => {
    const mock = await startMockOpenAI();
    const dir = tempDir();
    const { config } = loadConfig({
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: mock.url,
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'),
      LOG_LEVEL: 'warn',
    });
    const app = await createApp(config);
    gateways.push({
      async close() {
        await app.close();
        await mock.close();
        rmSync(dir, { recursive: true, force: true });
      },
    });
    await app.server.listen({ port: 0, host: '::1' });
    const gw = { url: `http://[::1]:${(app.server.server.address() as AddressInfo).port}` };

    const expectations: [string[], number][] = [
      [['::1'], 200],
      [['::1/128'], 200],
      [['0:0:0:0:0:0:0:1'], 200],
      [['::/0'], 200],
      [['10.0.0.0/8', '::1'], 200],
      [['127.0.0.1/32'], 403],
      [['fe80::/10'], 403],
      [['::2'], 403],
    ];
    for (const [i, [ips, status]] of expectations.entries()) {
      const k = await createKey(gw, { name: `v6-${i}`, ips });
      const r = await call(gw, k.key);
      expect(r.status, `${ips.join(',')}: ${r.text}`).toBe(status);
      if (status === 403) expect(r.body).toMatchObject({ error: { code: 'ip_not_allowed' } });
    }
  });
});

describe('/ratelimit per key', () => {
  it('shows the caller’s own key, its limits and usage, the global ones, and nothing about other keys', async () => {
    let now = T0;
    const gw = await start({ USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '100' }, () => now);
    const alice = await createKey(gw, {
      name: 'alice-secretive',
      requests_per_hour: 10,
      tokens_per_day: 10_000,
      usd_per_month: 2,
      expires_at: '2030-01-01T00:00:00Z',
    });
    const bob = await createKey(gw, { name: 'bob-the-other', requests_per_day: 77, tokens_per_hour: 4_321 });
    for (let i = 0; i < 3; i++) expect((await call(gw, bob.key, { body: chatRequest({ max_tokens: 10 }) })).status).toBe(200);
    expect((await call(gw, alice.key, { body: chatRequest({ max_tokens: 10 }) })).status).toBe(200);
    await settledUsage(gw, alice.key, 'tokens_per_day', 13);

    now = T0 + 60_000;
    const r = await rateLimit(gw, alice.key);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ hourly_rate_limit: 100, hourly_api_usage: 4, hourly_remaining: 96 });
    expect(r.body.key).toEqual({
      id: alice.id,
      name: 'alice-secretive',
      expires_at: '2030-01-01T00:00:00.000Z',
      limits: {
        requests_per_hour: { limit: 10, used: 1, remaining: 9, reset_seconds: 3540 },
        tokens_per_day: { limit: 10_000, used: 13, remaining: 9_987, reset_seconds: 86_340 },
        usd_per_month: { limit: 2, used: miniMicroUsd(10, 3) / 1e6, remaining: 2 - miniMicroUsd(10, 3) / 1e6, reset_seconds: expect.any(Number) },
      },
    });
    for (const leak of [bob.id, 'bob-the-other', '4321', '77', bob.key, ADMIN_KEY]) expect(r.text).not.toContain(leak);

    // An environment key sees the global limits only.
    const env = await rateLimit(gw, PROXY_KEY);
    expect(env.body.key).toBeUndefined();
    expect(env.text).not.toContain('alice');
    // Bob sees his own.
    expect((await rateLimit(gw, bob.key)).body.key).toMatchObject({ id: bob.id, limits: { requests_per_day: { used: 3 } } });
    // No key, no answer.
    expect((await fetch(`${gw.url}/ratelimit`)).status).toBe(401);
  });

  it('a stored key with no limits of its own and no global limit gets the original answer plus its key', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'free' });
    const r = await rateLimit(gw, k.key);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ key: { id: k.id, name: 'free', expires_at: null, limits: {} }, error: 'Rate limit is not enabled.' });
  });
});
