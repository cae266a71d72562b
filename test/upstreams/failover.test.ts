/**
 * Failover over real HTTP: a refused upstream, a 5xx, a 401 and a 429 move the call to the next
 * candidate (streams too, before their first byte); a 429's Retry-After keeps that key out of turn
 * for that long (injected clock); a stream broken after its first byte is never started again
 * elsewhere; the retry budget and the call's timeout bound the attempts; the answer the client
 * gets after the last failed attempt is that upstream's, as it came; the usage record names the
 * upstream that served.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { watchLimiter } from '../call/watch-limiter.js';
import { chat, manualClock, openaiEntry, postChat, refusedUrl, startRoutedGateway, type ManualClock, type RoutedGateway } from './helpers.js';

const eventually = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};

let a: MockOpenAI;
let b: MockOpenAI;
let c: MockOpenAI;
let clock: ManualClock;
let gw: RoutedGateway;
let refused: string;

beforeAll(async () => {
  [a, b, c] = await Promise.all([startMockOpenAI(), startMockOpenAI(), startMockOpenAI()]);
  refused = await refusedUrl();
  clock = manualClock();
  gw = await startRoutedGateway({
    clock,
    file: {
      // No breaker here (breaker.test.ts): every call tries its first choice again.
      breaker: { failures: 0 },
      upstreams: [
        // a first for every model: 1000:1 puts b first once per 1001 calls, never in these tests.
        openaiEntry('a', a, { weight: 1000, models: ['gpt-4o*', 'o3*'] }),
        openaiEntry('dead', refused, { weight: 1000, models: ['dead-first'] }),
        openaiEntry('b', b, { weight: 1, api_key: '${KEY_B}', models: ['gpt-4o*', 'dead-first', 'o3*'] }),
        openaiEntry('c', c, { weight: 1, api_key: '${KEY_A2}', models: ['o3*'] }),
      ],
    },
    env: { USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '100000', PROXYGPT_RATE_LIMIT_COUNT: 'success' },
  });
});
afterAll(async () => {
  await gw.close();
  await Promise.all([a.close(), b.close(), c.close()]);
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const m of [a, b, c]) {
    m.reset();
    m.forced = {};
  }
});

/** The usage record of the next call `run` makes (after it settled). */
async function recordOf(run: () => Promise<void>) {
  const watch = watchLimiter(gw);
  await run();
  await eventually('the usage record', () => watch.records.length === 1);
  expect(watch.reserved).toHaveLength(1);
  expect(watch.committed).toEqual(watch.reserved);
  return watch.records[0]!;
}

