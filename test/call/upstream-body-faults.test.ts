/**
 * Issue 8, defect 4: an upstream that fails in the middle of a JSON body the gateway reads whole
 * (a 2xx answer, an error answer) is answered like one that fails
 * before its headers: a stall past PROXYGPT_UPSTREAM_TIMEOUT_MS is a 504, a reset a 502, in
 * OpenAI's error shape with the rate-limit headers. Each call is settled once: committed once,
 * nothing released or left held, recorded once with the status the client got; a 2xx that broke
 * bills the prompt (the upstream had it), an error that broke bills nothing.
 * (The mock's x-mock-body-fault sends the headers and half the body, then stalls for good or
 * resets, so no timing decides the outcome.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { authHeaders, PROXY_KEY, type TestGateway } from '../helpers.js';
import { chatRequest, createKey, eventually, rateLimit, startAdminGateway, type CreatedKey } from '../keys/helpers.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';
import { watchLimiter, type LimiterWatch } from './watch-limiter.js';

let gw: TestGateway;
let metered: CreatedKey;
let seen: LimiterWatch;

beforeAll(async () => {
  gw = await startAdminGateway({
    PROXYGPT_RATE_LIMIT_COUNT: 'success',
    USE_HOURLY_RATE_LIMIT: 'true',
    PROXYGPT_HOURLY_RATE_LIMIT: '1000',
    PROXYGPT_UPSTREAM_TIMEOUT_MS: '400',
  });
  metered = await createKey(gw, { name: 'metered', tokens_per_hour: 1_000_000 });
  seen = watchLimiter(gw);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await gw?.close();
});
afterEach(() => seen.reset());

const EXPECTED = {
  stall: { status: 504, code: 'upstream_timeout' },
  reset: { status: 502, code: 'upstream_unreachable' },
} as const;

// The legacy route sends fixed headers upstream (no x-mock-* switch reaches the mock): its
// answers broken mid-body are in test/call/settle-once.test.ts.
const routes = { '/v1/chat/completions': JSON.stringify(chatRequest()) };

/** The key's tokens: used (held included). */
const tokensUsed = async () => (await rateLimit(gw, metered.key)).body.key!.limits.tokens_per_hour!.used;

describe('an upstream failing in the middle of a JSON body', () => {
  for (const fault of ['stall', 'reset'] as const) {
    for (const [path, body] of Object.entries(routes)) {
      for (const upstreamStatus of [200, 500]) {
        it(`${fault} in a ${upstreamStatus} answer on ${path}: ${EXPECTED[fault].status}, settled once`, async () => {
          const before = await tokensUsed();
          const headers: Record<string, string> = { ...authHeaders(metered.key), 'x-mock-body-fault': fault };
          if (upstreamStatus !== 200) headers['x-mock-status'] = String(upstreamStatus);
          const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers, body });
          expect(res.status).toBe(EXPECTED[fault].status);
          const error = expectErrorShape(await res.json());
          expect(error.code).toBe(EXPECTED[fault].code);
          expect(error.type).toBe('api_error');
          expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('1000000');
          expect(res.headers.get('x-proxygpt-request-id')).toBeTruthy();

          await eventually('the call is recorded', () => seen.records.length, (n) => n === 1);
          expect(seen.reserved).toHaveLength(1);
          expect(seen.committed).toEqual(seen.reserved);
          expect(seen.released).toEqual([]);
          const record = seen.records[0]!;
          expect(record.status).toBe(EXPECTED[fault].status);
          if (upstreamStatus === 200) expect(record.promptTokens).toBeGreaterThan(0);
          else expect(record.promptTokens + record.completionTokens).toBe(0);
          // Nothing left held: the key's usage grew by exactly what was billed.
          expect(await tokensUsed()).toBe(before + record.promptTokens + record.completionTokens);
          await eventually('the upstream connection is closed', () => gw.mock.inFlight, (n) => n === 0);
        });
      }
    }
  }

  it('an environment key gets the same answer (no token limits)', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(PROXY_KEY), 'x-mock-body-fault': 'stall' },
      body: JSON.stringify(chatRequest()),
    });
    expect(res.status).toBe(504);
    expect(expectErrorShape(await res.json()).code).toBe('upstream_timeout');
    await eventually('the call is settled', () => seen.committed.length, (n) => n === 1);
  });
});
