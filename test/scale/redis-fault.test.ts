/**
 * Issue 9, faults: a gateway whose limits are in Redis, on a redis-server of the test's own that
 * the test kills and starts again. Fail closed (the default): while Redis is gone a call gets a 503
 * `limiter_unavailable` at once (nothing forwarded), /readyz says the limiter is unreachable; once
 * Redis is back the same gateway serves again, no restart. Fail open: calls are served meanwhile
 * (counted by the instance), the log says so loudly, and Redis decides again once it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { eventually } from '../keys/helpers.js';
import { RedisServer, testRedisUrl } from '../support/redis.js';

const available = (await testRedisUrl()) !== null;

async function chat(gw: TestGateway) {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(PROXY_KEY), body: chatBody() });
  return { status: res.status, body: (await res.json()) as { error?: { code?: string } } };
}
const ready = async (gw: TestGateway) => {
  const res = await fetch(`${gw.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { checks?: Record<string, string> } };
};

describe.skipIf(!available).each(['closed', 'open'] as const)('Redis lost while running, failing %s', (mode) => {
  let redis: RedisServer;
  let gw: TestGateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    gw = await startGateway({
      env: { PROXYGPT_REDIS_URL: redis.url, PROXYGPT_REDIS_FAIL_MODE: mode, PROXYGPT_REDIS_TIMEOUT_MS: '300', USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '1000' },
    });
  }, 30_000);
  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
  });

  it('serves while Redis answers; /readyz names both dependencies', async () => {
    expect((await chat(gw)).status).toBe(200);
    expect(await ready(gw)).toEqual({ status: 200, body: { status: 'ok', checks: { store: 'ok', limiter: 'ok' } } });
  });

  it(`while Redis is gone: ${mode === 'closed' ? '503 limiter_unavailable, nothing forwarded' : 'served, counted here, said loudly'}; /readyz is 503`, async () => {
    await redis.stop();
    const before = gw.mock.requests.length;
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await chat(gw));
    if (mode === 'closed') {
      for (const a of answers) expect(a).toMatchObject({ status: 503, body: { error: { code: 'limiter_unavailable', type: 'api_error' } } });
      expect(gw.mock.requests.length).toBe(before);
    } else {
      for (const a of answers) expect(a.status).toBe(200);
      expect(gw.mock.requests.length).toBe(before + 5);
      expect(gw.logs.some((line) => line.includes('FAILING OPEN'))).toBe(true);
    }
    const notReady = await ready(gw);
    expect(notReady.status).toBe(503);
    expect(notReady.body.checks).toEqual({ store: 'ok', limiter: 'unreachable' });
  }, 20_000);

  it('recovers by itself once Redis is back: served again, /readyz 200, the log says so', async () => {
    await redis.start();
    // Each call asks Redis again (at most once a second while it was failing) until it answers.
    await eventually(
      'the gateway decides in Redis again',
      async () => ((await chat(gw)).status === 200 ? gw.logs.some((line) => line.includes('answers again')) : false),
      (back) => back,
      10_000,
    );
    expect((await chat(gw)).status).toBe(200);
    expect((await ready(gw)).status).toBe(200);
    // The restarted Redis kept nothing (no persistence): it counts from here, in Redis.
    const rate = (await (await fetch(`${gw.url}/ratelimit`, { headers: authHeaders(PROXY_KEY) })).json()) as { hourly_api_usage: number };
    expect(rate.hourly_api_usage).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