describe('failover', () => {
  it('a refused upstream: the call is served by the next one, and recorded as its', async () => {
    const record = await recordOf(async () => {
      const res = await postChat(gw, chat('dead-first'));
      expect(res.status).toBe(200);
      expect(((await res.json()) as { model: string }).model).toBe('dead-first');
    });
    expect(b.requests).toHaveLength(1);
    expect(record).toMatchObject({ status: 200, upstream: 'b', model: 'dead-first' });
  });

  it('a refused upstream before a stream: the stream comes from the next one', async () => {
    const res = await postChat(gw, chat('dead-first', { stream: true }));
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('data: [DONE]');
    expect(b.requests).toHaveLength(1);
  });

  for (const status of [500, 502, 503, 401]) {
    it(`an upstream ${status}: the next upstream answers; the failed answer is dropped`, async () => {
      a.forced = { 'x-mock-status': String(status) };
      const record = await recordOf(async () => {
        const res = await postChat(gw, chat('gpt-4o-mini'));
        expect(res.status).toBe(200);
        expect(await res.text()).not.toContain('mock error');
      });
      expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
      expect(record).toMatchObject({ status: 200, upstream: 'b' });
    });
  }

  it('a 503 before a stream’s first byte: the stream comes from the next upstream', async () => {
    a.forced = { 'x-mock-status': '503' };
    const res = await postChat(gw, chat('gpt-4o-mini', { stream: true }));
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('data: [DONE]');
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
  });

  it('a 4xx that is the request’s own (400, 404, 422) is relayed, never failed over', async () => {
    for (const status of [400, 404, 422]) {
      a.forced = { 'x-mock-status': String(status) };
      const res = await postChat(gw, chat('gpt-4o-mini'));
      expect(res.status).toBe(status);
      expect(await res.json()).toMatchObject({ error: { message: `mock error ${status}` } });
    }
    expect(b.requests).toHaveLength(0);
  });

  it('no failover after a stream’s first byte: the stream ends with an error event, no other upstream is asked', async () => {
    a.forced = { 'x-mock-fault': 'reset-mid-stream' };
    const record = await recordOf(async () => {
      const res = await postChat(gw, chat('gpt-4o-mini', { stream: true }));
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain('"code":"upstream_unreachable"');
      expect(text).not.toContain('[DONE]');
    });
    expect([a.requests.length, b.requests.length]).toEqual([1, 0]);
    expect(record.upstream).toBe('a');
  });

  it('a 429 moves the call on, and the key sits out its Retry-After (seconds) on the gateway’s clock', async () => {
    a.forced = { 'x-mock-status': '429', 'x-mock-response-headers': JSON.stringify({ 'retry-after': '30' }) };
    const first = await postChat(gw, chat('gpt-4o-mini'));
    expect(first.status).toBe(200);
    await first.text();
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
    a.forced = {};
    // Within the 30 s, a gets nothing, however it ranks.
    clock.advance(29_000);
    for (let i = 0; i < 3; i++) expect((await postChat(gw, chat('gpt-4o-mini'))).status).toBe(200);
    expect([a.requests.length, b.requests.length]).toEqual([1, 4]);
    clock.advance(1_001);
    expect((await postChat(gw, chat('gpt-4o-mini'))).status).toBe(200);
    expect([a.requests.length, b.requests.length]).toEqual([2, 4]);
  });

  it('retry-after-ms (OpenAI’s) counts too, and an HTTP date', async () => {
    a.forced = { 'x-mock-status': '429', 'x-mock-response-headers': JSON.stringify({ 'retry-after-ms': '1500', 'retry-after': '99' }) };
    expect((await postChat(gw, chat('gpt-4o-mini'))).status).toBe(200);
    a.forced = {};
    clock.advance(1_499);
    await (await postChat(gw, chat('gpt-4o-mini'))).text();
    expect(a.requests).toHaveLength(1);
    clock.advance(2);
    await (await postChat(gw, chat('gpt-4o-mini'))).text();
    expect(a.requests).toHaveLength(2);

    a.reset();
    a.forced = { 'x-mock-status': '429', 'x-mock-response-headers': JSON.stringify({ 'retry-after': new Date(clock() + 10_000).toUTCString() }) };
    expect((await postChat(gw, chat('gpt-4o-mini'))).status).toBe(200);
    a.forced = {};
    clock.advance(9_000);
    await (await postChat(gw, chat('gpt-4o-mini'))).text();
    expect(a.requests).toHaveLength(1);
    clock.advance(1_001);
    await (await postChat(gw, chat('gpt-4o-mini'))).text();
    expect(a.requests).toHaveLength(2);
  });

  it('every upstream rate limited: the client gets 429 upstream_rate_limited with the first one’s wait, nothing reserved', async () => {
    a.forced = { 'x-mock-status': '429', 'x-mock-response-headers': JSON.stringify({ 'retry-after': '20' }) };
    b.forced = { 'x-mock-status': '429', 'x-mock-response-headers': JSON.stringify({ 'retry-after': '5' }) };
    // The first call tries both and gets b's 429 (the last answer), as it came.
    const first = await postChat(gw, chat('gpt-4o-mini'));
    expect(first.status).toBe(429);
    expect(await first.json()).toMatchObject({ error: { message: 'mock error 429' } });
    const watch = watchLimiter(gw);
    const res = await postChat(gw, chat('gpt-4o-mini'));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.json()).toMatchObject({ error: { code: 'upstream_rate_limited', type: 'requests' } });
    expect(watch.reserved).toEqual([]);
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
    clock.advance(20_001); // both back, for the next tests
  });

  it('the retry budget: at most 3 attempts; the client gets the last failure as it came', async () => {
    for (const m of [a, b, c]) m.forced = { 'x-mock-status': '503', 'x-mock-echo': `from ${m.port}` };
    const res = await postChat(gw, chat('o3-mini'));
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { message: string } };
    expect(a.requests.length + b.requests.length + c.requests.length).toBe(3);
    // Each of the three upstreams was tried once; the answer is the third's.
    expect([a.requests.length, b.requests.length, c.requests.length]).toEqual([1, 1, 1]);
    expect(body.error.message).toMatch(/^mock error 503: from \d+$/);
    expect(body.error.message).not.toBe(`mock error 503: from ${a.port}`);
  });

  it('nothing reachable: 502 upstream_unreachable after each candidate was tried once', async () => {
    const watch = watchLimiter(gw);
    a.forced = { 'x-mock-fault': 'reset-before-headers' };
    b.forced = { 'x-mock-fault': 'reset-before-headers' };
    const res = await postChat(gw, chat('gpt-4o-mini'));
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: { code: 'upstream_unreachable' } });
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
    await eventually('the record', () => watch.records.length === 1);
    expect(watch.records[0]).toMatchObject({ status: 502, upstream: null });
    expect(watch.committed).toEqual(watch.reserved);
  });

  it('a client that leaves while an attempt is out: nothing more is tried', async () => {
    a.forced = { 'x-mock-hang': '1' };
    const controller = new AbortController();
    const pending = postChatWithSignal(controller.signal);
    await eventually('a got the call', () => a.requests.length === 1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await eventually('a saw the abort', () => a.aborted === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(b.requests).toHaveLength(0);
  });
});

