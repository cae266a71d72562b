/**
 * The usage records' `upstream` column reaches databases made before it: a SQLite file with the
 * first schema gets the column when the store opens it (its old records: no upstream), a
 * Postgres schema at migration 1 gets it from migration 2, and `proxygpt migrate` copies it from
 * SQLite to Postgres (from an old file without the column too).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { migrate, MIGRATIONS } from '../../src/store/postgres-migrations.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { tempDir } from '../helpers.js';
import { adminQuery, dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { FOREVER, usageRecord } from './store-contract-fixtures.js';

const postgres = await postgresTarget();
const ALL = { sinceMs: 0, untilMs: FOREVER };

/** The usage table as the first release created it (before records named their upstream). */
const FIRST_SCHEMA = `
CREATE TABLE usage_events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, request_id TEXT NOT NULL, principal TEXT NOT NULL,
  method TEXT NOT NULL, path TEXT NOT NULL, model TEXT, status INTEGER NOT NULL, duration_ms INTEGER NOT NULL, stream INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, cost_micro_usd INTEGER NOT NULL DEFAULT 0,
  estimated INTEGER NOT NULL DEFAULT 0);
CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, notes TEXT NOT NULL DEFAULT '', hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER, disabled INTEGER NOT NULL DEFAULT 0,
  policy TEXT NOT NULL DEFAULT '{}');
CREATE TABLE model_prices (model TEXT PRIMARY KEY, input REAL NOT NULL, cached_input REAL NOT NULL, output REAL NOT NULL);
INSERT INTO usage_events (ts, request_id, principal, method, path, model, status, duration_ms, stream, prompt_tokens)
  VALUES (5, 'old', 'a', 'POST', '/v1/chat/completions', 'gpt-4o', 200, 3, 0, 7);
`;

const dirs: string[] = [];
const schemas: string[] = [];
afterAll(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  for (const schema of schemas) await dropSchema(postgres.url, schema);
});

function oldSqliteFile(): string {
  const dir = tempDir();
  dirs.push(dir);
  const path = join(dir, 'old.db');
  const db = openSqlite(path);
  db.exec(FIRST_SCHEMA);
  db.close();
  return path;
}

describe('the upstream column on databases made before it', () => {
  it('SQLite: opening an old file adds the column; old records have no upstream, new ones theirs', async () => {
    const path = oldSqliteFile();
    const store = new SqliteStore(openSqlite(path));
    await store.migrate();
    await store.migrate(); // idempotent
    await store.recordUsage([usageRecord({ ts: 10, principal: 'a', upstream: 'azure', promptTokens: 1 })]);
    expect((await store.usage(ALL)).total).toMatchObject({ requests: 2, promptTokens: 8 });
    expect((await store.usage({ ...ALL, upstream: 'azure' })).total).toMatchObject({ requests: 1, promptTokens: 1 });
    await store.close();
  });

  describe.skipIf(!postgres.available)('Postgres', () => {
    it('a schema at migration 1 with records gets the column from migration 2', async () => {
      const schema = uniqueSchema('upcol');
      schemas.push(schema);
      const pool = new pg.Pool({ connectionString: postgres.url, options: `-c search_path=${schema}`, max: 1 });
      try {
        const client = await pool.connect();
        try {
          expect(await migrate(client, schema, MIGRATIONS.slice(0, 1))).toMatchObject({ applied: [1] });
          await client.query(`INSERT INTO usage_events (ts, request_id, principal, method, path, status, duration_ms, stream, prompt_tokens) VALUES (5, 'old', 'a', 'POST', '/v1/x', 200, 1, false, 7)`);
        } finally {
          client.release();
        }
      } finally {
        await pool.end();
      }
      const store = await openPostgresStore(postgres.url, { schema });
      try {
        await store.recordUsage([usageRecord({ ts: 10, principal: 'a', upstream: 'local', promptTokens: 1 })]);
        expect((await store.usage(ALL)).total).toMatchObject({ requests: 2, promptTokens: 8 });
        expect((await store.usage({ ...ALL, upstream: 'local' })).total).toMatchObject({ requests: 1, promptTokens: 1 });
        const rows = await adminQuery<{ upstream: string | null }>(postgres.url, `SELECT upstream FROM "${schema}".usage_events ORDER BY ts`);
        expect(rows.map((r) => r.upstream)).toEqual([null, 'local']);
      } finally {
        await store.close();
      }
    });

    it('proxygpt migrate copies the upstream from SQLite, and from an old file without the column', async () => {
      const dir = tempDir();
      dirs.push(dir);
      const current = new SqliteStore(openSqlite(join(dir, 'new.db')));
      await current.migrate();
      await current.recordUsage([usageRecord({ ts: 1, principal: 'a', upstream: 'openai-b' }), usageRecord({ ts: 2, principal: 'a' })]);
      await current.close();
      for (const [file, expected] of [[join(dir, 'new.db'), ['openai-b', null]], [oldSqliteFile(), [null]]] as const) {
        const schema = uniqueSchema('upimport');
        schemas.push(schema);
        const store = await openPostgresStore(postgres.url, { schema });
        const source = openSqlite(file);
        try {
          await store.importSqlite(source, { sourceId: `sqlite:${file}` });
          const rows = await adminQuery<{ upstream: string | null }>(postgres.url, `SELECT upstream FROM "${schema}".usage_events ORDER BY ts`);
          expect(rows.map((r) => r.upstream)).toEqual(expected);
        } finally {
          source.close();
          await store.close();
        }
      }
    });
  });
});
