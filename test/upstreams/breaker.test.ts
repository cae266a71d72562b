/**
 * The circuit breaker per upstream key, on an injected clock: it opens after the configured
 * number of consecutive failures (the key then gets no calls at all), lets one probe through
 * after the cooldown (half-open; other calls meanwhile go elsewhere), closes on the probe's
 * success and opens again on its failure. When every candidate's breaker is open the call is a
 * 503 upstream_unavailable with the wait, before anything is reserved or forwarded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { watchLimiter } from '../call/watch-limiter.js';
import { chat, manualClock, openaiEntry, postChat, refusedUrl, startRoutedGateway, type ManualClock, type RoutedGateway } from './helpers.js';

const eventually = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};

let a: MockOpenAI;
let b: MockOpenAI;
let clock: ManualClock;
let gw: RoutedGateway;

/** One call for `model`; returns its status (the body read). */
async function call(model = 'gpt-4o-mini'): Promise<number> {
  const res = await postChat(gw, chat(model));
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  [a, b] = await Promise.all([startMockOpenAI(), startMockOpenAI()]);
  clock = manualClock();
  gw = await startRoutedGateway({
    clock,
    file: {
      breaker: { failures: 3, cooldown_ms: 10_000 },
      upstreams: [
        openaiEntry('a', a, { weight: 1000, models: ['gpt-4o*', 'only-a'] }),
        openaiEntry('gone', await refusedUrl(), { weight: 1000, models: ['gone-first'] }),
        openaiEntry('b', b, { weight: 1, api_key: '${KEY_B}', models: ['gpt-4o*', 'gone-first'] }),
      ],
    },
    env: { USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '100000' },
  });
});
afterAll(async () => {
  await gw.close();
  await Promise.all([a.close(), b.close()]);
});
afterEach(() => {
  vi.restoreAllMocks();
  a.forced = {};
  b.forced = {};
});

describe('circuit breaker', () => {
  it('opens after 3 consecutive failures, probes after the cooldown, re-opens on a failed probe, closes on a good one', async () => {
    a.forced = { 'x-mock-status': '500' };
    for (let i = 0; i < 3; i++) expect(await call()).toBe(200);
    expect([a.requests.length, b.requests.length]).toEqual([3, 3]);
    // Open: a gets nothing, however it ranks.
    for (let i = 0; i < 5; i++) expect(await call()).toBe(200);
    expect([a.requests.length, b.requests.length]).toEqual([3, 8]);
    clock.advance(9_999);
    expect(await call()).toBe(200);
    expect(a.requests).toHaveLength(3);

    // Half-open: one probe; it fails, so the breaker opens for another cooldown.
    clock.advance(2);
    expect(await call()).toBe(200);
    expect(a.requests).toHaveLength(4);
    expect(await call()).toBe(200);
    expect(a.requests).toHaveLength(4);

    // The next probe succeeds: closed, a serves again.
    a.forced = {};
    clock.advance(10_001);
    for (let i = 0; i < 4; i++) expect(await call()).toBe(200);
    expect(a.requests).toHaveLength(8);
    expect(b.requests).toHaveLength(11);
  });

  it('a success in between resets the count: failures must be consecutive', async () => {
    a.reset();
    b.reset();
    for (let round = 0; round < 3; round++) {
      a.forced = { 'x-mock-status': '503' };
      expect(await call()).toBe(200);
      expect(await call()).toBe(200);
      a.forced = {};
      expect(await call()).toBe(200);
    }
    // 2 failures, 1 success, three times: never open, a got every call.
    expect(a.requests).toHaveLength(9);
  });

  it('half-open lets one probe through at a time: calls meanwhile go elsewhere', async () => {
    a.reset();
    b.reset();
    a.forced = { 'x-mock-status': '500' };
    for (let i = 0; i < 3; i++) expect(await call()).toBe(200);
    clock.advance(10_001);
    a.forced = { 'x-mock-hold': '1' };
    const probe = postChat(gw, chat('gpt-4o-mini'));
    await eventually('the probe reached a', () => a.held === 1);
    for (let i = 0; i < 3; i++) expect(await call()).toBe(200);
    expect(a.requests).toHaveLength(4);
    a.release();
    const res = await probe;
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    a.forced = {};
    expect(await call()).toBe(200);
    expect(a.requests).toHaveLength(5);
  });

  it('connection failures count too: after 3 refusals the dead upstream is no longer even tried', async () => {
    b.reset();
    const started = gw.logs.length;
    for (let i = 0; i < 6; i++) expect(await call('gone-first')).toBe(200);
    expect(b.requests).toHaveLength(6);
    const refusals = gw.logs.slice(started).filter((line) => line.includes('"upstream":"gone"') && line.includes('upstream attempt failed'));
    expect(refusals).toHaveLength(3);
  });

  it('every candidate open: 503 upstream_unavailable with the wait, nothing reserved or forwarded', async () => {
    a.reset();
    a.forced = { 'x-mock-status': '502' };
    for (let i = 0; i < 3; i++) expect(await call('only-a')).toBe(502);
    expect(a.requests).toHaveLength(3);
    const watch = watchLimiter(gw);
    clock.advance(4_000);
    const res = await postChat(gw, chat('only-a'));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('6');
    expect(await res.json()).toMatchObject({ error: { code: 'upstream_unavailable', type: 'api_error' } });
    expect(watch.reserved).toEqual([]);
    expect(a.requests).toHaveLength(3);
    clock.advance(6_001);
    a.forced = {};
    expect(await call('only-a')).toBe(200);
  });
});
