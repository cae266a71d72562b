/**
 * The admin API over real HTTP: who gets in (only the admin key; no admin key configured = every
 * /admin route is 404), that a key holder can never grant itself more (no route for it, admin
 * routes refuse proxy keys, spoofed forwarding headers do not get around the IP allowlist), key
 * CRUD (the secret shown once, stored only as a SHA-256 hash), usage reports over a time range, and
 * price overrides that change what later calls cost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { OTHER_KEY, PROXY_KEY, type TestGateway } from '../helpers.js';
import {
  ADMIN_KEY,
  admin,
  call,
  chatRequest,
  createKey,
  miniMicroUsd,
  openDb,
  rateLimit,
  settledUsage,
  startAdminGateway,
  usageRows,
  type CreatedKey,
} from '../keys/helpers.js';
import { startGateway } from '../helpers.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 5, 10, 12, 0, 0);

let gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  gateways = [];
});

async function start(env: Record<string, string> = {}, clock?: () => number): Promise<TestGateway> {
  const gw = await startAdminGateway(env, clock === undefined ? {} : { clock });
  gateways.push(gw);
  return gw;
}

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

describe('key CRUD', () => {
  it('create: 201 with the secret once; list and show never return it; the database keeps only its hash', async () => {
    const now = T0;
    const gw = await start({}, () => now);
    const created = await admin<CreatedKey>(gw, 'POST', '/keys', {
      name: 'alice',
      notes: 'data team, laptop',
      expires_in: '30d',
      requests_per_hour: 100,
      requests_per_day: 1_000,
      tokens_per_hour: 50_000,
      tokens_per_day: 200_000,
      usd_per_day: 5,
      usd_per_month: 50.5,
      endpoints: ['POST /v1/chat/completions'],
      models: ['gpt-4o*'],
      ips: ['127.0.0.1', '10.0.0.0/8', '::1'],
    });
    expect(created.status).toBe(201);
    const secret = created.body.key;
    expect(secret).toMatch(/^pgpt-[A-Za-z0-9_-]{32}$/);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^key_[a-z2-7]{12}$/),
      key: secret,
      name: 'alice',
      notes: 'data team, laptop',
      prefix: `${secret.slice(0, 9)}…`,
      status: 'active',
      created_at: new Date(T0).toISOString(),
      updated_at: new Date(T0).toISOString(),
      expires_at: new Date(T0 + 30 * DAY).toISOString(),
      disabled: false,
      requests_per_hour: 100,
      requests_per_day: 1_000,
      tokens_per_hour: 50_000,
      tokens_per_day: 200_000,
      usd_per_day: 5,
      usd_per_month: 50.5,
      endpoints: ['POST /v1/chat/completions'],
      models: ['gpt-4o*'],
      ips: ['127.0.0.1', '10.0.0.0/8', '::1'],
    });
    const { key: _secret, ...view } = created.body;

    const byId = await admin(gw, 'GET', `/keys/${created.body.id}`);
    const byName = await admin(gw, 'GET', '/keys/alice');
    const list = await admin<{ object: string; data: unknown[] }>(gw, 'GET', '/keys');
    expect(byId.body).toEqual(view);
    expect(byName.body).toEqual(view);
    expect(list.body).toEqual({ object: 'list', data: [view] });
    for (const r of [byId, byName, list]) {
      expect(r.text).not.toContain(secret);
      expect(r.text).not.toContain(secret.slice(9));
      expect(r.text).not.toContain(createHash('sha256').update(secret).digest('hex'));
    }

    // Stored as a hash only: no column of any key row contains the secret (or most of it).
    const db = openDb(gw);
    try {
      const rows = db.prepare('SELECT * FROM api_keys').all() as Record<string, unknown>[];
      expect(rows).toHaveLength(1);
      expect(rows[0]!.hash).toBe(createHash('sha256').update(secret, 'utf8').digest('hex'));
      for (const [column, value] of Object.entries(rows[0]!)) {
        expect(String(value), column).not.toContain(secret);
        expect(String(value), column).not.toContain(secret.slice(9, 20));
      }
      // Nor any other table.
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
      for (const { name } of tables) {
        for (const row of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
          expect(JSON.stringify(row), name).not.toContain(secret.slice(9, 20));
        }
      }
    } finally {
      db.close();
    }
    expect((await call(gw, secret)).status).toBe(200);
  });

  it('update: set, change and clear (null) limits and lists; rename; notes; disable and enable', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'bob', requests_per_hour: 1, models: ['gpt-4o-mini'], usd_per_day: 1 });
    expect((await call(gw, k.key)).status).toBe(200);
    expect((await call(gw, k.key)).status).toBe(429);

    now = T0 + 1_000;
    const updated = await admin(gw, 'PATCH', '/keys/bob', { requests_per_hour: 3, tokens_per_day: 10_000, notes: 'more room' });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      name: 'bob',
      notes: 'more room',
      requests_per_hour: 3,
      tokens_per_day: 10_000,
      usd_per_day: 1,
      models: ['gpt-4o-mini'],
      created_at: new Date(T0).toISOString(),
      updated_at: new Date(T0 + 1_000).toISOString(),
    });
    expect((await call(gw, k.key)).status).toBe(200); // the new limit applies at once

    const cleared = await admin(gw, 'PATCH', `/keys/${k.id}`, { requests_per_hour: null, models: null, usd_per_day: null, name: 'robert' });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ name: 'robert', requests_per_hour: null, models: null, usd_per_day: null, tokens_per_day: 10_000 });
    expect((await call(gw, k.key, { body: chatRequest({ model: 'gpt-4o' }) })).status).toBe(200);
    expect((await rateLimit(gw, k.key)).body.key).toMatchObject({ name: 'robert', limits: { tokens_per_day: { limit: 10_000 } } });
    expect(Object.keys((await rateLimit(gw, k.key)).body.key!.limits)).toEqual(['tokens_per_day']);
    expect((await admin(gw, 'GET', '/keys/bob')).status).toBe(404);
    expect((await admin(gw, 'GET', '/keys/robert')).body).toMatchObject({ id: k.id });

    // An empty update changes nothing but is fine.
    expect((await admin(gw, 'PATCH', '/keys/robert', {})).body).toMatchObject({ tokens_per_day: 10_000, notes: 'more room' });

    const disabled = await admin(gw, 'PATCH', '/keys/robert', { disabled: true });
    expect(disabled.body).toMatchObject({ disabled: true, status: 'disabled' });
    expect((await call(gw, k.key)).status).toBe(401);
    expect((await admin(gw, 'PATCH', '/keys/robert', { disabled: false })).body).toMatchObject({ status: 'active' });
    expect((await call(gw, k.key)).status).toBe(200);
  });

  it('expiry: expires_at and expires_in; an expired key is 401; null removes the expiry', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'temp', expires_in: '2h' });
    expect(k.expires_at).toBe(new Date(T0 + 2 * HOUR).toISOString());
    now = T0 + 2 * HOUR - 1;
    expect((await call(gw, k.key)).status).toBe(200);
    now = T0 + 2 * HOUR;
    const expired = await call(gw, k.key);
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ error: { code: 'invalid_api_key', message: expect.stringMatching(/expired/) } });
    expect((await admin(gw, 'GET', '/keys/temp')).body).toMatchObject({ status: 'expired' });

    expect((await admin(gw, 'PATCH', '/keys/temp', { expires_at: '2030-01-01T00:00:00+02:00' })).body).toMatchObject({
      expires_at: '2029-12-31T22:00:00.000Z',
      status: 'active',
    });
    expect((await call(gw, k.key)).status).toBe(200);
    expect((await admin(gw, 'PATCH', '/keys/temp', { expires_at: T0 })).body).toMatchObject({ status: 'expired' });
    expect((await call(gw, k.key)).status).toBe(401);
    expect((await admin(gw, 'PATCH', '/keys/temp', { expires_at: null })).body).toMatchObject({ expires_at: null, status: 'active' });
    expect((await call(gw, k.key)).status).toBe(200);
  });

  it('duplicate names are 409, on create and on rename', async () => {
    const gw = await start();
    await createKey(gw, { name: 'same' });
    const other = await createKey(gw, { name: 'other' });
    const dup = await admin(gw, 'POST', '/keys', { name: 'same', requests_per_hour: 5 });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ error: { code: 'conflict' } });
    const rename = await admin(gw, 'PATCH', `/keys/${other.id}`, { name: 'same' });
    expect(rename.status).toBe(409);
    expect((await admin<{ data: { name: string }[] }>(gw, 'GET', '/keys')).body.data.map((k) => k.name)).toEqual(['same', 'other']);
  });

  it('rotate: a new secret, shown once; the old one stops working, the policy and usage stay', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'rotating', requests_per_hour: 3 });
    expect((await call(gw, k.key)).status).toBe(200);
    const rotated = await admin<CreatedKey>(gw, 'POST', '/keys/rotating/rotate');
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ id: k.id, name: 'rotating', requests_per_hour: 3, prefix: `${rotated.body.key.slice(0, 9)}…` });
    expect(rotated.body.key).not.toBe(k.key);
    expect((await call(gw, k.key)).status).toBe(401);
    expect((await call(gw, rotated.body.key)).status).toBe(200);
    // The same key: its request count carried over.
    expect((await rateLimit(gw, rotated.body.key)).body.key!.limits.requests_per_hour).toMatchObject({ used: 2 });
    expect((await admin(gw, 'GET', '/keys/rotating')).text).not.toContain(rotated.body.key);
  });

  it('revoke and delete; unknown keys are 404 on every key route', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'short-lived' });
    const revoked = await admin(gw, 'POST', `/keys/${k.id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: k.id, disabled: true, status: 'disabled' });
    expect((await call(gw, k.key)).status).toBe(401);

    const deleted = await admin(gw, 'DELETE', '/keys/short-lived');
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ id: k.id, deleted: true });
    expect((await admin<{ data: unknown[] }>(gw, 'GET', '/keys')).body.data).toEqual([]);
    expect((await call(gw, k.key)).status).toBe(401);

    for (const [method, path, body] of [
      ['GET', `/keys/${k.id}`],
      ['GET', '/keys/short-lived'],
      ['PATCH', '/keys/nobody', { notes: 'x' }],
      ['POST', '/keys/nobody/rotate'],
      ['POST', '/keys/nobody/revoke'],
      ['DELETE', '/keys/nobody'],
    ] as [string, string, unknown?][]) {
      const r = await admin(gw, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body).toMatchObject({ error: { code: 'not_found' } });
    }
  });

  it('invalid bodies are 400 with the offending field in `param`', async () => {
    const gw = await start();
    const cases: [unknown, string | null][] = [
      [{}, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 'has space' }, 'name'],
      [{ name: 'x'.repeat(65) }, 'name'],
      // Names that look like ids would make lookups by id-or-name pick another key.
      [{ name: 'key_abcdefghijkl' }, 'name'],
      [{ name: 'env-key-1' }, 'name'],
      [{ name: 'ok', requests_per_hour: 0 }, 'requests_per_hour'],
      [{ name: 'ok', requests_per_day: 1.5 }, 'requests_per_day'],
      [{ name: 'ok', tokens_per_hour: -10 }, 'tokens_per_hour'],
      [{ name: 'ok', tokens_per_day: '1000' }, 'tokens_per_day'],
      [{ name: 'ok', usd_per_day: 0 }, 'usd_per_day'],
      [{ name: 'ok', usd_per_month: -5 }, 'usd_per_month'],
      [{ name: 'ok', expires_at: 'tomorrow' }, 'expires_at'],
      [{ name: 'ok', expires_in: '3 fortnights' }, 'expires_in'],
      [{ name: 'ok', models: 'gpt-4o' }, 'models'],
      [{ name: 'ok', endpoints: [''] }, 'endpoints.0'],
      [{ name: 'ok', ips: ['300.1.1.1'] }, 'ips'],
      [{ name: 'ok', disabled: 'yes' }, 'disabled'],
      [{ name: 'ok', notes: 42 }, 'notes'],
      [{ name: 'ok', requests_per_minute: 5 }, 'requests_per_minute'],
      [['name', 'ok'], null],
    ];
    for (const [body, param] of cases) {
      const r = await admin(gw, 'POST', '/keys', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body, JSON.stringify(body)).toMatchObject({ error: { type: 'invalid_request_error', param } });
    }
    const notJson = await fetch(`${gw.url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: '{"name":' });
    expect(notJson.status).toBe(400);
    expect((await admin<{ data: unknown[] }>(gw, 'GET', '/keys')).body.data).toEqual([]);

    const k = await createKey(gw, { name: 'valid' });
    for (const [body, param] of [
      [{ requests_per_hour: 0 }, 'requests_per_hour'],
      [{ name: 'bad name' }, 'name'],
      [{ id: 'key_other' }, 'id'],
      [{ key: 'pgpt-chosen-by-the-holder' }, 'key'],
    ] as [unknown, string][]) {
      const r = await admin(gw, 'PATCH', `/keys/${k.id}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ error: { param } });
    }
    expect((await call(gw, k.key)).status).toBe(200);
  });
});

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
      usd: (miniMicroUsd(10, 3) + miniMicroUsd(10, 100) + miniMicroUsd(1_000, 500)) / 1e6,
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
