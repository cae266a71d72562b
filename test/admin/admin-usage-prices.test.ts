/**
 * The admin API's reports and prices over real HTTP: usage per key over a time range (requests,
 * tokens, USD, statuses), and price overrides that change what later calls cost.
 */
import { describe, expect, it } from 'vitest';
import { PROXY_KEY } from '../helpers.js';
import { admin, call, chatRequest, createKey, settledUsage, usageRows } from '../keys/helpers.js';
import { adminGateways } from '../keys/gateway-fixture.js';
import { DAY, HOUR, T0 } from './helpers.js';

const { start } = adminGateways();

describe('usage per key over a time range', () => {
  it('counts requests, tokens, USD and statuses per key between since and until', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const a = await createKey(gw, { name: 'usage-a' });
    const b = await createKey(gw, { name: 'usage-b' });

    // At T0: two calls of a (13 tokens each: the mock's 10 + 3).
    expect((await call(gw, a.key)).status).toBe(200);
    expect((await call(gw, a.key, { headers: { 'x-mock-completion-tokens': '100' } })).status).toBe(200);
    await usageRows(gw, a.id, 2);
    // At T0 + 1 h: one call of a, one upstream error, one call of b and one of an environment key.
    now = T0 + HOUR;
    expect((await call(gw, a.key, { headers: { 'x-mock-prompt-tokens': '1000', 'x-mock-completion-tokens': '500' } })).status).toBe(200);
    expect((await call(gw, a.key, { headers: { 'x-mock-status': '500' } })).status).toBe(500);
    expect((await call(gw, b.key)).status).toBe(200);
    expect((await call(gw, PROXY_KEY)).status).toBe(200);
    await usageRows(gw, a.id, 4);
    await usageRows(gw, b.id, 1);
    await usageRows(gw, 'env-key-1', 1);
    now = T0 + 2 * HOUR;

    const aAll = await admin(gw, 'GET', `/usage?key=usage-a&since=${T0 - 1}&until=${T0 + HOUR + 1}`);
    expect(aAll.status).toBe(200);
    expect(aAll.body).toEqual({
      since: new Date(T0 - 1).toISOString(),
      until: new Date(T0 + HOUR + 1).toISOString(),
      key: a.id,
      requests: 4,
      prompt_tokens: 10 + 10 + 1_000,
      completion_tokens: 3 + 100 + 500,
      total_tokens: 1_623,
      // gpt-4o-mini at $0.15 / $0.60 per 1M, each call rounded up: 1.5 + 1.8 → 4, 1.5 + 60 → 62, 150 + 300 = 450 µ$.
      usd: (4 + 62 + 450) / 1e6,
      status_counts: { '200': 3, '500': 1 },
    });
    // The key by id is the same report.
    expect((await admin(gw, 'GET', `/usage?key=${a.id}&since=${T0 - 1}&until=${T0 + HOUR + 1}`)).body).toEqual(aAll.body);

    // Only the second hour (ISO times): since is inclusive, until exclusive.
    const later = await admin(gw, 'GET', `/usage?key=usage-a&since=${new Date(T0 + HOUR).toISOString()}&until=${new Date(T0 + 2 * HOUR).toISOString()}`);
    expect(later.body).toMatchObject({ requests: 2, prompt_tokens: 1_000, completion_tokens: 500, status_counts: { '200': 1, '500': 1 } });
    const first = await admin(gw, 'GET', `/usage?key=usage-a&since=${T0}&until=${T0 + HOUR}`);
    expect(first.body).toMatchObject({ requests: 2, total_tokens: 13 + 110, status_counts: { '200': 2 } });

    // A duration back from the clock's now (T0 + 2 h): the last 90 minutes.
    expect((await admin(gw, 'GET', '/usage?key=usage-a&since=90m')).body).toMatchObject({ requests: 2, since: new Date(T0 + 30 * 60_000).toISOString() });

    // All keys: totals and a breakdown per key (stored keys by id, environment keys as env-key-N).
    const all = await admin<{ requests: number; by_key: Record<string, { requests: number; total_tokens: number }> }>(gw, 'GET', `/usage?since=${T0 - 1}`);
    expect(all.body.requests).toBe(6);
    expect(Object.keys(all.body.by_key).sort()).toEqual([a.id, b.id, 'env-key-1'].sort());
    expect(all.body.by_key[b.id]).toMatchObject({ requests: 1, total_tokens: 13 });
    expect(all.body.by_key['env-key-1']).toMatchObject({ requests: 1 });
    // The default range is the last 30 days.
    expect((await admin(gw, 'GET', '/usage')).body).toMatchObject({ requests: 6, since: new Date(T0 + 2 * HOUR - 30 * DAY).toISOString() });

    // A range with nothing in it, and a key that never called.
    expect((await admin(gw, 'GET', `/usage?key=usage-b&since=${T0}&until=${T0 + 1}`)).body).toMatchObject({ requests: 0, total_tokens: 0, usd: 0, status_counts: {} });
    // Invalid times are 400 with the parameter named.
    for (const param of ['since', 'until']) {
      const r = await admin(gw, 'GET', `/usage?${param}=last-tuesday`);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: { param } });
    }
  });
});

