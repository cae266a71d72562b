/**
 * Moving up: copies what a SQLite install holds (stored keys with their hashes, so no key is
 * re-issued; price overrides; usage history) into the Postgres store, idempotently, for
 * `proxygpt migrate --from ./data/proxygpt.db --to postgres://…`. Running it again copies only
 * what is new or changed: a key is inserted by id, or updated when the SQLite copy is newer
 * (`updated_at`); prices are set from SQLite; a usage record is known by (source, its SQLite id)
 * and never copied twice. A key whose name (or hash) another key already has in Postgres is not
 * copied and is reported. The records copied are added to the usage rollups as they go in; the
 * refusals SQLite counted in its rollups (never usage records) are not carried over. The limits'
 * own history (rolling windows) is not part of the store.
 */
import type pg from 'pg';
import type { SqliteDatabase } from './sqlite-db.js';
import { rollupsOfInsertedCtes } from './postgres-rollups.js';

export interface ImportOptions {
  /** Names the SQLite file for good (e.g. `sqlite:` + its real path): copies from it are known by it. */
  sourceId: string;
  /** Usage records per INSERT. Default 5,000. */
  batchSize?: number;
  /** Progress lines. */
  log?: (msg: string) => void;
}

export interface ImportReport {
  keys: { inserted: number; updated: number; unchanged: number; conflicts: string[] };
  prices: number;
  usage: { copied: number; alreadyThere: number };
}

interface SqliteKey {
  id: string;
  name: string;
  notes: string;
  hash: string;
  prefix: string;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  disabled: number;
  policy: string;
}

interface SqliteUsage {
  id: number;
  ts: number;
  request_id: string;
  principal: string;
  method: string;
  path: string;
  model: string | null;
  status: number;
  duration_ms: number;
  stream: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micro_usd: number;
  estimated: number;
  /** Absent in a file written before records named their upstream. */
  upstream?: string | null;
}

const UPSERT_KEY = `
INSERT INTO api_keys (id, name, notes, hash, prefix, created_at, updated_at, expires_at, disabled, policy)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, notes = excluded.notes, hash = excluded.hash, prefix = excluded.prefix,
  updated_at = excluded.updated_at, expires_at = excluded.expires_at, disabled = excluded.disabled, policy = excluded.policy
WHERE api_keys.updated_at < excluded.updated_at
RETURNING (xmax = 0) AS inserted`;

const UPSERT_PRICE = `
INSERT INTO model_prices (model, input, cached_input, output) VALUES ($1, $2, $3, $4)
ON CONFLICT (model) DO UPDATE SET input = excluded.input, cached_input = excluded.cached_input, output = excluded.output`;

// The records not copied before, and their rollup rows (grouped in SQL: a batch's records of one
// group are many), in one statement.
const COPY_USAGE = `
WITH copied AS (
INSERT INTO usage_events (ts, request_id, principal, method, path, model, status, duration_ms, stream,
  prompt_tokens, completion_tokens, cost_micro_usd, estimated, imported_from, imported_id, upstream)
SELECT ts, request_id, principal, method, path, model, status, duration_ms, stream,
  prompt_tokens, completion_tokens, cost_micro_usd, estimated, $14::text, imported_id, upstream
FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[], $8::int8[], $9::bool[],
  $10::int8[], $11::int8[], $12::int8[], $13::bool[], $15::int8[], $16::text[])
  WITH ORDINALITY AS u(ts, request_id, principal, method, path, model, status, duration_ms, stream,
    prompt_tokens, completion_tokens, cost_micro_usd, estimated, imported_id, upstream, ord)
ORDER BY ord
ON CONFLICT (imported_from, imported_id) WHERE imported_id IS NOT NULL DO NOTHING
RETURNING ts, principal, model, status, duration_ms, prompt_tokens, completion_tokens, cost_micro_usd),
${rollupsOfInsertedCtes('copied')}
SELECT count(*)::int AS n FROM copied`;

