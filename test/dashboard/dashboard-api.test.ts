/**
 * The dashboard's JSON API over real HTTP, on real SQLite, with data from real proxied calls:
 * who may sign in (admin key, proxy keys through the usual authenticator, nothing without a key),
 * what each sees (a proxy key never any other key's data, in any endpoint or range), the admin-only
 * routes, a disable that takes effect on the key's next call, hostile strings returned as data
 * verbatim, range validation, the sums and series from the rollups, the security headers, /docs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_KEY, OTHER_KEY, type TestGateway } from '../helpers.js';
import { ADMIN_KEY, call, createKey, startAdminGateway } from '../keys/helpers.js';
import { dashboardFixture, HOSTILE_MODEL, HOSTILE_NOTES, type DashboardFixture } from './fixture.js';
import { DASHBOARD_CSP } from '../../src/routes/dashboard.js';

interface Answer<T = any> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

async function get<T = any>(gw: { url: string }, path: string, key: string | null, method = 'GET'): Promise<Answer<T>> {
  const res = await fetch(`${gw.url}/dashboard${path}`, { method, headers: key === null ? {} : { authorization: `Bearer ${key}` } });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.status, headers: res.headers, text, body: body as T };
}

const RANGES = { '1h': 60, '24h': 144, '7d': 168, '30d': 120 } as const;
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

let fx: DashboardFixture;
beforeAll(async () => {
  fx = await dashboardFixture();
}, 60_000);
afterAll(async () => {
  await fx?.gw.close();
});

describe('signing in', () => {
  it('the admin key is the admin; a stored key and an environment key are themselves', async () => {
    expect((await get(fx.gw, '/api/session', ADMIN_KEY)).body).toEqual({ role: 'admin', key: null });
    expect((await get(fx.gw, '/api/session', fx.alice.key)).body).toEqual({ role: 'key', key: { id: fx.alice.id, name: 'alice', source: 'stored' } });
    expect((await get(fx.gw, '/api/session', OTHER_KEY)).body).toEqual({ role: 'key', key: { id: 'env-key-2', name: 'env-key-2', source: 'env' } });
  });

  it('no key, a wrong key, a repeated Authorization: 401 in the error shape with WWW-Authenticate', async () => {
    for (const path of ['/api/session', '/api/overview', '/api/keys']) {
      for (const key of [null, 'pgpt-wrong-0000000000000000', `${ADMIN_KEY}x`]) {
        const res = await get(fx.gw, path, key);
        expect(res.status, `${path} ${key}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
        expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
      }
    }
    const twice = await fetch(`${fx.gw.url}/dashboard/api/session`, { headers: [['authorization', `Bearer ${ADMIN_KEY}`], ['authorization', `Bearer ${ADMIN_KEY}`]] });
    expect(twice.status).toBe(401);
  });

  it('without PROXYGPT_ADMIN_KEY no admin exists, key holders still sign in', async () => {
    const gw = await startAdminGateway({ PROXYGPT_ADMIN_KEY: '' });
    try {
      expect((await get(gw, '/api/session', ADMIN_KEY)).status).toBe(401);
      expect((await get(gw, '/api/keys', ADMIN_KEY)).status).toBe(401);
      expect((await get(gw, '/api/session', PROXY_KEY)).body).toEqual({ role: 'key', key: { id: 'env-key-1', name: 'env-key-1', source: 'env' } });
    } finally {
      await gw.close();
    }
  });
});

describe('what a key holder sees: their own key only', () => {
  it('no answer of any endpoint or range names another key, its notes or its models', async () => {
    const others = [fx.bob.id, fx.carol.id, 'env-key-1', 'env-key-2', '"bob"', '"carol"', 'team bob', HOSTILE_MODEL.slice(0, 20), JSON.stringify(HOSTILE_MODEL).slice(1, 20)];
    const answers = [await get(fx.gw, '/api/session', fx.alice.key), await get(fx.gw, '/api/keys', fx.alice.key)];
    for (const range of Object.keys(RANGES)) answers.push(await get(fx.gw, `/api/overview?range=${range}`, fx.alice.key));
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      for (const other of others) expect(answer.text).not.toContain(other);
    }
  });

  it('their overview sums only their calls; their keys list is their own row, without the admin notes', async () => {
    const overview = (await get(fx.gw, '/api/overview?range=24h', fx.alice.key)).body;
    expect(overview.total).toMatchObject({ requests: 6, rate_limited: 0, upstream_errors: 1 });
    expect(overview.by_key.map((k: { id: string }) => k.id)).toEqual([fx.alice.id]);
    expect(overview.by_model.map((m: { model: string }) => m.model)).toEqual(['gpt-4o-mini']);
    const keys = (await get(fx.gw, '/api/keys', fx.alice.key)).body;
    expect(keys.data).toHaveLength(1);
    expect(keys.data[0]).toMatchObject({ id: fx.alice.id, name: 'alice', source: 'stored', status: 'active' });
    expect(keys.data[0]).not.toHaveProperty('notes');
    expect(keys.data[0].limits).toEqual([
      { name: 'requests_per_hour', unit: 'requests', limit: 100, used: 6, remaining: 94, reset_seconds: expect.any(Number) },
      { name: 'tokens_per_day', unit: 'tokens', limit: 100_000, used: expect.any(Number), remaining: expect.any(Number), reset_seconds: expect.any(Number) },
    ]);
    expect(keys.data[0].last_used).not.toBeNull();
  });

  it('an environment key sees its own row and no stored key', async () => {
    const keys = await get(fx.gw, '/api/keys', PROXY_KEY);
    expect(keys.body.data.map((r: { id: string }) => r.id)).toEqual(['env-key-1']);
    for (const stored of [fx.alice, fx.bob, fx.carol]) expect(keys.text).not.toContain(stored.id);
    const overview = await get(fx.gw, '/api/overview', PROXY_KEY);
    expect(overview.body.total.requests).toBe(0);
    expect(overview.body.by_key).toEqual([]);
  });

  it('the admin-only routes refuse a proxy key (403) and change nothing', async () => {
    for (const action of ['disable', 'enable']) {
      const res = await get(fx.gw, `/api/keys/${fx.bob.id}/${action}`, fx.alice.key, 'POST');
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ type: 'permission_error', code: 'admin_only' });
      expect((await get(fx.gw, `/api/keys/${fx.bob.id}/${action}`, null, 'POST')).status).toBe(401);
    }
    // Not even its own key.
    expect((await get(fx.gw, `/api/keys/${fx.alice.id}/disable`, fx.alice.key, 'POST')).status).toBe(403);
    const rows = (await get(fx.gw, '/api/keys', ADMIN_KEY)).body.data as { id: string; disabled: boolean }[];
    expect(rows.filter((r) => r.disabled)).toEqual([]);
  });
});

describe('the admin view', () => {
  it('every key, one row each, with status, limits as the limiter sees them, expiry and last use', async () => {
    const keys = (await get(fx.gw, '/api/keys', ADMIN_KEY)).body;
    expect(keys.data.map((r: { name: string }) => r.name)).toEqual(['alice', 'bob', 'carol', 'env-key-1', 'env-key-2']);
    const carol = keys.data.find((r: { id: string }) => r.id === fx.carol.id);
    expect(carol).toMatchObject({ status: 'active', disabled: false, expires_at: null, notes: '', source: 'stored', prefix: fx.carol.prefix });
    expect(carol.limits).toEqual([{ name: 'requests_per_hour', unit: 'requests', limit: 2, used: 2, remaining: 0, reset_seconds: expect.any(Number) }]);
    expect(carol.limits[0].reset_seconds).toBeGreaterThan(3500);
    const bob = keys.data.find((r: { id: string }) => r.id === fx.bob.id);
    expect(bob.limits).toEqual([{ name: 'usd_per_day', unit: 'usd', limit: 5, used: expect.any(Number), remaining: expect.any(Number), reset_seconds: expect.any(Number) }]);
    expect(bob.limits[0].used).toBeGreaterThan(0);
    expect(Date.parse(bob.last_used)).toBeGreaterThan(Date.now() - 60_000);
    expect(keys.data.find((r: { id: string }) => r.id === 'env-key-1')).toMatchObject({ source: 'env', prefix: null, last_used: null, limits: [] });
    expect(keys.gateway_limits).toEqual([]);
  });

  it('hostile notes and model names come back verbatim, as JSON data', async () => {
    const keys = await get(fx.gw, '/api/keys', ADMIN_KEY);
    expect(keys.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(keys.body.data.find((r: { id: string }) => r.id === fx.alice.id).notes).toBe(HOSTILE_NOTES);
    const overview = (await get(fx.gw, '/api/overview', ADMIN_KEY)).body;
    expect(overview.by_model.map((m: { model: string }) => m.model).sort()).toEqual(['gpt-4o-mini', HOSTILE_MODEL].sort());
    expect(overview.by_model.find((m: { model: string }) => m.model === HOSTILE_MODEL)).toMatchObject({ requests: 2, prompt_tokens: 2000, completion_tokens: 1000 });
  });

  it('the overview: totals, per key and per model, and series per step that add up to them, in every range', async () => {
    for (const [range, steps] of Object.entries(RANGES)) {
      const o = (await get(fx.gw, `/api/overview?range=${range}`, ADMIN_KEY)).body;
      expect(o.range).toBe(range);
      expect(o.timestamps).toHaveLength(steps);
      expect(o.timestamps[1] - o.timestamps[0]).toBe(o.step_seconds);
      expect(Date.parse(o.until) - Date.parse(o.since)).toBe(steps * o.step_seconds * 1000);
      // alice 6 (one answered 500), bob 2, carol 4 (2 refused by her limit); the mock's 10 prompt
      // tokens for each call answered 200 (alice 5, carol 2), bob's 1000 each.
      expect(o.total).toMatchObject({ requests: 12, rate_limited: 2, upstream_errors: 1, prompt_tokens: (5 + 2) * 10 + 2 * 1000 });
      expect(o.total.total_tokens).toBe(o.total.prompt_tokens + o.total.completion_tokens);
      expect(o.by_key.map((k: { name: string; requests: number }) => [k.name, k.requests])).toEqual([['alice', 6], ['carol', 4], ['bob', 2]]);
      expect(o.by_key.find((k: { name: string }) => k.name === 'carol').rate_limited).toBe(2);
      for (const field of ['requests', 'tokens', 'rate_limited', 'upstream_errors'] as const) {
        const total = field === 'tokens' ? o.total.total_tokens : o.total[field];
        expect(sum(o.total.series[field]), `${range} ${field}`).toBe(total);
      }
      expect(sum(o.by_key.map((k: { series: { requests: number[] } }) => sum(k.series.requests)))).toBe(12);
      expect(sum(o.total.series.usd)).toBeCloseTo(o.total.usd, 6);
      expect(o.total.latency_ms.p50).toBeGreaterThan(0);
      // The slow call (120 ms at the mock) is the p95 or past it: in the 250 ms bucket or above.
      expect(o.total.latency_ms.p99).toBeGreaterThanOrEqual(250);
    }
  });

  it('a bad range is a 400 naming the parameter', async () => {
    for (const range of ['2h', '1H', '24h ', 'all', '7', '-1d', '1h&range=7d']) {
      const res = await fetch(`${fx.gw.url}/dashboard/api/overview?range=${range === '1h&range=7d' ? range : encodeURIComponent(range)}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      expect(res.status, range).toBe(400);
      expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_request', param: 'range' } });
    }
    expect((await get(fx.gw, '/api/overview', ADMIN_KEY)).body.range).toBe('24h');
  });
});

describe('security headers', () => {
  it('the page, its assets, the API and its errors: strict CSP, nosniff, no referrer, never framed; the API not stored', async () => {
    for (const [path, key] of [['', null], ['/', null], ['/assets/app.js', null], ['/assets/uPlot.iife.min.js', null], ['/api/session', ADMIN_KEY], ['/api/session', null], ['/api/overview?range=x', ADMIN_KEY]] as const) {
      const res = await get(fx.gw, path, key);
      expect(res.headers.get('content-security-policy'), path).toBe(DASHBOARD_CSP);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      if (path.startsWith('/api')) expect(res.headers.get('cache-control')).toBe('no-store');
    }
    expect(DASHBOARD_CSP).toContain("frame-ancestors 'none'");
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toContain('unsafe');
  });

  it('the page has no inline script or style, and loads only its own files', async () => {
    const page = await get(fx.gw, '', null);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.text).not.toMatch(/\sstyle=|<style/);
    for (const [, src] of page.text.matchAll(/(?:src|href)="([^"]+)"/g)) {
      expect(src).toMatch(/^\/dashboard(\/assets\/[\w.]+)?$/);
      expect((await get(fx.gw, src!.slice('/dashboard'.length), null)).status, src).toBe(200);
    }
    expect([400, 404]).toContain((await get(fx.gw, '/assets/..%2fapp.js', null)).status);
    expect((await get(fx.gw, '/assets/../assets/app.js', null)).status).not.toBe(500);
    expect((await get(fx.gw, '/assets/nope.js', null)).status).toBe(404);
  });

  it('/docs documents the dashboard API; /openapi.json lists its routes', async () => {
    const spec = (await (await fetch(`${fx.gw.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { tags?: string[] }>> };
    for (const path of ['/dashboard/api/session', '/dashboard/api/overview', '/dashboard/api/keys']) expect(spec.paths[path]?.get?.tags).toEqual(['Dashboard']);
    for (const action of ['disable', 'enable']) expect(spec.paths[`/dashboard/api/keys/{id}/${action}`]?.post?.tags).toEqual(['Dashboard']);
    expect(spec.paths['/dashboard']).toBeUndefined();
  });
});

describe('disabling from the dashboard', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startAdminGateway();
  });
  afterAll(async () => {
    await gw.close();
  });

  it('takes effect on the key’s next proxied call, and enabling lets it in again', async () => {
    const dave = await createKey(gw, { name: 'dave' });
    expect((await call(gw, dave.key)).status).toBe(200);
    const disabled = await get(gw, `/api/keys/${dave.id}/disable`, ADMIN_KEY, 'POST');
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ id: dave.id, status: 'disabled', disabled: true });
    const refused = await call(gw, dave.key);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ error: { code: 'invalid_api_key', message: 'This proxy key has been disabled by the admin.' } });
    // The dashboard refuses it as every other route does.
    const signIn = await get(gw, '/api/session', dave.key);
    expect(signIn.status).toBe(401);
    expect(signIn.body.error.message).toBe((refused.body as { error: { message: string } }).error.message);
    const enabled = await get(gw, `/api/keys/${dave.id}/enable`, ADMIN_KEY, 'POST');
    expect(enabled.body).toMatchObject({ id: dave.id, status: 'active', disabled: false });
    expect((await call(gw, dave.key)).status).toBe(200);
  });

  it('an unknown key is a 404; an environment key cannot be disabled', async () => {
    expect((await get(gw, '/api/keys/key_nope00000000/disable', ADMIN_KEY, 'POST')).status).toBe(404);
    expect((await get(gw, '/api/keys/env-key-1/disable', ADMIN_KEY, 'POST')).status).toBe(404);
    expect((await call(gw, PROXY_KEY)).status).toBe(200);
  });

  it('an expired key cannot sign in', async () => {
    const old = await createKey(gw, { name: 'old', expires_at: Date.now() + 1 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const res = await get(gw, '/api/session', old.key);
    expect(res.status).toBe(401);
    expect(res.body.error.message).toBe('This proxy key has expired.');
  });
});