describe('price overrides', () => {
  it('PUT /admin/prices/:model changes the USD settled for later calls; DELETE restores the bundled price', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'spender', usd_per_day: 100 });
    const usage = { 'x-mock-prompt-tokens': '1000', 'x-mock-completion-tokens': '1000' };
    let spent = 0;
    const spend = async (micro: number, model = 'gpt-4o-mini') => {
      const r = await call(gw, k.key, { body: chatRequest({ model, max_tokens: 1_000 }), headers: usage });
      expect(r.status).toBe(200);
      spent += micro;
      await settledUsage(gw, k.key, 'usd_per_day', spent / 1e6);
    };

    await spend(1_000 * 0.15 + 1_000 * 0.6); // bundled: 750 micro-dollars

    const put = await admin(gw, 'PUT', '/prices/gpt-4o-mini', { input: 1, output: 2 });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ model: 'gpt-4o-mini', input: 1, cachedInput: 1, output: 2 });
    await spend(1_000 * 1 + 1_000 * 2);
    // Dated snapshots of the model follow the override too.
    await spend(3_000, 'gpt-4o-mini-2024-07-18');

    // A snapshot-specific override beats the family's; a new model can be priced.
    expect((await admin(gw, 'PUT', '/prices/gpt-4o-mini-2024-07-18', { input: 4, cached_input: 2, output: 8 })).status).toBe(200);
    await spend(12_000, 'gpt-4o-mini-2024-07-18');
    expect((await admin(gw, 'PUT', '/prices/house-model', { input: 0.5, output: 0.5 })).status).toBe(200);
    await spend(1_000, 'house-model');

    const prices = await admin<{ bundled: Record<string, unknown>; overrides: Record<string, unknown> }>(gw, 'GET', '/prices');
    expect(prices.body.overrides).toEqual({
      'gpt-4o-mini': { input: 1, cachedInput: 1, output: 2 },
      'gpt-4o-mini-2024-07-18': { input: 4, cachedInput: 2, output: 8 },
      'house-model': { input: 0.5, cachedInput: 0.5, output: 0.5 },
    });
    expect(prices.body.bundled['gpt-4o-mini']).toEqual({ input: 0.15, cachedInput: 0.075, output: 0.6 });

    expect((await admin(gw, 'DELETE', '/prices/gpt-4o-mini')).body).toEqual({ model: 'gpt-4o-mini', deleted: true });
    await spend(750);

    // The usage report prices each call as it was settled.
    const rows = await usageRows(gw, k.id, 6);
    expect(rows.map((r) => r.cost_micro_usd)).toEqual([750, 3_000, 3_000, 12_000, 1_000, 750]);

    for (const [body, param] of [
      [{ input: -1, output: 1 }, 'input'],
      [{ input: 1 }, 'output'],
      [{ input: 1, output: 'free' }, 'output'],
      [{ input: 1, output: 1, cached_input: -1 }, 'cached_input'],
    ] as [unknown, string][]) {
      const r = await admin(gw, 'PUT', '/prices/gpt-4o', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ error: { param } });
    }
    expect((await admin<{ overrides: Record<string, unknown> }>(gw, 'GET', '/prices')).body.overrides['gpt-4o']).toBeUndefined();
  });
});
