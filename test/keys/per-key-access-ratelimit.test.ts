/**
 * Per-key access through the real HTTP gateway: endpoint and model allowlists (a key's own and the
 * gateway's), the IP allowlist (IPv4 and IPv6), and /ratelimit showing the caller's own key and
 * nothing else.
 */
import { describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { loadConfig } from '../../src/config.js';
import { createApp } from '../../src/app.js';
import { startMockOpenAI } from '../fixtures/mock-openai.js';
import { PROXY_KEY, tempDir, UPSTREAM_KEY } from '../helpers.js';
import { ADMIN_KEY, admin, call, chatRequest, createKey, rateLimit, settledUsage } from './helpers.js';
import { adminGateways } from './gateway-fixture.js';
import { T0 } from './per-key-helpers.js';

const { start, gateways } = adminGateways();

describe('endpoint and model allowlists', () => {
  const gatewayLists = {
    PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models',
    PROXYGPT_ALLOWED_MODELS: 'gpt-4o*, text-embedding-3-small',
  };

  it('a key cannot use endpoints or models outside its own lists (403), nor outside the gateway’s', async () => {
    const gw = await start(gatewayLists);
    const k = await createKey(gw, { name: 'narrow', endpoints: ['POST /v1/chat/completions'], models: ['gpt-4o-mini'] });
    const wide = await createKey(gw, { name: 'wide', models: ['*'] });

    expect((await call(gw, k.key)).status).toBe(200);
    const model = await call(gw, k.key, { body: chatRequest({ model: 'gpt-4o' }) });
    expect(model.status).toBe(403);
    expect(model.body).toMatchObject({ error: { code: 'model_not_allowed', type: 'permission_error' } });
    expect((model.body as { error: { message: string } }).error.message).toContain('this key');
    const embeddings = await call(gw, k.key, { path: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'x' } });
    expect(embeddings.status).toBe(403);
    expect(embeddings.body).toMatchObject({ error: { code: 'endpoint_not_allowed' } });
    const models = await call(gw, k.key, { path: '/v1/models', method: 'GET', body: null });
    expect(models.status).toBe(403);
    expect(models.body).toMatchObject({ error: { code: 'endpoint_not_allowed' } });

    // A key allowing every model is still held to the gateway's list.
    expect((await call(gw, wide.key, { body: chatRequest({ model: 'gpt-4o' }) })).status).toBe(200);
    const outside = await call(gw, wide.key, { body: chatRequest({ model: 'gpt-3.5-turbo' }) });
    expect(outside.status).toBe(403);
    expect((outside.body as { error: { message: string } }).error.message).toContain('this gateway');
    expect((await call(gw, wide.key, { path: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'x' } })).status).toBe(200);
    const unlisted = await call(gw, wide.key, { path: '/v1/completions', body: { model: 'gpt-4o', prompt: 'x' } });
    expect(unlisted.status).toBe(403);

    // Only the admitted calls reached the upstream.
    expect(gw.mock.requests.map((r) => r.url)).toEqual(['/v1/chat/completions', '/v1/chat/completions', '/v1/embeddings']);
  });

  it('creating or updating a key with endpoints or models outside the gateway’s lists is a 400', async () => {
    const gw = await start(gatewayLists);
    const cases: [Record<string, unknown>, string][] = [
      [{ endpoints: ['POST /v1/completions'] }, 'endpoints'],
      [{ endpoints: ['POST /v1/*'] }, 'endpoints'],
      [{ endpoints: ['GET /v1/chat/completions'] }, 'endpoints'],
      [{ endpoints: ['not an endpoint'] }, 'endpoints'],
      [{ models: ['gpt-3.5-turbo'] }, 'models'],
      [{ models: ['gpt-4o-mini', 'o1'] }, 'models'],
      [{ ips: ['10.0.0.0/33'] }, 'ips'],
      [{ ips: ['localhost'] }, 'ips'],
      [{ ips: ['10.0.0.0/8/8'] }, 'ips'],
    ];
    for (const [fields, param] of cases) {
      const r = await admin(gw, 'POST', '/keys', { name: 'outside', ...fields });
      expect(r.status, JSON.stringify(fields)).toBe(400);
      expect(r.body).toMatchObject({ error: { param, type: 'invalid_request_error' } });
    }
    expect((await admin<{ data: unknown[] }>(gw, 'GET', '/keys')).body.data).toHaveLength(0);

    const k = await createKey(gw, { name: 'inside', endpoints: ['POST /v1/embeddings', 'GET /v1/models'], models: ['gpt-4o*'] });
    const update = await admin(gw, 'PATCH', `/keys/${k.id}`, { models: ['gpt-4'] });
    expect(update.status).toBe(400);
    expect(update.body).toMatchObject({ error: { param: 'models' } });
    expect((await admin(gw, 'GET', `/keys/${k.id}`)).body).toMatchObject({ models: ['gpt-4o*'], endpoints: ['POST /v1/embeddings', 'GET /v1/models'] });
  });
});

