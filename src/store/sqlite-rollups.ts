/**
 * The SQLite store's usage rollups (see rollups.ts for the tables): created (and back-filled once
 * from the usage records already there) by `migrateRollups`, the upserts that `recordUsage` and
 * `recordRefusals` run inside their transaction, and the reads (`rollups`, `lastUsed`) and
 * deletes (pruneUsage) over them. WITHOUT ROWID tables keyed by bucket first, so a range of
 * buckets is one contiguous stretch of a table.
 */
import type { SqliteDatabase } from './sqlite-db.js';
import type { RollupGranularity, RollupQuery, RollupResult } from '../contract.js';
import {
  LAST_USED_SQL, NEWEST_MINUTE_SQL, ROLLUP_TABLES, TEXT_COLUMNS, BUCKET_MS, pruneCutoffs, recordsAsRollupSelect, rollupReadPlan, rollupReadSql, rollupTable, rowsFromDetailSelect, toResult,
  type BatchRows, type RollupTable, type SumsRow,
} from './rollups.js';

function tableSql(t: RollupTable): string {
  const columns = [...t.key, ...t.sums].map((c) => `${c} ${TEXT_COLUMNS.has(c) ? 'TEXT' : 'INTEGER'} NOT NULL`);
  const byPrincipal = t.key.includes('principal') ? `CREATE INDEX IF NOT EXISTS ${t.name}_of_principal ON ${t.name} (principal, bucket);` : '';
  return `CREATE TABLE IF NOT EXISTS ${t.name} (${columns.join(', ')}, PRIMARY KEY (${t.key.join(', ')})) WITHOUT ROWID; ${byPrincipal}`;
}

/**
 * Creates the rollup tables that are missing and fills each one just created, once: a detail
 * table from the usage records already in the database (a file from before rollups), the folded
 * ones from their detail table. A table that exists is never back-filled again. Call it inside
 * the migration's write transaction (BEGIN IMMEDIATE), so two processes opening the same file
 * cannot both see a table missing and both fill it.
 */
export function migrateRollups(db: SqliteDatabase): void {
  const exists = db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?");
  for (const t of ROLLUP_TABLES) {
    const created = exists.get(t.name)!.n === 0;
    db.exec(tableSql(t));
    if (!created) continue;
    const columns = [...t.key, ...t.sums].join(', ');
    const source =
      t.kind === 'detail'
        ? recordsAsRollupSelect(BUCKET_MS[t.granularity], 'usage_events')
        : rowsFromDetailSelect(t, rollupTable(t.granularity, 'detail').name);
    db.exec(`INSERT INTO ${t.name} (${columns}) ${source}`);
  }
}

function prepareUpsert(db: SqliteDatabase, t: RollupTable) {
  const columns = [...t.key, ...t.sums];
  return db.prepare<Array<string | number>>(
    `INSERT INTO ${t.name} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
     ON CONFLICT (${t.key.join(', ')}) DO UPDATE SET ${t.sums.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
  );
}

const DIALECT = { param: () => '?', cast: (s: string) => s, byteOrder: '' };

function prepareReads(db: SqliteDatabase, granularity: RollupGranularity) {
  // Rows as arrays (raw): no object per row.
  const of = (ofPrincipal: boolean) => {
    const sql = rollupReadSql(granularity, ofPrincipal, DIALECT);
    const stepped = rollupReadSql(granularity, ofPrincipal, DIALECT, true);
    return {
      buckets: db.prepare<unknown[], SumsRow>(sql.buckets).raw(),
      steppedBuckets: db.prepare<unknown[], SumsRow>(stepped.buckets).raw(),
      byModel: db.prepare<unknown[], SumsRow>(sql.byModel).raw(),
    };
  };
  return { all: of(false), ofPrincipal: of(true) };
}

/** The rollup statements on a migrated database. */
export function prepareRollups(db: SqliteDatabase) {
  const upserts = new Map(ROLLUP_TABLES.map((t) => [t.name, prepareUpsert(db, t)]));
  const prunes = ROLLUP_TABLES.map((t) => ({ granularity: t.granularity, run: db.prepare<[number]>(`DELETE FROM ${t.name} WHERE bucket < ?`) }));
  const reads = { minute: prepareReads(db, 'minute'), hour: prepareReads(db, 'hour') };
  const newestMinute = db.prepare<[], { newest: number | null }>(NEWEST_MINUTE_SQL);
  const lastUsed = db.prepare<[], { principal: string; ts: number }>(LAST_USED_SQL);
  return {
    /** Adds a batch's rows to every table (run it inside the batch's transaction). */
    add(batch: BatchRows): void {
      for (const { table, rows } of batch) {
        const upsert = upserts.get(table.name)!;
        for (const row of rows) upsert.run(...row);
      }
    },
    /** Throws a RangeError for a bad stepMs (rollupStep). */
    read(query: RollupQuery): RollupResult {
      const plan = rollupReadPlan(query);
      const r = reads[query.granularity][query.principal === undefined ? 'all' : 'ofPrincipal'];
      return toResult((plan.stepped ? r.steppedBuckets : r.buckets).all(...plan.buckets), r.byModel.all(...plan.byModel));
    },
    lastUsed(): Record<string, number> {
      const out: Record<string, number> = {};
      for (const row of lastUsed.all()) out[row.principal] = row.ts;
      return out;
    },
    /** Deletes the rows pruneUsage(beforeMs) no longer keeps (see pruneCutoffs); run it inside the prune's transaction. */
    prune(beforeMs: number): void {
      const cutoffs = pruneCutoffs(beforeMs, newestMinute.get()!.newest);
      for (const p of prunes) p.run.run(cutoffs[p.granularity]);
    },
  };
}