async function copyKeys(client: pg.PoolClient, source: SqliteDatabase, report: ImportReport): Promise<void> {
  const keys = source.prepare<[], SqliteKey>('SELECT * FROM api_keys ORDER BY created_at, id').all();
  for (const k of keys) {
    await client.query('SAVEPOINT key');
    try {
      const { rows } = await client.query<{ inserted: boolean }>(UPSERT_KEY, [
        k.id, k.name, k.notes, k.hash, k.prefix, k.created_at, k.updated_at, k.expires_at, k.disabled === 1, k.policy,
      ]);
      if (rows.length === 0) report.keys.unchanged++;
      else if (rows[0]!.inserted) report.keys.inserted++;
      else report.keys.updated++;
      await client.query('RELEASE SAVEPOINT key');
    } catch (err) {
      await client.query('ROLLBACK TO SAVEPOINT key');
      if ((err as { code?: unknown }).code !== '23505') throw err;
      report.keys.conflicts.push(k.name);
    }
  }
}

async function copyPrices(client: pg.PoolClient, source: SqliteDatabase, report: ImportReport): Promise<void> {
  // rowid order: the order the models were first priced in, kept by the Postgres store's position.
  const prices = source.prepare<[], { model: string; input: number; cached_input: number; output: number }>('SELECT * FROM model_prices ORDER BY rowid').all();
  for (const p of prices) await client.query(UPSERT_PRICE, [p.model, p.input, p.cached_input, p.output]);
  report.prices = prices.length;
}

async function copyUsage(pool: pg.Pool, source: SqliteDatabase, options: ImportOptions, report: ImportReport): Promise<void> {
  const batchSize = Math.max(1, options.batchSize ?? 5_000);
  const next = source.prepare<[number, number], SqliteUsage>('SELECT * FROM usage_events WHERE id > ? ORDER BY id LIMIT ?');
  let after = 0;
  for (;;) {
    const rows = next.all(after, batchSize);
    if (rows.length === 0) break;
    const columns = [
      rows.map((r) => r.ts), rows.map((r) => r.request_id), rows.map((r) => r.principal), rows.map((r) => r.method), rows.map((r) => r.path),
      rows.map((r) => r.model), rows.map((r) => r.status), rows.map((r) => Math.round(r.duration_ms)), rows.map((r) => r.stream === 1),
      rows.map((r) => r.prompt_tokens), rows.map((r) => r.completion_tokens), rows.map((r) => r.cost_micro_usd), rows.map((r) => r.estimated === 1),
      options.sourceId, rows.map((r) => r.id),
      // A file written before records named their upstream has no such column: null.
      rows.map((r) => r.upstream ?? null),
    ];
    const copied = (await pool.query<{ n: number }>(COPY_USAGE, columns)).rows[0]!.n;
    report.usage.copied += copied;
    report.usage.alreadyThere += rows.length - copied;
    after = rows[rows.length - 1]!.id;
    options.log?.(`usage records: ${report.usage.copied + report.usage.alreadyThere} read, ${report.usage.copied} copied`);
  }
}

/** Copies `source` into the Postgres database of `pool` (already migrated). */
export async function importSqlite(pool: pg.Pool, source: SqliteDatabase, options: ImportOptions): Promise<ImportReport> {
  const report: ImportReport = { keys: { inserted: 0, updated: 0, unchanged: 0, conflicts: [] }, prices: 0, usage: { copied: 0, alreadyThere: 0 } };
  const client = await pool.connect();
  try {
    // Keys and prices together or not at all; usage history batch by batch (each batch is idempotent).
    await client.query('BEGIN');
    await copyKeys(client, source, report);
    await copyPrices(client, source, report);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  options.log?.(`keys: ${report.keys.inserted} new, ${report.keys.updated} updated, ${report.keys.unchanged} unchanged; prices: ${report.prices}`);
  await copyUsage(pool, source, options, report);
  return report;
}
