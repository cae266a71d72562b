/**
 * Runs every Store contract case (store-contract.ts) against every backend, each case on a fresh
 * store: SQLite in a temp file (opened as the app opens it), Postgres in a schema of its own
 * (skipped, with one line, where no Postgres answers; a failure under CI=true). The backend hooks a
 * case may use (a second store on the same database, a database from before rollups) are made
 * here, with the only SQL of the suite: the old schema and its records as the old release wrote them.
 */
import { afterEach, beforeEach, describe, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Store, UsageRecord } from '../../src/contract.js';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { migrate, MIGRATIONS } from '../../src/store/postgres-migrations.js';
import { tempDir } from '../helpers.js';
import { dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { storeCases } from './store-contract.js';
import type { StoreBackend } from './store-contract-fixtures.js';

const postgres = await postgresTarget();

interface Opened {
  store: Store;
  backend: StoreBackend;
  cleanup(): Promise<void>;
}

interface Backend {
  name: string;
  skip: boolean;
  open(): Promise<Opened>;
}

/** The SQLite schema of the release before rollups (usage records with their upstream). */
const SQLITE_BEFORE_ROLLUPS = `
CREATE TABLE usage_events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, request_id TEXT NOT NULL, principal TEXT NOT NULL,
  method TEXT NOT NULL, path TEXT NOT NULL, model TEXT, status INTEGER NOT NULL, duration_ms INTEGER NOT NULL, stream INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, cost_micro_usd INTEGER NOT NULL DEFAULT 0,
  estimated INTEGER NOT NULL DEFAULT 0, upstream TEXT);
CREATE INDEX usage_events_by_time ON usage_events (ts);
CREATE INDEX usage_events_by_principal ON usage_events (principal, ts);
CREATE INDEX usage_events_by_upstream ON usage_events (upstream, ts);
CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, notes TEXT NOT NULL DEFAULT '', hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER, disabled INTEGER NOT NULL DEFAULT 0,
  policy TEXT NOT NULL DEFAULT '{}');
CREATE TABLE model_prices (model TEXT PRIMARY KEY, input REAL NOT NULL, cached_input REAL NOT NULL, output REAL NOT NULL);
`;

const INSERT_RECORD_COLUMNS = 'ts, request_id, principal, method, path, model, status, duration_ms, stream, prompt_tokens, completion_tokens, cost_micro_usd, estimated, upstream';
const recordValues = (r: UsageRecord, bool: (b: boolean) => unknown) => [
  r.ts, r.requestId, r.principal, r.method, r.path, r.model, r.status, r.durationMs, bool(r.stream),
  r.promptTokens, r.completionTokens, r.costMicroUsd, bool(r.estimated), r.upstream ?? null,
];

/** Stores handed out by the hooks, closed (and their databases removed) by cleanup. */
function closer() {
  const tasks: Array<() => Promise<void>> = [];
  return {
    add(task: () => Promise<void>) {
      tasks.push(task);
    },
    async run() {
      for (const task of tasks.reverse()) await task();
    },
  };
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    async open() {
      const dir = tempDir();
      const cleanup = closer();
      cleanup.add(async () => rmSync(dir, { recursive: true, force: true }));
      const opened = async (file: string) => {
        const store = new SqliteStore(openSqlite(join(dir, file)));
        cleanup.add(() => store.close());
        await store.migrate();
        return store;
      };
      return {
        store: await opened('proxygpt.db'),
        backend: {
          openSibling: () => opened('proxygpt.db'),
          async openFromBeforeRollups(records) {
            const db = openSqlite(join(dir, 'old.db'));
            db.exec(SQLITE_BEFORE_ROLLUPS);
            const insert = db.prepare(`INSERT INTO usage_events (${INSERT_RECORD_COLUMNS}) VALUES (${Array(14).fill('?').join(', ')})`);
            for (const r of records) insert.run(...recordValues(r, (b) => (b ? 1 : 0)));
            db.close();
            return opened('old.db');
          },
        },
        cleanup: () => cleanup.run(),
      };
    },
  },
  {
    name: 'postgres',
    skip: !postgres.available,
    async open() {
      const cleanup = closer();
      const opened = async (schema: string) => {
        const store = await openPostgresStore(postgres.url, { schema, poolSize: 4 });
        cleanup.add(() => store.close());
        return store;
      };
      const schema = uniqueSchema('contract');
      cleanup.add(() => dropSchema(postgres.url, schema));
      return {
        store: await opened(schema),
        backend: {
          openSibling: () => opened(schema),
          async openFromBeforeRollups(records) {
            const old = uniqueSchema('before_rollups');
            cleanup.add(() => dropSchema(postgres.url, old));
            const client = new pg.Client({ connectionString: postgres.url, options: `-c search_path=${old}` });
            await client.connect();
            try {
              await migrate(client as unknown as pg.PoolClient, old, MIGRATIONS.filter((m) => m.version <= 2));
              const placeholders = Array.from({ length: 14 }, (_, i) => `$${i + 1}`).join(', ');
              for (const r of records) await client.query(`INSERT INTO usage_events (${INSERT_RECORD_COLUMNS}) VALUES (${placeholders})`, recordValues(r, (b) => b));
            } finally {
              await client.end();
            }
            return opened(old);
          },
        },
        cleanup: () => cleanup.run(),
      };
    },
  },
];

describe.each(backends)('Store contract: $name', (backend) => {
  describe.skipIf(backend.skip)(backend.name, () => {
    let current: Awaited<ReturnType<Backend['open']>>;
    beforeEach(async () => {
      current = await backend.open();
    });
    afterEach(async () => {
      await current.cleanup();
    });
    for (const c of storeCases) it(c.name, () => c.run(current.store, current.backend));
  });
});
