/**
 * SQLite store: stored keys (hash only), usage records and price overrides in the embedded
 * database file (see sqlite-db.ts for how it is opened, open.ts for the factory that migrates it).
 * The driver's errors that mean something to callers become the store's domain errors
 * (errors.ts): a key name already used is KeyNameTaken. Usage rollups (per minute and hour, for the
 * dashboard) live in sqlite-rollups.ts and are written in the same transaction as the records.
 */
import type { SqliteDatabase } from './sqlite-db.js';
import { KeyNameTaken, StoreUnavailable } from './errors.js';
import { sumUsageGroups } from './usage-totals.js';
import { SqliteKeyCache } from './sqlite-key-cache.js';
import { migrateRollups, prepareRollups } from './sqlite-rollups.js';
import { groupRefusals, groupUsage, type BatchRows } from './rollups.js';
import type {
  KeyPatch, KeyPolicy, ModelPrice, NewKey, RefusalRecord, RollupQuery, RollupResult, Store, StoredKey, UsageQuery, UsageRecord, UsageTotals,
} from '../contract.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage_events (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  principal TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  model TEXT,
  status INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  stream INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cost_micro_usd INTEGER NOT NULL DEFAULT 0,
  estimated INTEGER NOT NULL DEFAULT 0,
  upstream TEXT
);
CREATE INDEX IF NOT EXISTS usage_events_by_time ON usage_events (ts);
CREATE INDEX IF NOT EXISTS usage_events_by_principal ON usage_events (principal, ts);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  notes TEXT NOT NULL DEFAULT '',
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  disabled INTEGER NOT NULL DEFAULT 0,
  policy TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS model_prices (
  model TEXT PRIMARY KEY,
  input REAL NOT NULL,
  cached_input REAL NOT NULL,
  output REAL NOT NULL
);
`;

/** Columns added since the first schema, for a database file made before them (no versions: each is looked for). */
const ADDED_COLUMNS = [{ table: 'usage_events', column: 'upstream', sql: 'ALTER TABLE usage_events ADD COLUMN upstream TEXT' }];
const INDEXES_OF_ADDED = 'CREATE INDEX IF NOT EXISTS usage_events_by_upstream ON usage_events (upstream, ts);';

interface KeyRow {
  id: string;
  name: string;
  notes: string;
  prefix: string;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  disabled: number;
  policy: string;
}

const KEY_COLUMNS = 'id, name, notes, prefix, created_at, updated_at, expires_at, disabled, policy';

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
    disabled: row.disabled === 1,
    policy: JSON.parse(row.policy) as KeyPolicy,
  };
}

/** SQLite's "cannot write now" (locked past the busy timeout, disk full or read-only, I/O): worth a retry. */
const TRANSIENT = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN)/;

function unavailable(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !TRANSIENT.test(code)) return err;
  return new StoreUnavailable(`the SQLite database cannot be written now (${code})`, { cause: err });
}


/** The driver's error for a name used by another key (names are UNIQUE), as a domain error. */
function keyNameTaken(err: unknown, name: string): unknown {
  const e = err as { code?: unknown; message?: unknown } | null;
  const isNameClash = e?.code === 'SQLITE_CONSTRAINT_UNIQUE' && String(e.message).includes('api_keys.name');
  return isNameClash ? new KeyNameTaken(name) : err;
}

function prepareStatements(db: SqliteDatabase) {
  const stmt = {
    insertUsage: db.prepare<[number, string, string, string, string, string | null, number, number, number, number, number, number, number, string | null]>(
      `INSERT INTO usage_events (ts, request_id, principal, method, path, model, status, duration_ms, stream,
         prompt_tokens, completion_tokens, cost_micro_usd, estimated, upstream)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    keyByHash: db.prepare<[string], KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE hash = ?`),
    keyByIdOrName: db.prepare<[string, string, string], KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1`,
    ),
    keyById: db.prepare<[string], KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`),
    listKeys: db.prepare<[], KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id`),
    insertKey: db.prepare(
      `INSERT INTO api_keys (id, name, notes, hash, prefix, created_at, updated_at, expires_at, disabled, policy)
       VALUES (@id, @name, @notes, @hash, @prefix, @now, @now, @expiresAt, 0, @policy)`,
    ),
    setSecret: db.prepare<[string, string, number, string]>('UPDATE api_keys SET hash = ?, prefix = ?, updated_at = ? WHERE id = ?'),
    deleteKey: db.prepare<[string]>('DELETE FROM api_keys WHERE id = ?'),
    usage: db.prepare<[number, number], { principal: string; status: number; n: number; p: number; c: number; cost: number }>(
      `SELECT principal, status, count(*) AS n, sum(prompt_tokens) AS p, sum(completion_tokens) AS c, sum(cost_micro_usd) AS cost
       FROM usage_events WHERE ts >= ? AND ts < ? GROUP BY principal, status`,
    ),
    usageOfUpstream: db.prepare<[number, number, string], { principal: string; status: number; n: number; p: number; c: number; cost: number }>(
      `SELECT principal, status, count(*) AS n, sum(prompt_tokens) AS p, sum(completion_tokens) AS c, sum(cost_micro_usd) AS cost
       FROM usage_events WHERE ts >= ? AND ts < ? AND upstream = ? GROUP BY principal, status`,
    ),
    prices: db.prepare<[], { model: string; input: number; cached_input: number; output: number }>('SELECT * FROM model_prices'),
    setPrice: db.prepare(
      `INSERT INTO model_prices (model, input, cached_input, output) VALUES (@model, @input, @cachedInput, @output)
       ON CONFLICT (model) DO UPDATE SET input = excluded.input, cached_input = excluded.cached_input, output = excluded.output`,
    ),
    deletePrice: db.prepare<[string]>('DELETE FROM model_prices WHERE model = ?'),
    pruneUsage: db.prepare<[number]>('DELETE FROM usage_events WHERE ts < ?'),
    ping: db.prepare('SELECT 1'),
    dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
  };
  const rollups = prepareRollups(db);
  const insertMany = db.transaction((records: readonly UsageRecord[], groups: BatchRows) => {
    // Positional parameters: binding by name costs a third more per row.
    for (const r of records) {
      stmt.insertUsage.run(
        r.ts, r.requestId, r.principal, r.method, r.path, r.model, r.status, r.durationMs, r.stream ? 1 : 0,
        r.promptTokens, r.completionTokens, r.costMicroUsd, r.estimated ? 1 : 0, r.upstream ?? null,
      );
    }
    rollups.add(groups);
  });
  const addRefusals = db.transaction((groups: BatchRows) => rollups.add(groups));
  const prune = db.transaction((beforeMs: number) => {
    const removed = stmt.pruneUsage.run(beforeMs).changes;
    rollups.prune(beforeMs);
    return removed;
  });
  return { ...stmt, rollups, insertMany, addRefusals, prune };
}

