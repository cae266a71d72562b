/**
 * Moving a SQLite install up to Postgres (PostgresStore.importSqlite, for `proxygpt migrate`):
 * afterwards the Postgres store answers every Store question as the SQLite one did (keys with
 * their hashes, prices in their order, usage totals and rollups), and copying again is idempotent: nothing
 * counted twice, only what changed in SQLite since is carried over, a key changed later in
 * Postgres is kept, a name taken by another key in Postgres is reported, not overwritten.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres.js';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/contract.js';
import { tempDir } from '../helpers.js';
import { dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { FOREVER, newKey, usageRecord } from './store-contract-fixtures.js';

const postgres = await postgresTarget();
const ALL = { sinceMs: 0, untilMs: FOREVER };

/** Everything a Store answers, for comparing two stores as a whole. */
async function everything(store: Store) {
  const keys = await store.listKeys();
  return {
    keys,
    byHash: await Promise.all(['h-alice', 'h-bob', 'h-carol'].map((h) => store.findKeyByHash(h))),
    prices: Object.entries(await store.priceOverrides()),
    usage: await store.usage(ALL),
    usageOfAlice: await store.usage({ sinceMs: 1_500, untilMs: 10_000, principal: 'k_alice' }),
    minutes: await store.rollups({ ...ALL, granularity: 'minute' }),
    hoursOfAlice: await store.rollups({ ...ALL, granularity: 'hour', principal: 'k_alice' }),
    lastUsed: await store.lastUsed(),
  };
}

describe.skipIf(!postgres.available)('importing a SQLite install into Postgres', () => {
  const schemas: string[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(postgres.url, schema);
  });

  async function setup(): Promise<{ db: SqliteDatabase; sqlite: SqliteStore; pg: PostgresStore }> {
    const dir = tempDir();
    const db = openSqlite(join(dir, 'proxygpt.db'));
    const sqlite = new SqliteStore(db);
    await sqlite.migrate();
    const schema = uniqueSchema('import');
    schemas.push(schema);
    const pg = await openPostgresStore(postgres.url, { schema });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => sqlite.close(), () => pg.close());
    await sqlite.createKey(newKey({ id: 'k_alice', name: 'alice', hash: 'h-alice', notes: 'team A', policy: { requestsPerHour: 10, models: ['gpt-4o*'] }, now: 1_000 }));
    await sqlite.createKey(newKey({ id: 'k_bob', name: 'bob', hash: 'h-bob', expiresAt: 99_000, policy: { usdPerMonth: 2.5, ips: ['10.0.0.0/8'] }, now: 2_000 }));
    await sqlite.createKey(newKey({ id: 'k_carol', name: 'carol', hash: 'h-carol', now: 3_000 }));
    await sqlite.updateKey('k_carol', { disabled: true }, 3_500);
    await sqlite.setPriceOverride('zeta-model', { input: 1 / 3, cachedInput: 0.1, output: 2 });
    await sqlite.setPriceOverride('alpha-model', { input: 0.075, cachedInput: 0, output: 0.3 });
    await sqlite.recordUsage(
      Array.from({ length: 12 }, (_, i) =>
        usageRecord({ ts: 1_000 + i * 100 + (i % 4) * 60_000, principal: i % 3 === 0 ? 'env-key-1' : 'k_alice', requestId: `r${i}`, status: i === 5 ? 429 : 200, promptTokens: i, completionTokens: 2 * i, costMicroUsd: 1_000 * i, model: i % 2 ? null : 'gpt-4o' }),
      ),
    );
    return { db, sqlite, pg };
  }

  it('copies keys with their hashes, prices in their order and the usage history: Postgres then answers as SQLite did', async () => {
    const { db, sqlite, pg } = await setup();
    const report = await pg.importSqlite(db, { sourceId: 'sqlite:/data/proxygpt.db', batchSize: 5 });
    expect(report).toStrictEqual({ keys: { inserted: 3, updated: 0, unchanged: 0, conflicts: [] }, prices: 2, usage: { copied: 12, alreadyThere: 0 } });
    const before = await everything(sqlite);
    expect(before.usage.total.requests).toBe(12);
    expect(before.byHash.map((k) => k?.id)).toStrictEqual(['k_alice', 'k_bob', 'k_carol']);
    expect(await everything(pg)).toStrictEqual(before);
  });

  it('copying again changes nothing; then only what changed in SQLite since is carried over', async () => {
    const { db, sqlite, pg } = await setup();
    await pg.importSqlite(db, { sourceId: 'sqlite:a', batchSize: 5 });
    const again = await pg.importSqlite(db, { sourceId: 'sqlite:a', batchSize: 5 });
    expect(again).toStrictEqual({ keys: { inserted: 0, updated: 0, unchanged: 3, conflicts: [] }, prices: 2, usage: { copied: 0, alreadyThere: 12 } });
    expect(await everything(pg)).toStrictEqual(await everything(sqlite));

    await sqlite.updateKey('k_bob', { disabled: true, notes: 'left' }, 5_000);
    await sqlite.setKeySecret('k_alice', 'h-alice-2', 'pgpt-New', 5_100);
    await sqlite.createKey(newKey({ id: 'k_dave', name: 'dave', hash: 'h-dave', now: 5_200 }));
    await sqlite.recordUsage([usageRecord({ ts: 9_000, principal: 'k_dave', promptTokens: 7 }), usageRecord({ ts: 9_001, principal: 'k_dave', promptTokens: 8 })]);
    const third = await pg.importSqlite(db, { sourceId: 'sqlite:a', batchSize: 5 });
    expect(third).toStrictEqual({ keys: { inserted: 1, updated: 2, unchanged: 1, conflicts: [] }, prices: 2, usage: { copied: 2, alreadyThere: 12 } });
    expect(await pg.findKeyByHash('h-alice')).toBeNull();
    expect((await pg.findKeyByHash('h-alice-2'))?.prefix).toBe('pgpt-New');
    expect(await everything(pg)).toStrictEqual(await everything(sqlite));
    expect((await pg.usage({ ...ALL, principal: 'k_dave' })).total).toMatchObject({ requests: 2, promptTokens: 15 });
  });

  it('a key changed later in Postgres is kept; a name another key has in Postgres is reported and not copied', async () => {
    const { db, pg } = await setup();
    await pg.importSqlite(db, { sourceId: 'sqlite:b' });
    const changed = await pg.updateKey('k_alice', { notes: 'changed in Postgres' }, 8_000);
    await pg.deleteKey('k_carol');
    await pg.createKey(newKey({ id: 'k_other', name: 'carol', hash: 'h-other', now: 8_100 }));
    const report = await pg.importSqlite(db, { sourceId: 'sqlite:b' });
    expect(report.keys).toStrictEqual({ inserted: 0, updated: 0, unchanged: 2, conflicts: ['carol'] });
    expect(await pg.getKey('k_alice')).toStrictEqual(changed);
    expect((await pg.getKey('carol'))?.id).toBe('k_other');
    expect(await pg.getKey('k_carol')).toBeNull();
  });

  it('the same records from another source file are another history', async () => {
    const { db, pg } = await setup();
    await pg.importSqlite(db, { sourceId: 'sqlite:first' });
    const other = await pg.importSqlite(db, { sourceId: 'sqlite:second' });
    expect(other.usage).toStrictEqual({ copied: 12, alreadyThere: 0 });
    expect((await pg.usage(ALL)).total.requests).toBe(24);
    const { byModel } = await pg.rollups({ ...ALL, granularity: 'hour' });
    expect(byModel.map((m) => [m.model, m.requests])).toStrictEqual([['gpt-4o', 12], [null, 12]]);
  });
});
