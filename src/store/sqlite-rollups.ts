/**
 * The SQLite store's usage rollups (see rollups.ts for the rows): the two tables, created (and
 * back-filled once from the usage records already there) by `migrateRollups`, the upserts that
 * `recordUsage` and `recordRefusals` run inside their transaction, and the reads (`rollups`,
 * `lastUsed`) and deletes (pruneUsage) over them. WITHOUT ROWID tables keyed by bucket first, so
 * a range of buckets is one contiguous stretch of the table.
 */
import type { SqliteDatabase } from './sqlite-db.js';
import type { RollupGranularity, RollupQuery, RollupResult } from '../contract.js';
import {
  BUCKET_MS, KEY_COLUMNS, ROLLUP_TABLES, SUM_COLUMNS, groupValues, pruneCutoffs, recordsAsRollupSelect, sumsSelect, toResult,
  type BatchGroups, type SumsRow,
} from './rollups.js';

const GRANULARITIES: readonly RollupGranularity[] = ['minute', 'hour'];

function tableSql(table: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${table} (
  bucket INTEGER NOT NULL, principal TEXT NOT NULL, model TEXT NOT NULL, has_model INTEGER NOT NULL,
  status INTEGER NOT NULL, refused INTEGER NOT NULL,
  ${SUM_COLUMNS.map((c) => `${c} INTEGER NOT NULL`).join(', ')},
  PRIMARY KEY (${KEY_COLUMNS.join(', ')})
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${table}_by_principal ON ${table} (principal, bucket);`;
}

/**
 * Creates the rollup tables that are missing and fills each one just created from the usage
 * records already in the database (a file from before rollups), once: a table that exists is
 * never back-filled again. Call it inside the migration's write transaction (BEGIN IMMEDIATE), so
 * two processes opening the same file cannot both see a table missing and both fill it.
 */
export function migrateRollups(db: SqliteDatabase): void {
  const exists = db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?");
  for (const granularity of GRANULARITIES) {
    const table = ROLLUP_TABLES[granularity];
    const created = exists.get(table)!.n === 0;
    db.exec(tableSql(table));
    if (!created) continue;
    db.exec(
      `INSERT INTO ${table} (${KEY_COLUMNS.join(', ')}, ${SUM_COLUMNS.join(', ')})
       SELECT ${recordsAsRollupSelect(BUCKET_MS[granularity])} FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6`,
    );
  }
}

type Params = Array<string | number>;

function prepareUpsert(db: SqliteDatabase, table: string) {
  const columns = [...KEY_COLUMNS, ...SUM_COLUMNS];
  return db.prepare<Params>(
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
     ON CONFLICT (${KEY_COLUMNS.join(', ')}) DO UPDATE SET ${SUM_COLUMNS.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
  );
}

function prepareReads(db: SqliteDatabase, table: string) {
  const sums = sumsSelect();
  const range = 'bucket >= ? AND bucket < ?';
  return {
    // Rows as arrays (raw): no object per row.
    buckets: db.prepare<[number, number], SumsRow>(`SELECT bucket AS ts, principal, ${sums} FROM ${table} WHERE ${range} GROUP BY bucket, principal ORDER BY bucket, principal`).raw(),
    bucketsOf: db.prepare<[string, number, number], SumsRow>(
      `SELECT bucket AS ts, principal, ${sums} FROM ${table} WHERE principal = ? AND ${range} GROUP BY bucket ORDER BY bucket`,
    ).raw(),
    byModel: db.prepare<[number, number], SumsRow>(`SELECT model, has_model, ${sums} FROM ${table} WHERE ${range} GROUP BY model, has_model ORDER BY has_model DESC, model`).raw(),
    byModelOf: db.prepare<[string, number, number], SumsRow>(
      `SELECT model, has_model, ${sums} FROM ${table} WHERE principal = ? AND ${range} GROUP BY model, has_model ORDER BY has_model DESC, model`,
    ).raw(),
    prune: db.prepare<[number]>(`DELETE FROM ${table} WHERE bucket < ?`),
  };
}

export type SqliteRollups = ReturnType<typeof prepareRollups>;

/** The rollup statements on a migrated database. */
export function prepareRollups(db: SqliteDatabase) {
  const upsert = { minute: prepareUpsert(db, ROLLUP_TABLES.minute), hour: prepareUpsert(db, ROLLUP_TABLES.hour) };
  const reads = { minute: prepareReads(db, ROLLUP_TABLES.minute), hour: prepareReads(db, ROLLUP_TABLES.hour) };
  const newestMinute = db.prepare<[], { newest: number | null }>(`SELECT max(bucket) AS newest FROM ${ROLLUP_TABLES.minute}`);
  // A loose index scan of usage_events (principal, ts): each principal found by one index seek.
  const lastUsed = db.prepare<[], { principal: string; ts: number }>(
    `WITH RECURSIVE p(principal) AS (
       SELECT min(principal) FROM usage_events
       UNION ALL SELECT (SELECT min(principal) FROM usage_events WHERE principal > p.principal) FROM p WHERE p.principal IS NOT NULL
     )
     SELECT principal, (SELECT max(ts) FROM usage_events u WHERE u.principal = p.principal) AS ts FROM p WHERE principal IS NOT NULL`,
  );
  return {
    /** Adds a batch's groups to both tables (run it inside the batch's transaction). */
    add(groups: BatchGroups): void {
      for (const g of GRANULARITIES) for (const row of groups[g]) upsert[g].run(...groupValues(row));
    },
    read(query: RollupQuery): RollupResult {
      const r = reads[query.granularity];
      if (query.principal === undefined) return toResult(r.buckets.all(query.sinceMs, query.untilMs), r.byModel.all(query.sinceMs, query.untilMs));
      return toResult(r.bucketsOf.all(query.principal, query.sinceMs, query.untilMs), r.byModelOf.all(query.principal, query.sinceMs, query.untilMs));
    },
    lastUsed(): Record<string, number> {
      const out: Record<string, number> = {};
      for (const row of lastUsed.all()) out[row.principal] = row.ts;
      return out;
    },
    /** Deletes the rows pruneUsage(beforeMs) no longer keeps (see pruneCutoffs); run it inside the prune's transaction. */
    prune(beforeMs: number): void {
      const cutoffs = pruneCutoffs(beforeMs, newestMinute.get()!.newest);
      for (const g of GRANULARITIES) reads[g].prune.run(cutoffs[g]);
    },
  };
}
