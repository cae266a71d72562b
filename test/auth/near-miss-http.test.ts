/**
 * Near-miss credentials over real HTTP: a key that is almost right (one character changed at the
 * start, middle or end, one more or less, a prefix, trailing garbage, another case) is refused with
 * 401 like any wrong key — the admin key on the admin API (and the CLI's remote mode), environment
 * proxy keys and stored `pgpt-` keys on the proxy — and nothing is forwarded upstream. The real
 * keys work, each as itself (usage is recorded under the key that matched).
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, admin, call, createKey, rateLimit, usageRows, type HttpResult } from '../keys/helpers.js';
import { adminGateways } from '../keys/gateway-fixture.js';
import { runCli } from '../cli/cli.js';
import { nearMisses } from './near-miss.js';

const { start } = adminGateways();

/** Environment keys of the same length and tail, so only a whole comparison tells them apart. */
const ENV_KEYS = ['Alpha-Proxy-Key-1111-shared-tail-9876', 'Bravo-Proxy-Key-2222-shared-tail-9876', 'Charlie-Proxy-Key-33-shared-tail-9876'];

function expectInvalidKey(r: HttpResult, what: string): void {
  expect(r.status, `${what}: ${r.text}`).toBe(401);
  expect(r.headers.get('www-authenticate')).toBe('Bearer');
  expect(r.body).toMatchObject({ error: { code: 'invalid_api_key', type: 'invalid_request_error' } });
}

describe('a near miss of the admin key', () => {
  it('is refused with 401 on the admin API and changes nothing; the exact key gets in', async () => {
    const gw = await start();
    const misses = nearMisses(ADMIN_KEY);
    expect(misses.length).toBeGreaterThanOrEqual(10);
    for (const miss of misses) {
      const list = await admin(gw, 'GET', '/keys', undefined, `Bearer ${miss.value}`);
      expectInvalidKey(list, `GET /admin/keys, ${miss.what}`);
      const create = await admin(gw, 'POST', '/keys', { name: 'intruder' }, `Bearer ${miss.value}`);
      expectInvalidKey(create, `POST /admin/keys, ${miss.what}`);
      expect(create.text).not.toContain('pgpt-');
    }
    const keys = await admin<{ data: unknown[] }>(gw, 'GET', '/keys');
    expect(keys.status).toBe(200);
    expect(keys.body.data).toEqual([]);
  });

  it('is refused by the CLI in remote mode (HTTP 401), without showing either key', async () => {
    const gw = await start();
    const miss = nearMisses(ADMIN_KEY).find((m) => m.what === 'middle character changed')!;
    const result = await runCli(['--url', gw.url, '--admin-key', miss.value, 'keys', 'create', '--name', 'mallory'], { env: {} });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`proxygpt: ${gw.url} refused the admin key (HTTP 401): check --admin-key or PROXYGPT_ADMIN_KEY\n`);
    expect(result.stdout + result.stderr).not.toContain(miss.value);
    expect(result.stdout + result.stderr).not.toContain(ADMIN_KEY);
    expect((await admin<{ data: unknown[] }>(gw, 'GET', '/keys')).body.data).toEqual([]);
  });
});

describe('a near miss of an environment proxy key', () => {
  it('is 401 on the proxy, the legacy route and /ratelimit, and never reaches the upstream', async () => {
    const gw = await start({ PROXYGPT_API_KEYS: ENV_KEYS.join(',') });
    for (const key of ENV_KEYS) {
      for (const miss of nearMisses(key)) {
        if (ENV_KEYS.includes(miss.value)) continue;
        expectInvalidKey(await call(gw, miss.value), `${miss.what} of ${key}`);
        expectInvalidKey(await call(gw, miss.value, { path: '/api/openai/completions/gpt3', body: JSON.stringify([{ role: 'user', content: 'hi' }]) }), `legacy, ${miss.what}`);
        expectInvalidKey(await rateLimit(gw, miss.value), `/ratelimit, ${miss.what}`);
      }
    }
    expect(gw.mock.requests).toEqual([]);

    // The real keys work, and each is recorded as itself.
    for (const key of [ENV_KEYS[2]!, ENV_KEYS[1]!, ENV_KEYS[2]!]) expect((await call(gw, key)).status).toBe(200);
    expect(gw.mock.requests).toHaveLength(3);
    expect(await usageRows(gw, 'env-key-3', 2)).toHaveLength(2);
    expect(await usageRows(gw, 'env-key-2', 1)).toHaveLength(1);
    expect(await usageRows(gw, 'env-key-1', 0)).toHaveLength(0);
  });
});

describe('a near miss of a stored key', () => {
  it('is 401 on the proxy and /ratelimit and never reaches the upstream; the exact secret works', async () => {
    const gw = await start();
    const k = await createKey(gw, { name: 'alice' });
    const other = await createKey(gw, { name: 'bob' });
    for (const miss of nearMisses(k.key)) {
      if (miss.value === other.key) continue;
      expectInvalidKey(await call(gw, miss.value), `${miss.what}: ${miss.value}`);
      expectInvalidKey(await rateLimit(gw, miss.value), `/ratelimit, ${miss.what}`);
    }
    // The secret without its `pgpt-` prefix, and the key's public id or name, are no keys either.
    for (const value of [k.key.slice('pgpt-'.length), k.id, k.name]) expectInvalidKey(await call(gw, value), value);
    expect(gw.mock.requests).toEqual([]);

    expect((await call(gw, k.key)).status).toBe(200);
    const rows = await usageRows(gw, k.id, 1);
    expect(rows.map((r) => r.principal)).toEqual([k.id]);
  });
});