function postChatWithSignal(signal: AbortSignal): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer pgpt-test-key-aaaaaaaaaaaaaaaa', 'content-type': 'application/json' },
    body: JSON.stringify(chat('gpt-4o-mini')),
    signal,
  });
}

describe("the call's timeout bounds the attempts", () => {
  let slow: MockOpenAI;
  let fine: MockOpenAI;
  let timed: RoutedGateway;
  beforeAll(async () => {
    [slow, fine] = await Promise.all([startMockOpenAI(), startMockOpenAI()]);
    timed = await startRoutedGateway({
      file: {
        breaker: { failures: 0 },
        // undici checks header timeouts on a ~0.5 s tick (a timeout fires up to ~1 s late): seconds here, not ms.
        upstreams: [openaiEntry('slow', slow, { weight: 1000, timeout_ms: 1_000 }), openaiEntry('fine', fine, { weight: 1, timeout_ms: 20_000 })],
      },
      env: { PROXYGPT_UPSTREAM_TIMEOUT_MS: '3000' },
    });
  });
  afterAll(async () => {
    await timed.close();
    await Promise.all([slow.close(), fine.close()]);
  });

  it('an upstream past its own timeout_ms fails over to the next', async () => {
    slow.forced = { 'x-mock-hang': '1' };
    const res = await postChat(timed, chat('gpt-4o'));
    expect(res.status).toBe(200);
    await res.text();
    expect([slow.requests.length, fine.requests.length]).toEqual([1, 1]);
  });

  it('the next attempt gets only what is left of the call’s time (a slow answer past it is a 504)', async () => {
    slow.forced = { 'x-mock-hang': '1' };
    // fine would answer after 8 s (within its own 20 s), but the call has 1-2 s left after slow's timeout.
    fine.forced = { 'x-mock-delay-ms': '8000' };
    const res = await postChat(timed, chat('gpt-4o'));
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ error: { code: 'upstream_timeout' } });
  });
});
