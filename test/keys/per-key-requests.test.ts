/**
 * Per-key requests per hour and per day through the real HTTP gateway, keys created with the admin
 * API: exactly N admitted, then 429 with an exact Retry-After; the global limit applies on top (a
 * request must pass both); the day is a rolling day.
 */
import { describe, expect, it } from 'vitest';
import { PROXY_KEY } from '../helpers.js';
import { join } from 'node:path';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { admin, call, createKey, rateLimit } from './helpers.js';
import { adminGateways } from './gateway-fixture.js';
import { DAY, expect429, HOUR, T0 } from './per-key-helpers.js';

const { start } = adminGateways();

describe('requests per hour and per day', () => {
  it('admits exactly N per key, then 429 with an exact Retry-After; the global limit applies on top', async () => {
    let now = T0;
    const gw = await start({ USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '5' }, () => now);
    const a = await createKey(gw, { name: 'a', requests_per_hour: 3 });
    const b = await createKey(gw, { name: 'b', requests_per_hour: 10 });

    for (const offset of [0, 1_000, 2_000]) {
      now = T0 + offset;
      const ok = await call(gw, a.key);
      expect(ok.status, ok.text).toBe(200);
    }
    now = T0 + 10_000;
    const refused = await call(gw, a.key);
    expect429(refused, /3 requests per hour for this key/, HOUR - 10_000);
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(gw.mock.requests).toHaveLength(3);

    // The key's refusal took no global slot: b gets the 2 left, then the gateway's limit refuses b
    // although b's own limit has room.
    now = T0 + 20_000;
    expect((await call(gw, b.key)).status).toBe(200);
    expect((await call(gw, b.key)).status).toBe(200);
    const global = await call(gw, b.key);
    expect429(global, /5 requests per hour for this gateway/, HOUR - 20_000);
    expect(global.headers.get('x-ratelimit-limit-requests')).toBe('5');
    // Environment keys share the global limit.
    expect((await call(gw, PROXY_KEY)).status).toBe(429);
    expect(gw.mock.requests).toHaveLength(5);

    const status = (await rateLimit(gw, b.key)).body;
    expect(status).toMatchObject({ hourly_rate_limit: 5, hourly_api_usage: 5, hourly_remaining: 0 });
    expect(status.key!.limits.requests_per_hour).toMatchObject({ limit: 10, used: 2, remaining: 8 });
    expect((await rateLimit(gw, a.key)).body.key!.limits.requests_per_hour).toMatchObject({ limit: 3, used: 3, remaining: 0 });

    // One hour after a's first call, a fits again (one slot on each side), and only one call: then
    // both its own limit and the gateway's are full again until a's second call leaves.
    now = T0 + HOUR;
    expect((await call(gw, a.key)).status).toBe(200);
    expect429(await call(gw, a.key), /requests per hour/, 1_000);
    expect(gw.mock.requests).toHaveLength(6);
  });

  it('requests per day: a rolling day, not reset by the hour', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const k = await createKey(gw, { name: 'daily', requests_per_day: 2, requests_per_hour: 10 });
    expect((await call(gw, k.key)).status).toBe(200);
    now = T0 + HOUR;
    expect((await call(gw, k.key)).status).toBe(200);
    now = T0 + 2 * HOUR;
    const refused = await call(gw, k.key);
    expect429(refused, /2 requests per day for this key/, DAY - 2 * HOUR);
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('2');
    now = T0 + DAY - 1;
    expect429(await call(gw, k.key), /per day/, 1);
    now = T0 + DAY;
    expect((await call(gw, k.key)).status).toBe(200);
    expect(gw.mock.requests).toHaveLength(3);
  });
});

describe('a key edited between its calls', () => {
  it('the next call counts against the new limits, whether the edit came through the admin API or straight into the database file', async () => {
    let now = T0;
    const gw = await start({}, () => now);
    const a = await createKey(gw, { name: 'edited', requests_per_hour: 10 });
    expect((await call(gw, a.key)).headers.get('x-ratelimit-limit-requests')).toBe('10');

    // Through the admin API (this process's own store connection).
    now += 1_000;
    expect((await admin(gw, 'PATCH', `/keys/${a.id}`, { requests_per_hour: 2 })).status).toBe(200);
    const second = await call(gw, a.key);
    expect(second.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect429(await call(gw, a.key), /2 requests per hour for this key/, HOUR - 1_000);

    // Another connection to the same file (as the CLI in direct mode, or another worker, writes).
    const db = openSqlite(join(gw.dir, 'proxygpt.db'));
    try {
      db.prepare('UPDATE api_keys SET policy = ? WHERE id = ?').run(JSON.stringify({ requestsPerHour: 3 }), a.id);
      const third = await call(gw, a.key);
      expect(third.status, third.text).toBe(200);
      expect(third.headers.get('x-ratelimit-limit-requests')).toBe('3');
      db.prepare('UPDATE api_keys SET disabled = 1 WHERE id = ?').run(a.id);
      expect((await call(gw, a.key)).status).toBe(401);
    } finally {
      db.close();
    }
  });
});