/**
 * The store on an open database connection. The constructor touches nothing: `migrate()` creates
 * the tables (openStore calls it), and the statements are prepared on first use, once they exist.
 */
export class SqliteStore implements Store {
  private prepared: ReturnType<typeof prepareStatements> | undefined;
  /** Keys found by hash, kept while the database is unchanged (see sqlite-key-cache.ts). */
  private readonly keyCache = new SqliteKeyCache(() => this.stmt.dataVersion.get()!);

  constructor(private readonly db: SqliteDatabase) {}

  private get stmt(): ReturnType<typeof prepareStatements> {
    return (this.prepared ??= prepareStatements(this.db));
  }

  /** In one write transaction (BEGIN IMMEDIATE): processes opening the file at once take turns. */
  async migrate(): Promise<void> {
    this.db.transaction(() => {
      this.db.exec(SCHEMA);
      for (const added of ADDED_COLUMNS) {
        const columns = this.db.prepare<[], { name: string }>(`PRAGMA table_info(${added.table})`).all();
        if (!columns.some((c) => c.name === added.column)) this.db.exec(added.sql);
      }
      this.db.exec(INDEXES_OF_ADDED);
      migrateRollups(this.db);
    }).immediate();
  }

  async createKey(key: NewKey): Promise<StoredKey> {
    this.keyCache.clear();
    try {
      this.stmt.insertKey.run({ ...key, policy: JSON.stringify(key.policy) });
    } catch (err) {
      throw keyNameTaken(err, key.name);
    }
    return toKey(this.stmt.keyById.get(key.id))!;
  }

