/**
 * The dashboard on the Postgres store: the same fixture's calls give the same overview, keys
 * table and key-holder filtering as on SQLite (the rollups, refusals and last use of both
 * backends are one contract suite; this checks the dashboard reads them the same way).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../keys/helpers.js';
import { adminQuery, dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { dashboardFixture, HOSTILE_MODEL, type DashboardFixture } from './fixture.js';

const postgres = await postgresTarget();
const schema = uniqueSchema('dashboard');
let fx: DashboardFixture;

const get = async (path: string, key: string) => {
  const res = await fetch(`${fx.gw.url}/dashboard/api${path}`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return { text: await res.clone().text(), body: (await res.json()) as any };
};

describe.skipIf(!postgres.available)('dashboard on Postgres', () => {
  beforeAll(async () => {
    await adminQuery(postgres.url, `CREATE SCHEMA ${schema}`);
    const url = new URL(postgres.url);
    url.searchParams.set('options', `-c search_path=${schema}`);
    fx = await dashboardFixture({ PROXYGPT_DATABASE_URL: url.toString(), PROXYGPT_LIMITER: 'memory' });
  }, 60_000);
  afterAll(async () => {
    await fx?.gw.close();
    await dropSchema(postgres.url, schema);
  });

  it('overview, keys and a key holder’s own view', async () => {
    const admin = (await get('/overview?range=1h', ADMIN_KEY)).body;
    expect(admin.total).toMatchObject({ requests: 12, rate_limited: 2, upstream_errors: 1, prompt_tokens: (5 + 2) * 10 + 2 * 1000 });
    expect(admin.by_key.map((k: { name: string; requests: number }) => [k.name, k.requests])).toEqual([['alice', 6], ['carol', 4], ['bob', 2]]);
    expect(admin.by_model.map((m: { model: string }) => m.model).sort()).toEqual(['gpt-4o-mini', HOSTILE_MODEL].sort());
    const keys = (await get('/keys', ADMIN_KEY)).body;
    expect(keys.data.find((r: { id: string }) => r.id === fx.carol.id).last_used).not.toBeNull();

    const own = await get('/overview?range=7d', fx.alice.key);
    expect(own.body.total).toMatchObject({ requests: 6, upstream_errors: 1 });
    expect(own.body.by_model.map((m: { model: string }) => m.model)).toEqual(['gpt-4o-mini']);
    for (const other of [fx.bob.id, fx.carol.id]) expect(own.text).not.toContain(other);
  });
});
