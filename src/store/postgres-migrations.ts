/**
 * Versioned migrations of the Postgres store. Each version is applied once, in order, and noted in
 * `schema_migrations`. All of it happens in one transaction that first takes a transaction-scoped
 * advisory lock for this schema, so several instances starting at the same moment queue up: the
 * first applies what is missing, the others then find nothing left to do. A migration is plain
 * DDL that fails if run twice (no IF NOT EXISTS): the lock, not luck, keeps it single.
 */
import type { PoolClient } from 'pg';
import { KEY_NAME_CONSTRAINT } from './postgres-errors.js';
import { ROLLUPS_MIGRATION_SQL } from './postgres-rollups.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** First key of the two-key advisory lock: "pgpt" in ASCII. The second is the schema's hash. */
export const MIGRATION_LOCK_CLASS = 0x70677074;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'stored keys, usage records, price overrides',
    sql: `
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL CONSTRAINT ${KEY_NAME_CONSTRAINT} UNIQUE,
  notes TEXT NOT NULL DEFAULT '',
  hash TEXT NOT NULL CONSTRAINT api_keys_hash_unique UNIQUE,
  prefix TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  expires_at BIGINT,
  disabled BOOLEAN NOT NULL DEFAULT false,
  policy JSONB NOT NULL DEFAULT '{}'
);
CREATE TABLE usage_events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ts BIGINT NOT NULL,
  request_id TEXT NOT NULL,
  principal TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  model TEXT,
  status INTEGER NOT NULL,
  duration_ms BIGINT NOT NULL,
  stream BOOLEAN NOT NULL,
  prompt_tokens BIGINT NOT NULL DEFAULT 0,
  completion_tokens BIGINT NOT NULL DEFAULT 0,
  cost_micro_usd BIGINT NOT NULL DEFAULT 0,
  estimated BOOLEAN NOT NULL DEFAULT false,
  -- Where a record copied from a SQLite file came from (postgres-import.ts): copying again skips it.
  imported_from TEXT,
  imported_id BIGINT
);
CREATE UNIQUE INDEX usage_events_imported ON usage_events (imported_from, imported_id) WHERE imported_id IS NOT NULL;
CREATE INDEX usage_events_by_time ON usage_events (ts);
CREATE INDEX usage_events_by_principal ON usage_events (principal, ts);
-- position keeps the order models were first priced in (SQLite's rowid order).
CREATE TABLE model_prices (
  model TEXT PRIMARY KEY,
  position BIGINT GENERATED ALWAYS AS IDENTITY,
  input DOUBLE PRECISION NOT NULL,
  cached_input DOUBLE PRECISION NOT NULL,
  output DOUBLE PRECISION NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'usage records name the upstream that served',
    sql: `
ALTER TABLE usage_events ADD COLUMN upstream TEXT;
CREATE INDEX usage_events_by_upstream ON usage_events (upstream, ts);
`,
  },
  {
    // Back-filled from the records there, under the migration lock. Records that an instance of an
    // older release writes while this runs (a rolling upgrade) reach usage_events but not the rollups.
    version: 3,
    name: 'usage rollups per minute and per hour (dashboard), filled from the records there',
    sql: ROLLUPS_MIGRATION_SQL,
  },
];

export interface MigrationOutcome {
  applied: number[];
  /** Versions found in the database that this code does not know (a newer release migrated it). */
  unknown: number[];
}

/**
 * Applies the missing migrations inside the current search_path. `schema`, when given, is created
 * first (under the same lock, so concurrent starts do not race on CREATE SCHEMA either).
 */
export async function migrate(
  client: PoolClient,
  schema: string | undefined,
  migrations: readonly Migration[] = MIGRATIONS,
  now: () => number = Date.now,
): Promise<MigrationOutcome> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::int4, hashtext($2))', [MIGRATION_LOCK_CLASS, schema ?? '']);
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, now()]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    const known = new Set(migrations.map((m) => m.version));
    return { applied, unknown: [...done].filter((v) => !known.has(v)).sort((a, b) => a - b) };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * A schema name the store accepts: lower-case letters, digits and underscores, not starting with a
 * digit (the same name quoted or not, so `search_path` and CREATE SCHEMA agree).
 */
export function assertSchemaName(schema: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`invalid Postgres schema name ${JSON.stringify(schema)}: use a-z, 0-9 and _ (at most 63, not starting with a digit)`);
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
