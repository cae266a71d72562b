/**
 * The caller's limits stay exact whatever the number of attempts: one reservation and one settle
 * per call (watch-limiter.ts), the request windows admit exactly their limit while every admitted
 * call fails over, tokens settle to what the serving upstream reported, spend to its own price
 * (a free local model costs 0), and the reservation covers the dearest upstream the call may go to.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { watchLimiter } from '../call/watch-limiter.js';
import { ADMIN_KEY, call, createKey, eventually } from '../keys/helpers.js';
import { BUNDLED_PRICES } from '../../src/metering/prices.js';
import type { SeriesCost } from '../../src/contract.js';
import { openaiEntry, startRoutedGateway, type RoutedGateway } from './helpers.js';

let a: MockOpenAI;
let b: MockOpenAI;
let local: MockOpenAI;
let gw: RoutedGateway;

beforeAll(async () => {
  [a, b, local] = await Promise.all([startMockOpenAI(), startMockOpenAI(), startMockOpenAI()]);
  gw = await startRoutedGateway({
    file: {
      breaker: { failures: 0 },
      upstreams: [
        openaiEntry('a', a, { weight: 1000, models: ['gpt-4o*'] }),
        // b serves the same models for free (a team's own deployment, say).
        openaiEntry('b', b, { weight: 1, api_key: '${KEY_B}', models: ['gpt-4o*'], prices: { '*': { input: 0, output: 0 } } }),
        { name: 'local', kind: 'openai-compatible', base_url: local.url, models: ['llama-*'], prices: { 'llama-*': { input: 0, output: 0 } } },
      ],
    },
    env: { PROXYGPT_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'warn' },
  });
});
afterAll(async () => {
  await gw.close();
  await Promise.all([a.close(), b.close(), local.close()]);
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const m of [a, b, local]) {
    m.reset();
    m.forced = {};
  }
});

describe('exact limits across retries', () => {
  it('one reservation and one settle per call; tokens as the serving upstream reported, spend at its price', async () => {
    const key = await createKey(gw, { name: 'metered', tokens_per_day: 100_000, usd_per_day: 5 });
    a.forced = { 'x-mock-status': '503' };
    const watch = watchLimiter(gw);
    const res = await call(gw, key.key, { body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 50 }, headers: { 'x-mock-prompt-tokens': '40', 'x-mock-completion-tokens': '7' } });
    expect(res.status).toBe(200);
    await eventually('the record', () => watch.records.length, (n) => n === 1);
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
    expect(watch.reserved).toHaveLength(1);
    expect(watch.committed).toEqual(watch.reserved);
    expect(watch.released).toEqual([]);
    const actual = watch.actuals.get(watch.reserved[0]!)!;
    expect(actual[`key:${key.id}:tokens`]).toBe(47);
    expect(actual[`key:${key.id}:usd`]).toBe(0); // b's own price: free
    expect(watch.records[0]).toMatchObject({ upstream: 'b', promptTokens: 40, completionTokens: 7, costMicroUsd: 0, status: 200 });

    // Served by a (no price of its own): the gateway's table.
    watch.reset();
    a.forced = {};
    const direct = await call(gw, key.key, { body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 50 }, headers: { 'x-mock-prompt-tokens': '40', 'x-mock-completion-tokens': '7' } });
    expect(direct.status).toBe(200);
    await eventually('the record', () => watch.records.length, (n) => n === 1);
    const price = BUNDLED_PRICES['gpt-4o-mini']!;
    expect(watch.records[0]).toMatchObject({ upstream: 'a', costMicroUsd: Math.ceil(40 * price.input + 7 * price.output) });
  });

  it('a request window admits exactly its limit while every admitted call fails over', async () => {
    const key = await createKey(gw, { name: 'five-an-hour', requests_per_hour: 5 });
    a.forced = { 'x-mock-status': '500' };
    const watch = watchLimiter(gw);
    const results = await Promise.all(Array.from({ length: 12 }, () => call(gw, key.key)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(7);
    for (const r of results.filter((x) => x.status === 429)) expect(r.body).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    // Ten attempts upstream for five calls: each admitted call tried a, then b.
    expect([a.requests.length, b.requests.length]).toEqual([5, 5]);
    // Every call is recorded (the refused ones too, as 429s); the five admitted once each, as b's.
    await eventually('every record', () => watch.records.length, (n) => n === 12);
    expect(watch.records.filter((r) => r.status === 200).map((r) => r.upstream)).toEqual(['b', 'b', 'b', 'b', 'b']);
    expect(watch.records.filter((r) => r.status === 429).map((r) => r.upstream ?? null)).toEqual(Array(7).fill(null));
    // Counted at admission (requests only, every admitted call counts): five reservations, nothing held to commit.
    expect(watch.reserved).toHaveLength(5);
    expect(watch.committed).toEqual([]);
    const status = await fetch(`${gw.url}/ratelimit`, { headers: { authorization: `Bearer ${key.key}` } });
    expect(((await status.json()) as { key: { limits: Record<string, { used: number }> } }).key.limits.requests_per_hour!.used).toBe(5);
  });

  it('the spend reserved is the dearest candidate’s; a model only a free upstream serves reserves nothing', async () => {
    // Default completion budget 1024 tokens: at gpt-4o-mini's table price that alone is > $0.0006.
    const key = await createKey(gw, { name: 'tiny-budget', usd_per_day: 0.0006 });
    const costs: Record<string, SeriesCost>[] = [];
    const reserve = gw.app.limiter.reserve.bind(gw.app.limiter);
    vi.spyOn(gw.app.limiter, 'reserve').mockImplementation(async (rules, c) => {
      costs.push({ ...c });
      return reserve(rules, c);
    });
    const dear = await call(gw, key.key);
    expect(dear.status).toBe(429);
    expect(dear.body).toMatchObject({ error: { code: 'rate_limit_exceeded', type: 'usd' } });
    expect(costs[0]![`key:${key.id}:usd`]!.amount).toBeGreaterThan(600);
    expect(a.requests.length + b.requests.length).toBe(0);

    const free = await call(gw, key.key, { body: { model: 'llama-3', messages: [{ role: 'user', content: 'hi' }] } });
    expect(free.status).toBe(200);
    expect(costs[1]![`key:${key.id}:usd`]!.amount).toBe(0);
    expect(local.requests).toHaveLength(1);
  });
});
