/**
 * Postgres store: the same keys, usage records and price overrides as the SQLite store (sqlite.ts),
 * with the same answers (order, nulls, totals), for several gateway instances sharing one database.
 * A `pg` pool; BIGINT for milliseconds and micro-dollars (read back as numbers), JSONB for policies;
 * usage records written as one multi-row INSERT per batch (arrays through `unnest`), with their
 * minute and hour rollups upserted by the same statement (postgres-rollups.ts); versioned
 * migrations at start under an advisory lock (postgres-migrations.ts); driver errors turned into
 * the store's domain errors (postgres-errors.ts).
 */
import { sumUsageGroups, type UsageGroup } from './usage-totals.js';
import pg from 'pg';
import type { ModelPrice } from '../contract.js';
import { StoreUnavailable } from './errors.js';
import { describeError, isConnectionError, storeError } from './postgres-errors.js';
import { assertSchemaName, migrate, MIGRATIONS } from './postgres-migrations.js';
import { redactDatabaseUrl, splitStartupOptions } from './postgres-url.js';
import { importSqlite, type ImportOptions, type ImportReport } from './postgres-import.js';
import { PRUNE_ROLLUPS, rollupReads, rowUpsertCtes, rowUpsertParams, UPSERT_ROWS } from './postgres-rollups.js';
import { groupRefusals, groupUsage, LAST_USED_SQL, NEWEST_MINUTE_SQL, pruneCutoffs, toResult } from './rollups.js';
import type { SqliteDatabase } from './sqlite-db.js';
import type { KeyPatch, KeyPolicy, NewKey, RefusalRecord, RollupQuery, RollupResult, Store, StoredKey, UsageQuery, UsageRecord, UsageTotals } from '../contract.js';

export { redactDatabaseUrl } from './postgres-url.js';

export interface PostgresStoreOptions {
  /** Schema for every table (`search_path` of each connection); created if missing. Default: the server's search_path. */
  schema?: string;
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /** How long opening a connection may take before it fails. Default 5 s, so a start fails fast. */
  connectTimeoutMs?: number;
  /** Longest wait for a query's answer (a server gone silent). Default 30 s. */
  queryTimeoutMs?: number;
  /** How the connections show in pg_stat_activity. Default `proxygpt`. */
  applicationName?: string;
  /** Operational messages: migrations applied, connections lost. Never holds a password. */
  log?: (msg: string) => void;
}

interface KeyRow {
  id: string;
  name: string;
  notes: string;
  prefix: string;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  disabled: boolean;
  policy: KeyPolicy;
}

type UsageRow = UsageGroup;

const KEY_COLUMNS = 'id, name, notes, prefix, created_at, updated_at, expires_at, disabled, policy';

const INT8_OID = 20;
/** BIGINT as a JS number: milliseconds and micro-dollars stay far below 2^53. Only for this pool. */
const typesWithNumbers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

const KEY_BY_HASH = { name: 'pgpt_key_by_hash', text: `SELECT ${KEY_COLUMNS} FROM api_keys WHERE hash = $1` };
const KEY_BY_ID_OR_NAME = {
  name: 'pgpt_key_by_id_or_name',
  text: `SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1`,
};
// COLLATE "C": byte order, as SQLite compares text, whatever the database's collation.
const LIST_KEYS = `SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id COLLATE "C"`;
const USAGE_COLUMNS = `principal, status, count(*) AS n, sum(prompt_tokens)::int8 AS p, sum(completion_tokens)::int8 AS c,
  sum(cost_micro_usd)::int8 AS cost FROM usage_events WHERE ts >= $1 AND ts < $2`;
const USAGE_GROUPS = 'GROUP BY principal, status ORDER BY principal COLLATE "C", status';
// The records and their rollup rows in one statement (so one transaction, one round trip).
const INSERT_USAGE = `
WITH raw AS (
INSERT INTO usage_events (ts, request_id, principal, method, path, model, status, duration_ms, stream,
  prompt_tokens, completion_tokens, cost_micro_usd, estimated, upstream)
SELECT ts, request_id, principal, method, path, model, status, duration_ms, stream,
  prompt_tokens, completion_tokens, cost_micro_usd, estimated, upstream
FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[], $8::int8[], $9::bool[],
  $10::int8[], $11::int8[], $12::int8[], $13::bool[], $14::text[])
  WITH ORDINALITY AS u(ts, request_id, principal, method, path, model, status, duration_ms, stream,
    prompt_tokens, completion_tokens, cost_micro_usd, estimated, upstream, ord)
ORDER BY ord),
${rowUpsertCtes(15)}
SELECT 1`;

function toKey(row: KeyRow | undefined): StoredKey | null {
  if (row === undefined) return null;
  return {
    id: row.id,
    name: row.name,
    notes: row.notes,
    prefix: row.prefix,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    disabled: row.disabled,
    policy: row.policy,
  };
}


