/**
 * Key CRUD through the admin API over real HTTP: create (the secret shown once, stored only as a
 * SHA-256 hash), update and clear limits and lists, expiry, duplicate names, rotate, revoke and
 * delete, unknown keys, and invalid bodies.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { ADMIN_KEY, admin, call, chatRequest, createKey, openDb, rateLimit, type CreatedKey } from '../keys/helpers.js';
import { adminGateways } from '../keys/gateway-fixture.js';
import { DAY, HOUR, T0 } from './helpers.js';

const { start } = adminGateways();

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
      max_concurrent: null,
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
    const conflict = { error: { message: 'A key named "same" already exists.', type: 'invalid_request_error', code: 'conflict', param: null } };
    expect(dup.body).toEqual(conflict);
    const rename = await admin(gw, 'PATCH', `/keys/${other.id}`, { name: 'same' });
    expect(rename.status).toBe(409);
    expect(rename.body).toEqual(conflict);
    // Nothing renamed or added (listed by creation time, then id: order within a millisecond is by id).
    expect((await admin<{ data: { name: string }[] }>(gw, 'GET', '/keys')).body.data.map((k) => k.name).sort()).toEqual(['other', 'same']);
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
