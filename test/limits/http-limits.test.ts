/**
 * The global limits through the real HTTP gateway: exact admission under concurrency, rate-limit
 * headers, the 429 shape and its exact Retry-After (injected clock), auth before limits,
 * GET /ratelimit, the count-only-successes mode, and the legacy route sharing the same counter.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { authHeaders, chatBody, OTHER_KEY, startGateway, type GatewayOptions, type TestGateway } from '../helpers.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = 1_750_000_000_000;

const RATE_HEADERS = ['x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests'];

let gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  gateways = [];
});

async function start(env: Record<string, string>, options: Omit<GatewayOptions, 'env'> = {}): Promise<TestGateway> {
  const gw = await startGateway({ env: { LOG_LEVEL: 'warn', ...env }, ...options });
  gateways.push(gw);
  return gw;
}

const hourlyEnv = (limit: number, extra: Record<string, string> = {}) => ({
  USE_HOURLY_RATE_LIMIT: 'true',
  PROXYGPT_HOURLY_RATE_LIMIT: String(limit),
  ...extra,
});

interface Result {
  status: number;
  headers: Headers;
  text: string;
}

async function chat(gw: TestGateway, headers: Record<string, string> = {}, key?: string): Promise<Result> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { ...authHeaders(key), ...headers }, body: chatBody() });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function legacy(gw: TestGateway): Promise<Result> {
  const res = await fetch(`${gw.url}/api/openai/completions/gpt3`, {
    method: 'POST',
    headers: authHeaders(),
    body: JSON.stringify([{ role: 'user', content: 'old style' }]),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function rateStatus(gw: TestGateway, key?: string): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${gw.url}/ratelimit`, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const statuses = (results: Result[]) => {
  const count: Record<number, number> = {};
  for (const r of results) count[r.status] = (count[r.status] ?? 0) + 1;
  return count;
};

function expectRateLimitError(r: Result): void {
  expect(r.status).toBe(429);
  const body = JSON.parse(r.text) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null });
  expect(typeof body.error.message).toBe('string');
  expect(r.headers.get('content-type')).toContain('application/json');
  expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(Number(r.headers.get('retry-after-ms'))).toBeGreaterThanOrEqual(1);
  expect(r.headers.get('x-ratelimit-remaining-requests')).toBe('0');
}

describe('admission under concurrency', () => {
  it('admits exactly the limit out of 150 concurrent requests', async () => {
    const gw = await start(hourlyEnv(40));
    const results = await Promise.all(Array.from({ length: 150 }, () => chat(gw)));
    expect(statuses(results)).toEqual({ 200: 40, 429: 110 });
    expect(gw.mock.requests.length).toBe(40);

    // Every answer carries the headers; each admitted request saw its own slot.
    for (const r of results) for (const name of RATE_HEADERS) expect(r.headers.get(name), name).not.toBeNull();
    for (const r of results) expect(r.headers.get('x-ratelimit-limit-requests')).toBe('40');
    const remaining = results.filter((r) => r.status === 200).map((r) => Number(r.headers.get('x-ratelimit-remaining-requests')));
    expect(remaining.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    for (const r of results.filter((x) => x.status === 429)) expectRateLimitError(r);

    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_rate_limit: 40, hourly_api_usage: 40, hourly_remaining: 0 });
  });
});

describe('headers and the 429 answer', () => {
  it('puts the rate-limit headers on every proxied answer, upstream errors included', async () => {
    let now = T0;
    const gw = await start(hourlyEnv(4), { clock: () => now });
    const first = await chat(gw);
    expect(first.status).toBe(200);
    expect(RATE_HEADERS.map((h) => first.headers.get(h))).toEqual(['4', '3', '1h0m0s']);

    now = T0 + 60_000;
    const failed = await chat(gw, { 'x-mock-status': '500' });
    expect(failed.status).toBe(500);
    expect(RATE_HEADERS.map((h) => failed.headers.get(h))).toEqual(['4', '2', '59m0s']);

    now = T0 + 61_500;
    const old = await legacy(gw);
    expect(old.status).toBe(200);
    expect(JSON.parse(old.text)).toEqual({ message: 'Echo: old style' });
    expect(RATE_HEADERS.map((h) => old.headers.get(h))).toEqual(['4', '1', '58m59s']);
  });

  it('answers 429 in OpenAI shape with exact Retry-After, and admits again exactly then', async () => {
    let now = T0;
    const gw = await start(hourlyEnv(3), { clock: () => now });
    for (const offset of [250, 10_000, 20_000]) {
      now = T0 + offset;
      expect((await chat(gw)).status).toBe(200);
    }

    now = T0 + 30_000;
    const refused = await chat(gw);
    expectRateLimitError(refused);
    // The first request (at 250 ms) leaves the window at T0 + 3600.25 s: 3570.25 s from now.
    expect(refused.headers.get('retry-after-ms')).toBe('3570250');
    expect(refused.headers.get('retry-after')).toBe('3571');
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(refused.headers.get('x-ratelimit-reset-requests')).toBe('59m31s');
    expect(JSON.parse(refused.text).error.message).toContain('3571');

    now = T0 + HOUR + 249;
    const stillRefused = await chat(gw);
    expect(stillRefused.status).toBe(429);
    expect(stillRefused.headers.get('retry-after-ms')).toBe('1');
    expect(stillRefused.headers.get('retry-after')).toBe('1');

    // Exactly Retry-After seconds after the first refusal: one request fits, the next does not.
    now = T0 + 30_000 + 3571 * 1000;
    const again = await chat(gw);
    expect(again.status).toBe(200);
    expect(again.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const next = await chat(gw);
    expect(next.status).toBe(429);
    expect(next.headers.get('retry-after-ms')).toBe(String(T0 + 10_000 + HOUR - now));
    expect(gw.mock.requests.length).toBe(4);
  });

  it('with both limits full, Retry-After and the reset header follow the longer wait', async () => {
    let now = T0;
    const gw = await start({ ...hourlyEnv(2), USE_DAILY_RATE_LIMIT: 'true', PROXYGPT_DAILY_RATE_LIMIT: '3' }, { clock: () => now });
    for (const offset of [0, 2 * HOUR, 2 * HOUR + 10_000]) {
      now = T0 + offset;
      expect((await chat(gw)).status).toBe(200);
    }
    now = T0 + 2 * HOUR + 20_000;
    const refused = await chat(gw);
    expectRateLimitError(refused);
    const wait = DAY - (2 * HOUR + 20_000);
    expect(refused.headers.get('retry-after-ms')).toBe(String(wait));
    expect(refused.headers.get('retry-after')).toBe(String(wait / 1000));
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(refused.headers.get('x-ratelimit-reset-requests')).toBe('21h59m40s');
    expect(JSON.parse(refused.text).error.message).toContain('per day');
  });
});

describe('auth comes before limits', () => {
  it('answers 401 without rate-limit headers even when the limit is exhausted', async () => {
    const gw = await start(hourlyEnv(1));
    expect((await chat(gw)).status).toBe(200);
    expectRateLimitError(await chat(gw));

    for (const authorization of ['Bearer pgpt-wrong-key-cccccccccccccccc', '']) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: chatBody(),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.headers.get('retry-after')).toBeNull();
      for (const name of RATE_HEADERS) expect(res.headers.get(name)).toBeNull();
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    }
    expect(gw.mock.requests.length).toBe(1);
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: 1 });
  });

  it('does not count requests refused before forwarding (bad JSON, endpoint or model not allowed)', async () => {
    const gw = await start(hourlyEnv(2, { PROXYGPT_ALLOWED_MODELS: 'gpt-4o-mini' }));
    const send = async (path: string, body: string) => {
      const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: authHeaders(), body });
      await res.text();
      return res.status;
    };
    expect(await send('/v1/chat/completions', '{"model": ')).toBe(400);
    expect(await send('/v1/chat/completions', '[1, 2]')).toBe(400);
    expect(await send('/v1/embeddings', JSON.stringify({ model: 'gpt-4o-mini', input: 'x' }))).toBe(403);
    expect(await send('/v1/chat/completions', JSON.stringify({ model: 'gpt-4', messages: [] }))).toBe(403);
    expect(await send('/api/openai/completions/gpt3', JSON.stringify([{ role: 'nobody', content: 'x' }]))).toBe(400);
    expect(gw.mock.requests.length).toBe(0);
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: 0 });
    expect((await chat(gw)).status).toBe(200);
    expect((await chat(gw)).status).toBe(200);
    expect((await chat(gw)).status).toBe(429);
  });

  it('does not count refused logins against the limit', async () => {
    const gw = await start(hourlyEnv(2));
    for (let i = 0; i < 5; i++) expect((await chat(gw, {}, 'pgpt-wrong-key-cccccccccccccccc')).status).toBe(401);
    expect((await chat(gw)).status).toBe(200);
    expect((await chat(gw)).status).toBe(200);
    expect((await chat(gw)).status).toBe(429);
  });
});

describe('GET /ratelimit', () => {
  it('needs a proxy key', async () => {
    const gw = await start(hourlyEnv(5));
    expect((await rateStatus(gw)).status).toBe(401);
    expect((await rateStatus(gw, 'pgpt-wrong-key-cccccccccccccccc')).status).toBe(401);
  });

  it('reports both windows exactly, is never limited and consumes nothing', async () => {
    let now = T0;
    const gw = await start({ ...hourlyEnv(2), USE_DAILY_RATE_LIMIT: 'true', PROXYGPT_DAILY_RATE_LIMIT: '7' }, { clock: () => now });
    const empty = await rateStatus(gw, OTHER_KEY);
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({
      hourly_rate_limit: 2,
      hourly_api_usage: 0,
      hourly_remaining: 2,
      hourly_reset_seconds: 0,
      daily_rate_limit: 7,
      daily_api_usage: 0,
      daily_remaining: 7,
      daily_reset_seconds: 0,
    });

    expect((await chat(gw)).status).toBe(200);
    now = T0 + 1000;
    expect((await chat(gw)).status).toBe(200);
    now = T0 + 2500;
    expect((await chat(gw)).status).toBe(429);

    for (let i = 0; i < 5; i++) {
      const s = await rateStatus(gw, OTHER_KEY);
      expect(s.status).toBe(200);
      expect(s.body).toEqual({
        hourly_rate_limit: 2,
        hourly_api_usage: 2,
        hourly_remaining: 0,
        hourly_reset_seconds: 3598, // ceil(3597.5)
        daily_rate_limit: 7,
        daily_api_usage: 2,
        daily_remaining: 5,
        daily_reset_seconds: 86398,
      });
    }
    // The hourly window frees up exactly when the first request leaves, not earlier.
    now = T0 + HOUR - 1;
    expect((await chat(gw)).status).toBe(429);
    now = T0 + HOUR;
    expect((await rateStatus(gw)).status).toBe(401);
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: 1, hourly_remaining: 1, daily_api_usage: 2 });
    expect((await chat(gw)).status).toBe(200);
  });

  it('shows only the enabled window', async () => {
    const gw = await start({ USE_DAILY_RATE_LIMIT: 'true', PROXYGPT_DAILY_RATE_LIMIT: '9', USE_HOURLY_RATE_LIMIT: 'false' });
    expect((await chat(gw)).status).toBe(200);
    const s = await rateStatus(gw, OTHER_KEY);
    expect(Object.keys(s.body).sort()).toEqual(['daily_api_usage', 'daily_rate_limit', 'daily_remaining', 'daily_reset_seconds']);
    expect(s.body).toMatchObject({ daily_rate_limit: 9, daily_api_usage: 1, daily_remaining: 8 });
  });

  it('says so when no limit is enabled, and then never limits', async () => {
    const gw = await start({});
    const s = await rateStatus(gw, OTHER_KEY);
    expect(s.status).toBe(200);
    expect(s.body).toEqual({ error: 'Rate limit is not enabled.' });
    const results = await Promise.all(Array.from({ length: 20 }, () => chat(gw)));
    expect(statuses(results)).toEqual({ 200: 20 });
    for (const name of RATE_HEADERS) expect(results[0]!.headers.get(name)).toBeNull();
  });
});

describe('what counts', () => {
  it('counts upstream failures by default', async () => {
    const gw = await start(hourlyEnv(3));
    for (let i = 0; i < 3; i++) expect((await chat(gw, { 'x-mock-status': '500' })).status).toBe(500);
    expectRateLimitError(await chat(gw));
    expect(gw.mock.requests.length).toBe(3);
  });

  it('in success mode counts only 2xx answers', async () => {
    const gw = await start(hourlyEnv(3, { PROXYGPT_RATE_LIMIT_COUNT: 'success' }));
    for (let i = 0; i < 6; i++) {
      const r = await chat(gw, { 'x-mock-status': i % 2 === 0 ? '500' : '429' });
      expect(r.status).toBe(i % 2 === 0 ? 500 : 429);
      expect(r.headers.get('retry-after')).toBeNull(); // the upstream's 429, not ours
    }
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: 0, hourly_remaining: 3 });
    for (let i = 0; i < 3; i++) expect((await chat(gw)).status).toBe(200);
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: 3, hourly_remaining: 0 });
    expectRateLimitError(await chat(gw));
    expectRateLimitError(await chat(gw, { 'x-mock-status': '500' }));
    expect(gw.mock.requests.length).toBe(9);
  });

  it('in success mode counts exactly the successes of concurrent mixed traffic', async () => {
    const gw = await start(hourlyEnv(30, { PROXYGPT_RATE_LIMIT_COUNT: 'success' }));
    // 30 in flight at once fit exactly (in-flight requests hold their slot); 10 fail, 20 succeed.
    const mixed = await Promise.all(
      Array.from({ length: 30 }, (_, i) => chat(gw, i % 3 === 0 ? { 'x-mock-status': '500', 'x-mock-delay-ms': '20' } : { 'x-mock-delay-ms': '20' })),
    );
    expect(statuses(mixed)).toEqual({ 200: 20, 500: 10 });
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: 20, hourly_remaining: 10 });

    // Then more than the rest at once: exactly the 10 remaining get through.
    const burst = await Promise.all(Array.from({ length: 25 }, () => chat(gw)));
    expect(statuses(burst)).toEqual({ 200: 10, 429: 15 });
    expect(gw.mock.requests.length).toBe(40);
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: 30, hourly_remaining: 0 });
  });

  it('in success mode releases failures under contention and never admits more than the limit', async () => {
    const gw = await start(hourlyEnv(10, { PROXYGPT_RATE_LIMIT_COUNT: 'success' }));
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => chat(gw, i % 2 === 0 ? { 'x-mock-status': '502' } : {})),
    );
    const count = statuses(results);
    const ok = count[200] ?? 0;
    expect(ok).toBeLessThanOrEqual(10);
    expect(ok + (count[502] ?? 0) + (count[429] ?? 0)).toBe(60);
    expect(gw.mock.requests.length).toBe(ok + (count[502] ?? 0));
    // Exactly the successes are counted; the remaining slots are usable one by one.
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: ok, hourly_remaining: 10 - ok });
    for (let i = ok; i < 10; i++) expect((await chat(gw)).status).toBe(200);
    expect((await chat(gw)).status).toBe(429);
  });

  it('counts the legacy route against the same limit', async () => {
    const gw = await start(hourlyEnv(3));
    expect((await chat(gw)).status).toBe(200);
    expect((await legacy(gw)).status).toBe(200);
    expect((await chat(gw)).status).toBe(200);
    const refusedLegacy = await legacy(gw);
    expectRateLimitError(refusedLegacy);
    expectRateLimitError(await chat(gw));
    expect(gw.mock.requests.length).toBe(3);
    expect(gw.mock.requests.filter((r) => r.body.includes('old style')).length).toBe(1);
    expect((await rateStatus(gw, OTHER_KEY)).body).toMatchObject({ hourly_api_usage: 3 });
  });

  it('admits exactly the limit of concurrent legacy and /v1 requests together', async () => {
    const gw = await start(hourlyEnv(25));
    const results = await Promise.all(Array.from({ length: 80 }, (_, i) => (i % 2 === 0 ? legacy(gw) : chat(gw))));
    expect(statuses(results)).toEqual({ 200: 25, 429: 55 });
    expect(gw.mock.requests.length).toBe(25);
  });
});