export class PostgresStore implements Store {
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema?: string,
    private readonly log: (msg: string) => void = () => undefined,
  ) {}

  private async query<R extends pg.QueryResultRow>(query: string | pg.QueryConfig, values?: unknown[], keyName?: string): Promise<pg.QueryResult<R>> {
    try {
      return typeof query === 'string' ? await this.pool.query<R>(query, values) : await this.pool.query<R>({ ...query, values });
    } catch (err) {
      throw storeError(err, keyName);
    }
  }

  /** A client of the pool for several statements in a row; an unreachable database is StoreUnavailable. */
  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw storeError(err);
    }
  }

  /** Applies the migrations this database does not have yet (safe to call from several instances at once). */
  async migrate(): Promise<void> {
    const client = await this.connect();
    try {
      const { applied, unknown } = await migrate(client, this.schema);
      if (applied.length > 0) this.log(`Postgres store: applied migration${applied.length > 1 ? 's' : ''} ${applied.join(', ')}`);
      if (unknown.length > 0) {
        const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
        this.log(`Postgres store: the database has migration${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} from a newer release (this one knows up to ${latest})`);
      }
    } catch (err) {
      throw storeError(err);
    } finally {
      client.release();
    }
  }

  async createKey(key: NewKey): Promise<StoredKey> {
    const { rows } = await this.query<KeyRow>(
      `INSERT INTO api_keys (id, name, notes, hash, prefix, created_at, updated_at, expires_at, disabled, policy)
       VALUES ($1, $2, $3, $4, $5, $6, $6, $7, false, $8) RETURNING ${KEY_COLUMNS}`,
      [key.id, key.name, key.notes, key.hash, key.prefix, key.now, key.expiresAt, JSON.stringify(key.policy)],
      key.name,
    );
    return toKey(rows[0])!;
  }

  async findKeyByHash(hash: string): Promise<StoredKey | null> {
    return toKey((await this.query<KeyRow>(KEY_BY_HASH, [hash])).rows[0]);
  }

  async getKey(idOrName: string): Promise<StoredKey | null> {
    return toKey((await this.query<KeyRow>(KEY_BY_ID_OR_NAME, [idOrName])).rows[0]);
  }

  async listKeys(): Promise<StoredKey[]> {
    return (await this.query<KeyRow>(LIST_KEYS)).rows.map((row) => toKey(row)!);
  }

  async updateKey(id: string, patch: KeyPatch, now: number): Promise<StoredKey | null> {
    const values: unknown[] = [id, now];
    const sets = ['updated_at = $2'];
    const set = (column: string, value: unknown) => {
      values.push(value);
      sets.push(`${column} = $${values.length}`);
    };
    if (patch.name !== undefined) set('name', patch.name);
    if (patch.notes !== undefined) set('notes', patch.notes);
    if (patch.expiresAt !== undefined) set('expires_at', patch.expiresAt);
    if (patch.disabled !== undefined) set('disabled', patch.disabled);
    if (patch.policy !== undefined) set('policy', JSON.stringify(patch.policy));
    const { rows } = await this.query<KeyRow>(`UPDATE api_keys SET ${sets.join(', ')} WHERE id = $1 RETURNING ${KEY_COLUMNS}`, values, patch.name);
    return toKey(rows[0]);
  }

  async setKeySecret(id: string, hash: string, prefix: string, now: number): Promise<StoredKey | null> {
    const { rows } = await this.query<KeyRow>(
      `UPDATE api_keys SET hash = $2, prefix = $3, updated_at = $4 WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
      [id, hash, prefix, now],
    );
    return toKey(rows[0]);
  }

  async deleteKey(id: string): Promise<boolean> {
    return ((await this.query('DELETE FROM api_keys WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async recordUsage(records: readonly UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    const columns: unknown[][] = Array.from({ length: 14 }, () => new Array<unknown>(records.length));
    records.forEach((r, i) => {
      const row = [r.ts, r.requestId, r.principal, r.method, r.path, r.model, r.status, r.durationMs, r.stream,
        r.promptTokens, r.completionTokens, r.costMicroUsd, r.estimated, r.upstream ?? null];
      for (let c = 0; c < row.length; c++) columns[c]![i] = row[c];
    });
    await this.query(INSERT_USAGE, [...columns, ...rowUpsertParams(groupUsage(records))]);
  }

  async usage(query: UsageQuery): Promise<{ total: UsageTotals; byPrincipal: Record<string, UsageTotals> }> {
    const filters: string[] = [];
    const values: unknown[] = [query.sinceMs, query.untilMs];
    if (query.principal !== undefined) filters.push(`AND principal = $${values.push(query.principal)}`);
    if (query.upstream !== undefined) filters.push(`AND upstream = $${values.push(query.upstream)}`);
    const { rows } = await this.query<UsageRow>(`SELECT ${USAGE_COLUMNS} ${filters.join(' ')} ${USAGE_GROUPS}`, values);
    return sumUsageGroups(rows);
  }

  async recordRefusals(refusals: readonly RefusalRecord[]): Promise<void> {
    if (refusals.length === 0) return;
    await this.query(UPSERT_ROWS, rowUpsertParams(groupRefusals(refusals)));
  }

  async rollups(query: RollupQuery): Promise<RollupResult> {
    const reads = rollupReads(query);
    // Rows as arrays: no object per row.
    const arrays = (read: { text: string; values: unknown[] }) => this.pool.query<unknown[]>({ ...read, rowMode: 'array' });
    try {
      const [buckets, byModel] = await Promise.all([arrays(reads.buckets), arrays(reads.byModel)]);
      return toResult(buckets.rows, byModel.rows);
    } catch (err) {
      throw storeError(err);
    }
  }

  async lastUsed(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const row of (await this.query<{ principal: string; ts: number }>(LAST_USED_SQL)).rows) out[row.principal] = row.ts;
    return out;
  }

  /** The records and the rollup rows past their cutoffs (rollups.ts, pruneCutoffs) in one transaction. */
  async pruneUsage(beforeMs: number): Promise<number> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      const removed = (await client.query('DELETE FROM usage_events WHERE ts < $1', [beforeMs])).rowCount ?? 0;
      const newest = (await client.query<{ newest: number | null }>(NEWEST_MINUTE_SQL)).rows[0]!.newest;
      const cutoffs = pruneCutoffs(beforeMs, newest);
      for (const prune of PRUNE_ROLLUPS) await client.query(prune.sql, [cutoffs[prune.granularity]]);
      await client.query('COMMIT');
      return removed;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw storeError(err);
    } finally {
      client.release();
    }
  }

  async priceOverrides(): Promise<Record<string, ModelPrice>> {
    const { rows } = await this.query<{ model: string; input: number; cached_input: number; output: number }>(
      'SELECT model, input, cached_input, output FROM model_prices ORDER BY position',
    );
    const out: Record<string, ModelPrice> = {};
    for (const row of rows) out[row.model] = { input: row.input, cachedInput: row.cached_input, output: row.output };
    return out;
  }

  async setPriceOverride(model: string, price: ModelPrice | null): Promise<void> {
    if (price === null) await this.query('DELETE FROM model_prices WHERE model = $1', [model]);
    else {
      await this.query(
        `INSERT INTO model_prices (model, input, cached_input, output) VALUES ($1, $2, $3, $4)
         ON CONFLICT (model) DO UPDATE SET input = excluded.input, cached_input = excluded.cached_input, output = excluded.output`,
        [model, price.input, price.cachedInput, price.output],
      );
    }
  }

  /** Copies a SQLite install's keys, prices and usage history here, idempotently (postgres-import.ts). */
  async importSqlite(source: SqliteDatabase, options: ImportOptions): Promise<ImportReport> {
    try {
      return await importSqlite(this.pool, source, options);
    } catch (err) {
      throw storeError(err);
    }
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/**
 * Connects to Postgres, applies the migrations and returns the store. Rejects when the server
 * cannot be reached (within `connectTimeoutMs`) or refuses us, with a message that names
 * PROXYGPT_DATABASE_URL and shows the URL with its password redacted.
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const log = options.log ?? (() => undefined);
  if (options.schema !== undefined) assertSchemaName(options.schema);
  const startup = splitStartupOptions(url);
  const searchPath = options.schema === undefined ? [] : [`-c search_path=${options.schema}`];
  const startupOptions = [startup.options, ...searchPath].filter((o) => o !== undefined && o !== '').join(' ');
  const pool = new pg.Pool({
    connectionString: startup.url,
    ...(startupOptions === '' ? {} : { options: startupOptions }),
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    query_timeout: options.queryTimeoutMs ?? 30_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: options.applicationName ?? 'proxygpt',
    types: typesWithNumbers,
  });
  // An idle connection that breaks (server restart, network) is reported here; without a listener
  // it would crash the process. The next query opens a new connection.
  pool.on('error', (err) => log(`Postgres store: an idle connection was lost (${err.message})`));
  const store = new PostgresStore(pool, options.schema, log);
  try {
    await store.migrate();
    return store;
  } catch (err) {
    await store.close().catch(() => undefined);
    const where = redactDatabaseUrl(url);
    const reason = describeError(err);
    // No `cause`: a driver error may carry the URL itself (with its password) in its properties.
    if (err instanceof StoreUnavailable || isConnectionError(err)) {
      throw new StoreUnavailable(`PROXYGPT_DATABASE_URL: cannot reach Postgres at ${where}: ${reason}`);
    }
    throw new Error(`PROXYGPT_DATABASE_URL: preparing the Postgres store at ${where} failed: ${reason}`);
  }
}
