/**
 * Who may use the admin API, over real HTTP: only the admin key (no admin key configured = every
 * /admin route is 404), the admin key is no proxy key, the routes are documented with it as their
 * security; and a key holder can never grant itself more (no route for it, admin routes refuse
 * proxy keys, spoofed forwarding headers do not get around the IP allowlist).
 */
import { describe, expect, it } from 'vitest';
import { OTHER_KEY, PROXY_KEY, startGateway } from '../helpers.js';
import { ADMIN_KEY, admin, call, chatRequest, createKey, rateLimit } from '../keys/helpers.js';
import { adminGateways } from '../keys/gateway-fixture.js';

const { start, gateways } = adminGateways();

/** Every admin route, with a body where it takes one. */
const ROUTES: [string, string, unknown?][] = [
  ['GET', '/keys'],
  ['POST', '/keys', { name: 'intruder', requests_per_hour: 1_000_000 }],
  ['GET', '/keys/target'],
  ['PATCH', '/keys/target', { requests_per_hour: null, models: null, disabled: false }],
  ['POST', '/keys/target/rotate'],
  ['POST', '/keys/target/revoke'],
  ['DELETE', '/keys/target'],
  ['GET', '/usage'],
  ['GET', '/usage?key=target&since=7d'],
  ['GET', '/prices'],
  ['PUT', '/prices/gpt-4o-mini', { input: 0, output: 0 }],
  ['DELETE', '/prices/gpt-4o-mini'],
];