describe('IP allowlist', () => {
  it('127.0.0.1/32 admits a loopback client; 10.0.0.0/8 refuses it with 403 ip_not_allowed', async () => {
    const gw = await start();
    const local = await createKey(gw, { name: 'local', ips: ['127.0.0.1/32'] });
    const office = await createKey(gw, { name: 'office', ips: ['10.0.0.0/8', '192.168.0.0/16'] });
    const many = await createKey(gw, { name: 'many', ips: ['10.0.0.0/8', '127.0.0.0/8'] });

    expect((await call(gw, local.key)).status).toBe(200);
    expect((await call(gw, many.key)).status).toBe(200);
    const refused = await call(gw, office.key);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { code: 'ip_not_allowed', type: 'permission_error' } });
    expect((refused.body as { error: { message: string } }).error.message).toContain('127.0.0.1');
    // Streams and the legacy route are refused the same way, before anything is forwarded.
    expect((await call(gw, office.key, { body: chatRequest({ stream: true }) })).status).toBe(403);
    const legacy = await call(gw, office.key, { path: '/api/openai/completions/gpt3', body: '[{"role":"user","content":"x"}]' });
    expect(legacy.status).toBe(403);
    expect(gw.mock.requests).toHaveLength(2);

    // Clearing the list lets the key in from anywhere, on the next request.
    expect((await admin(gw, 'PATCH', '/keys/office', { ips: null })).status).toBe(200);
    expect((await call(gw, office.key)).status).toBe(200);
  });

  // A key restricted to other addresses cannot read its id, name, expiry, limits or usage over
  // /ratelimit either: 403 ip_not_allowed, as on every other route that takes a proxy key.
  it('the IP allowlist applies to /ratelimit too', async () => {
    const gw = await start();
    const office = await createKey(gw, { name: 'office', ips: ['10.0.0.0/8'], requests_per_hour: 5 });
    const local = await createKey(gw, { name: 'local', ips: ['127.0.0.1/32'], requests_per_hour: 5 });
    const r = await rateLimit(gw, office.key);
    expect(r.status, r.text).toBe(403);
    expect(r.body).toMatchObject({ error: { code: 'ip_not_allowed', type: 'permission_error' } });
    expect(r.text).not.toContain(office.id);
    expect(r.text).not.toContain('requests_per_hour');
    // The same route answers a key allowed from here.
    const allowed = await rateLimit(gw, local.key);
    expect(allowed.status, allowed.text).toBe(200);
    expect(allowed.body.key).toMatchObject({ id: local.id, name: 'local' });
  });

  it('IPv6: ::1 and ::1/128 admit an IPv6 loopback client; 127.0.0.1/32 and fe80::/10 do not', async () => {
    const mock = await startMockOpenAI();
    const dir = tempDir();
    const { config } = loadConfig({
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: mock.url,
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'),
      LOG_LEVEL: 'warn',
    });
    const app = await createApp(config);
    gateways.push({
      async close() {
        await app.close();
        await mock.close();
        rmSync(dir, { recursive: true, force: true });
      },
    });
    await app.server.listen({ port: 0, host: '::1' });
    const gw = { url: `http://[::1]:${(app.server.server.address() as AddressInfo).port}` };

    const expectations: [string[], number][] = [
      [['::1'], 200],
      [['::1/128'], 200],
      [['0:0:0:0:0:0:0:1'], 200],
      [['::/0'], 200],
      [['10.0.0.0/8', '::1'], 200],
      [['127.0.0.1/32'], 403],
      [['fe80::/10'], 403],
      [['::2'], 403],
    ];
    for (const [i, [ips, status]] of expectations.entries()) {
      const k = await createKey(gw, { name: `v6-${i}`, ips });
      const r = await call(gw, k.key);
      expect(r.status, `${ips.join(',')}: ${r.text}`).toBe(status);
      if (status === 403) expect(r.body).toMatchObject({ error: { code: 'ip_not_allowed' } });
    }
  });
});