  async findKeyByHash(hash: string): Promise<StoredKey | null> {
    return this.keyCache.find(hash, () => toKey(this.stmt.keyByHash.get(hash)));
  }

  async getKey(idOrName: string): Promise<StoredKey | null> {
    return toKey(this.stmt.keyByIdOrName.get(idOrName, idOrName, idOrName));
  }

  async listKeys(): Promise<StoredKey[]> {
    return this.stmt.listKeys.all().map((row) => toKey(row)!);
  }

  async updateKey(id: string, patch: KeyPatch, now: number): Promise<StoredKey | null> {
    this.keyCache.clear();
    const sets: string[] = ['updated_at = @now'];
    const params: Record<string, unknown> = { id, now };
    if (patch.name !== undefined) (sets.push('name = @name'), (params.name = patch.name));
    if (patch.notes !== undefined) (sets.push('notes = @notes'), (params.notes = patch.notes));
    if (patch.expiresAt !== undefined) (sets.push('expires_at = @expiresAt'), (params.expiresAt = patch.expiresAt));
    if (patch.disabled !== undefined) (sets.push('disabled = @disabled'), (params.disabled = patch.disabled ? 1 : 0));
    if (patch.policy !== undefined) (sets.push('policy = @policy'), (params.policy = JSON.stringify(patch.policy)));
    try {
      this.db.prepare(`UPDATE api_keys SET ${sets.join(', ')} WHERE id = @id`).run(params);
    } catch (err) {
      throw keyNameTaken(err, patch.name ?? '');
    }
    return toKey(this.stmt.keyById.get(id));
  }

  async setKeySecret(id: string, hash: string, prefix: string, now: number): Promise<StoredKey | null> {
    this.keyCache.clear();
    this.stmt.setSecret.run(hash, prefix, now, id);
    return toKey(this.stmt.keyById.get(id));
  }

  async deleteKey(id: string): Promise<boolean> {
    this.keyCache.clear();
    return this.stmt.deleteKey.run(id).changes > 0;
  }

  async recordUsage(records: readonly UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    const groups = groupUsage(records);
    try {
      this.stmt.insertMany.immediate(records, groups);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async recordRefusals(refusals: readonly RefusalRecord[]): Promise<void> {
    if (refusals.length === 0) return;
    const groups = groupRefusals(refusals);
    try {
      this.stmt.addRefusals.immediate(groups);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async rollups(query: RollupQuery): Promise<RollupResult> {
    return this.stmt.rollups.read(query);
  }

  async lastUsed(): Promise<Record<string, number>> {
    return this.stmt.rollups.lastUsed();
  }

  async usage(query: UsageQuery): Promise<{ total: UsageTotals; byPrincipal: Record<string, UsageTotals> }> {
    const rows = query.upstream === undefined ? this.stmt.usage.all(query.sinceMs, query.untilMs) : this.stmt.usageOfUpstream.all(query.sinceMs, query.untilMs, query.upstream);
    return sumUsageGroups(rows, query.principal);
  }

  async pruneUsage(beforeMs: number): Promise<number> {
    return this.stmt.prune.immediate(beforeMs);
  }

  async priceOverrides(): Promise<Record<string, ModelPrice>> {
    const out: Record<string, ModelPrice> = {};
    for (const row of this.stmt.prices.all()) out[row.model] = { input: row.input, cachedInput: row.cached_input, output: row.output };
    return out;
  }

  async setPriceOverride(model: string, price: ModelPrice | null): Promise<void> {
    if (price === null) this.stmt.deletePrice.run(model);
    else this.stmt.setPrice.run({ model, ...price });
  }

  async ping(): Promise<void> {
    this.stmt.ping.get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
