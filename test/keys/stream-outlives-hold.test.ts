/**
 * A stream that outlives its hold, through the real HTTP gateway, for every limiter a gateway
 * process can run (memory, sqlite, Redis): a key with tokens per hour reserves its estimate when
 * a stream starts; the hold lives `PROXYGPT_UPSTREAM_TIMEOUT_MS` + 60 s (a small timeout here, and
 * an injected clock that jumps past it while the stream goes on: the timeout is per chunk, not per
 * call), then expires and gives its room back; when the stream ends, the tokens the upstream
 * reported are still counted, at that moment, in the key's /ratelimit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { chatRequest, createKey, rateLimit, settledUsage } from './helpers.js';
import { adminGateways } from './gateway-fixture.js';
import { DAY, T0 } from './per-key-helpers.js';

const REDIS_URL = await testRedisUrl();
const UPSTREAM_TIMEOUT_MS = 2_000;
const HOLD_TTL_MS = UPSTREAM_TIMEOUT_MS + 60_000;
/** The usage the mock reports when the stream ends: 12 + 40 tokens (the cap, max_tokens, is 50). */
const REPORTED = { 'x-mock-prompt-tokens': '12', 'x-mock-completion-tokens': '40' };
const REPORTED_TOTAL = 52;
/** Keeps the stream going (a chunk every 20 ms, well within the upstream timeout) until finishStreams(). */
const ENDLESS = { 'x-mock-chunks': '1000000', 'x-mock-chunk-delay-ms': '20' };

const redisPrefixes: string[] = [];
afterEach(async () => {
  for (const prefix of redisPrefixes.splice(0)) await deleteKeys(REDIS_URL!, prefix);
});

const LIMITERS: [string, () => Record<string, string>][] = [
  ['memory', () => ({ PROXYGPT_LIMITER: 'memory' })],
  ['sqlite', () => ({ PROXYGPT_LIMITER: 'sqlite' })],
  ...(REDIS_URL === null
    ? []
    : ([
        [
          'redis',
          () => {
            const prefix = uniquePrefix('late-stream');
            redisPrefixes.push(prefix);
            return { PROXYGPT_REDIS_URL: REDIS_URL, PROXYGPT_REDIS_PREFIX: prefix };
          },
        ],
      ] as [string, () => Record<string, string>][])),
];

describe.each(LIMITERS)('a stream that outlives its hold (%s limiter)', (_kind, limiterEnv) => {
  const { start } = adminGateways();

  it("counts the stream's reported tokens when it ends, after its hold expired and gave its room back", async () => {
    let now = T0;
    const gw = await start({ PROXYGPT_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS), ...limiterEnv() }, () => now);
    const k = await createKey(gw, { name: 'long-stream', tokens_per_hour: 10_000 });
    const tokensUsed = async () => (await rateLimit(gw, k.key)).body.key!.limits.tokens_per_hour!;

    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json', ...ENDLESS, ...REPORTED },
      body: JSON.stringify(chatRequest({ stream: true, max_tokens: 50 })),
    });
    expect(response.status).toBe(200);
    const body = response.text();
    // What the call holds while in flight: its estimate, as its own headers report it.
    const reserved = Number(response.headers.get('x-ratelimit-limit-tokens')) - Number(response.headers.get('x-ratelimit-remaining-tokens'));
    expect(reserved).toBeGreaterThan(0);
    expect(reserved).not.toBe(REPORTED_TOTAL); // so the end can tell the settlement from the hold
    expect((await tokensUsed()).used).toBe(reserved);

    // Past the hold's lifetime while the stream goes on: the scheduled prune ends the hold.
    now = T0 + HOLD_TTL_MS + 60_000;
    await gw.app.limiter.prune(() => DAY);
    expect(await tokensUsed()).toMatchObject({ used: 0, remaining: 10_000 });
    expect(gw.mock.inFlight).toBe(1); // still streaming

    now = T0 + HOLD_TTL_MS + 120_000;
    gw.mock.finishStreams();
    expect(await body).toContain('data: [DONE]');
    const settled = await settledUsage(gw, k.key, 'tokens_per_hour', REPORTED_TOTAL);
    expect(settled).toMatchObject({ used: REPORTED_TOTAL, remaining: 10_000 - REPORTED_TOTAL, reset_seconds: 3600 }); // counted from its end
    // Once: nothing more is counted later.
    now += 1_000;
    await gw.app.limiter.prune(() => DAY);
    expect((await tokensUsed()).used).toBe(REPORTED_TOTAL);
  });
});