describe('/ratelimit per key', () => {
  it('shows the caller’s own key, its limits and usage, the global ones, and nothing about other keys', async () => {
    let now = T0;
    const gw = await start({ USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '100' }, () => now);
    const alice = await createKey(gw, {
      name: 'alice-secretive',
      requests_per_hour: 10,
      tokens_per_day: 10_000,
      usd_per_month: 2,
      expires_at: '2030-01-01T00:00:00Z',
    });
    const bob = await createKey(gw, { name: 'bob-the-other', requests_per_day: 77, tokens_per_hour: 4_321 });
    for (let i = 0; i < 3; i++) expect((await call(gw, bob.key, { body: chatRequest({ max_tokens: 10 }) })).status).toBe(200);
    expect((await call(gw, alice.key, { body: chatRequest({ max_tokens: 10 }) })).status).toBe(200);
    await settledUsage(gw, alice.key, 'tokens_per_day', 13);

    now = T0 + 60_000;
    const r = await rateLimit(gw, alice.key);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ hourly_rate_limit: 100, hourly_api_usage: 4, hourly_remaining: 96 });
    expect(r.body.key).toEqual({
      id: alice.id,
      name: 'alice-secretive',
      expires_at: '2030-01-01T00:00:00.000Z',
      limits: {
        requests_per_hour: { limit: 10, used: 1, remaining: 9, reset_seconds: 3540 },
        tokens_per_day: { limit: 10_000, used: 13, remaining: 9_987, reset_seconds: 86_340 },
        // 10 × $0.15 + 3 × $0.60 per 1M = 3.3 µ$, rounded up to 4.
        usd_per_month: { limit: 2, used: 4 / 1e6, remaining: 2 - 4 / 1e6, reset_seconds: expect.any(Number) },
      },
    });
    for (const leak of [bob.id, 'bob-the-other', '4321', '77', bob.key, ADMIN_KEY]) expect(r.text).not.toContain(leak);

    // An environment key sees the global limits only.
    const env = await rateLimit(gw, PROXY_KEY);
    expect(env.body.key).toBeUndefined();
    expect(env.text).not.toContain('alice');
    // Bob sees his own.
    expect((await rateLimit(gw, bob.key)).body.key).toMatchObject({ id: bob.id, limits: { requests_per_day: { used: 3 } } });
    // No key, no answer.
    expect((await fetch(`${gw.url}/ratelimit`)).status).toBe(401);
  });

  it('a stored key with no limits of its own and no global limit gets the original answer plus its key', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'free' });
    const r = await rateLimit(gw, k.key);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ key: { id: k.id, name: 'free', expires_at: null, limits: {} }, error: 'Rate limit is not enabled.' });
  });
});
