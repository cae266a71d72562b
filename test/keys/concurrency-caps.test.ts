/**
 * Issue 8, concurrency caps: PROXYGPT_MAX_CONCURRENT for the whole gateway and a stored key's
 * max_concurrent. Past a cap a call gets a 429 `concurrency_limit_exceeded` (Retry-After: 1) and is
 * not forwarded; a call holds its slot from admission until it is settled, an open stream until it
 * ends; the slot is free again the moment it is. The caps never count as requests: a refused call
 * leaves the request windows as they were, and an admitted one counts there once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_KEY, type TestGateway } from '../helpers.js';
import { admin, call, chatRequest, createKey, eventually, rateLimit, startAdminGateway, type CreatedKey, type HttpResult } from './helpers.js';

const GLOBAL_CAP = 4;
let gw: TestGateway;
let capped: CreatedKey;

beforeAll(async () => {
  gw = await startAdminGateway({ PROXYGPT_MAX_CONCURRENT: String(GLOBAL_CAP), USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '1000' });
  capped = await createKey(gw, { name: 'capped', max_concurrent: 2 });
});
afterAll(async () => gw?.close());

const hourlyUsed = async () => ((await rateLimit(gw, PROXY_KEY)).body as { hourly_api_usage: number }).hourly_api_usage;

/** Sends `n` calls at once, each held by the mock; returns once every one is refused or held upstream. */
async function heldBurst(key: string, n: number) {
  let answered = 0;
  const pending = Array.from({ length: n }, () =>
    call(gw, key, { headers: { 'x-mock-hold': '1' } }).then((r) => {
      answered++;
      return r;
    }),
  );
  const heldBefore = gw.mock.held;
  await eventually(`all ${n} calls are refused or held`, () => answered + gw.mock.held - heldBefore, (decided) => decided === n);
  return { answeredSoFar: () => answered, finish: async () => (gw.mock.release(), Promise.all(pending)) };
}

function expectConcurrencyRefusal(r: HttpResult, what: RegExp): void {
  expect(r.status, r.text).toBe(429);
  expect(r.body).toMatchObject({ error: { code: 'concurrency_limit_exceeded', type: 'requests' } });
  expect((r.body as { error: { message: string } }).error.message).toMatch(what);
  expect(r.headers.get('retry-after')).toBe('1');
}

describe('PROXYGPT_MAX_CONCURRENT', () => {
  it(`admits exactly ${GLOBAL_CAP} of 12 calls at once; the rest are refused, not forwarded, not counted`, async () => {
    const forwardedBefore = gw.mock.requests.length;
    const usedBefore = await hourlyUsed();
    const burst = await heldBurst(PROXY_KEY, 12);
    expect(gw.mock.requests.length - forwardedBefore).toBe(GLOBAL_CAP);
    const results = await burst.finish();
    const refused = results.filter((r) => r.status === 429);
    expect(results.filter((r) => r.status === 200)).toHaveLength(GLOBAL_CAP);
    expect(refused).toHaveLength(12 - GLOBAL_CAP);
    for (const r of refused) expectConcurrencyRefusal(r, /calls in flight at once for this gateway/);
    // The request window counts the admitted calls only, and the headers speak of that window.
    await eventually('admitted calls counted', hourlyUsed, (used) => used === usedBefore + GLOBAL_CAP);
    expect(refused[0]!.headers.get('x-ratelimit-limit-requests')).toBe('1000');
  });

  it('frees a slot the moment a call is settled', async () => {
    const burst = await heldBurst(PROXY_KEY, GLOBAL_CAP);
    const extra = await call(gw, PROXY_KEY);
    expectConcurrencyRefusal(extra, /gateway/);
    await burst.finish();
    await eventually('slots free again', async () => (await call(gw, PROXY_KEY)).status, (status) => status === 200);
  });
});

describe("a key's max_concurrent", () => {
  it('is shown and can be changed over the admin API', async () => {
    const shown = await admin<{ max_concurrent: number | null }>(gw, 'GET', `/keys/${capped.id}`);
    expect(shown.body.max_concurrent).toBe(2);
    const invalid = await admin(gw, 'PATCH', `/keys/${capped.id}`, { max_concurrent: 0 });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ error: { param: 'max_concurrent' } });
  });

  it('counts an open stream until it ends', async () => {
    const controller = new AbortController();
    // Two long streams (a chunk every 50 ms), read until the test ends them.
    const streams = [0, 1].map(() =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${capped.key}`, 'content-type': 'application/json', 'x-mock-chunks': '1000', 'x-mock-chunk-delay-ms': '50' },
        body: JSON.stringify(chatRequest({ stream: true })),
        signal: controller.signal,
      }),
    );
    const responses = await Promise.all(streams);
    for (const r of responses) expect(r.status).toBe(200);
    // Both streams are open: the key's third call is refused, another key's call is not.
    expectConcurrencyRefusal(await call(gw, capped.key), /calls in flight at once for this key/);
    expect((await call(gw, PROXY_KEY)).status).toBe(200);
    // One stream ends (the client leaves): its slot is free once it is settled.
    controller.abort();
    await Promise.allSettled(responses.map((r) => r.body?.cancel()));
    await eventually('the key has room again', async () => (await call(gw, capped.key)).status, (status) => status === 200);
  });

  it('holds under a burst: exactly 2 of 10 at once', async () => {
    const forwardedBefore = gw.mock.requests.length;
    const burst = await heldBurst(capped.key, 10);
    expect(gw.mock.requests.length - forwardedBefore).toBe(2);
    const results = await burst.finish();
    expect(results.filter((r) => r.status === 200)).toHaveLength(2);
    for (const r of results.filter((x) => x.status !== 200)) expectConcurrencyRefusal(r, /this key/);
  });
});