describe('who may use the admin API', () => {
  it('only the admin key: wrong, missing, malformed, proxy keys and stored keys are 401 on every route', async () => {
    const gw = await start();
    const target = await createKey(gw, { name: 'target', requests_per_hour: 5, models: ['gpt-4o-mini'] });
    const before = (await admin(gw, 'GET', '/keys/target')).body;

    const refused: (string | null)[] = [
      null,
      'Bearer ',
      'Bearer wrong-admin-key-0123456789abcdef',
      `Bearer ${ADMIN_KEY}x`,
      `Bearer ${ADMIN_KEY.slice(0, -1)}`,
      `Bearer ${ADMIN_KEY.toUpperCase()}`,
      `Bearer ${ADMIN_KEY} ${ADMIN_KEY}`,
      `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}`,
      ADMIN_KEY,
      `Bearer ${PROXY_KEY}`,
      `Bearer ${OTHER_KEY}`,
      `Bearer ${target.key}`,
    ];
    for (const [method, path, body] of ROUTES) {
      for (const auth of refused) {
        const r = await admin(gw, method, path, body, auth);
        expect(r.status, `${method} ${path} with ${auth}`).toBe(401);
        expect(r.headers.get('www-authenticate')).toBe('Bearer');
        expect(r.body).toMatchObject({ error: { code: 'invalid_api_key' } });
        expect(r.text).not.toContain(target.id);
        expect(r.text).not.toContain(ADMIN_KEY);
      }
    }
    // The admin key in another header does not count either.
    const other = await fetch(`${gw.url}/admin/keys`, { headers: { 'x-api-key': ADMIN_KEY, 'api-key': ADMIN_KEY } });
    expect(other.status).toBe(401);

    // Nothing changed.
    expect((await admin(gw, 'GET', '/keys/target')).body).toEqual(before);
    expect((await admin<{ data: unknown[] }>(gw, 'GET', '/keys')).body.data).toHaveLength(1);
    expect((await call(gw, target.key)).status).toBe(200);
    // The admin key with a lower-case scheme works (the scheme is case-insensitive).
    expect((await admin(gw, 'GET', '/keys', undefined, `bearer ${ADMIN_KEY}`)).status).toBe(200);
  });

  it('the admin key is not a proxy key', async () => {
    const gw = await start();
    expect((await call(gw, ADMIN_KEY)).status).toBe(401);
    expect((await rateLimit(gw, ADMIN_KEY)).status).toBe(401);
    expect(gw.mock.requests).toHaveLength(0);
  });

  it('without PROXYGPT_ADMIN_KEY every /admin route is 404, whatever the credentials', async () => {
    const gw = await startGateway({ env: { LOG_LEVEL: 'warn' } });
    gateways.push(gw);
    for (const [method, path, body] of ROUTES) {
      for (const auth of [null, `Bearer ${ADMIN_KEY}`, `Bearer ${PROXY_KEY}`]) {
        const r = await admin(gw, method, path, body, auth);
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.body).toMatchObject({ error: { type: 'invalid_request_error' } });
        expect(r.headers.get('www-authenticate')).toBeNull();
      }
    }
    // Even a body the admin API would reject is not looked at.
    const res = await fetch(`${gw.url}/admin/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    expect(res.status).toBe(404);
    // The proxy still works.
    expect((await call(gw, PROXY_KEY)).status).toBe(200);
  });

  it('the admin routes are in the OpenAPI document, with the admin key as their security', async () => {
    const gw = await start();
    const doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { security?: unknown }>> };
    for (const path of ['/admin/keys', '/admin/keys/{key}', '/admin/keys/{key}/rotate', '/admin/keys/{key}/revoke', '/admin/usage', '/admin/prices', '/admin/prices/{model}']) {
      expect(doc.paths[path], path).toBeDefined();
      for (const operation of Object.values(doc.paths[path]!)) expect(operation.security).toEqual([{ adminKey: [] }]);
    }
  });
});

describe('a key holder can never grant itself more', () => {
  it('PATCH /admin/keys with its own secret is 401 and changes nothing; no other route takes a policy', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'limited', requests_per_hour: 1, models: ['gpt-4o-mini'] });
    const patch = await admin(gw, 'PATCH', `/keys/${k.id}`, { requests_per_hour: null, models: null }, `Bearer ${k.key}`);
    expect(patch.status).toBe(401);
    const rotate = await admin(gw, 'POST', `/keys/${k.id}/rotate`, undefined, `Bearer ${k.key}`);
    expect(rotate.status).toBe(401);
    expect(rotate.text).not.toContain('pgpt-');

    // No proxy route accepts a policy: unknown routes and methods answer 404/405, never 2xx.
    for (const [method, path] of [
      ['POST', '/ratelimit'],
      ['PATCH', '/ratelimit'],
      ['PUT', '/ratelimit'],
      ['POST', '/keys'],
      ['PATCH', '/v1/keys'],
      ['POST', '/v1/admin/keys'],
    ] as const) {
      const r = await call(gw, k.key, { method, path, body: { requests_per_hour: 1_000 } });
      expect(r.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
    }

    expect((await call(gw, k.key)).status).toBe(200);
    expect((await call(gw, k.key)).status).toBe(429);
    expect((await call(gw, k.key, { body: chatRequest({ model: 'gpt-4o' }) })).status).toBe(403);
    expect((await admin(gw, 'GET', `/keys/${k.id}`)).body).toMatchObject({ requests_per_hour: 1, models: ['gpt-4o-mini'] });
  });

  it('spoofed X-Forwarded-For / X-Real-IP / Forwarded do not get around the IP allowlist (PROXYGPT_TRUST_PROXY off)', async () => {
    const gw = await start();
    const office = await createKey(gw, { name: 'office', ips: ['10.0.0.0/8'] });
    const local = await createKey(gw, { name: 'local', ips: ['127.0.0.1'] });
    const spoofs: Record<string, string>[] = [
      { 'x-forwarded-for': '10.1.2.3' },
      { 'x-forwarded-for': '10.1.2.3, 127.0.0.1' },
      { 'x-real-ip': '10.1.2.3' },
      { forwarded: 'for=10.1.2.3' },
      { 'x-forwarded-for': '10.1.2.3', 'x-real-ip': '10.1.2.3', forwarded: 'for=10.1.2.3', 'x-client-ip': '10.1.2.3' },
    ];
    for (const headers of spoofs) {
      const r = await call(gw, office.key, { headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.body).toMatchObject({ error: { code: 'ip_not_allowed' } });
      // And a spoofed outside address does not lock out the real one.
      expect((await call(gw, local.key, { headers })).status).toBe(200);
    }
    expect(gw.mock.requests).toHaveLength(spoofs.length);
  });

  it('with PROXYGPT_TRUST_PROXY on, the forwarded client address is the one checked (the switch matters)', async () => {
    const gw = await start({ PROXYGPT_TRUST_PROXY: 'true' });
    const office = await createKey(gw, { name: 'office', ips: ['10.0.0.0/8'] });
    expect((await call(gw, office.key, { headers: { 'x-forwarded-for': '10.1.2.3' } })).status).toBe(200);
    expect((await call(gw, office.key)).status).toBe(403);
  });
});
