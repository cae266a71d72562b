/**
 * The Postgres store's usage rollups (see rollups.ts for the rows): the migration that creates the
 * two tables and back-fills them from the usage records already there, the upserts (one
 * `INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x` per table, a row per distinct group of
 * the batch, in a fixed order so that concurrent instances lock rows in the same order), and the
 * reads. An upsert is atomic per row, so instances writing the same rows at once add up exactly.
 * Text keys are COLLATE "C": byte order, as SQLite compares, and cheaper comparisons.
 */
import type { RollupGranularity, RollupQuery } from '../contract.js';
import {
  BUCKET_MS, KEY_COLUMNS, ROLLUP_TABLES, SUM_COLUMNS, groupValues, recordsAsRollupSelect, sumsSelect,
  type BatchGroups,
} from './rollups.js';

const GRANULARITIES: readonly RollupGranularity[] = ['minute', 'hour'];
const int8 = (sum: string) => `${sum}::int8`;
const KEY_LIST = KEY_COLUMNS.join(', ');
const ALL_COLUMNS = [...KEY_COLUMNS, ...SUM_COLUMNS].join(', ');
const KEY_TYPES = ['int8', 'text', 'text', 'int4', 'int4', 'int4'];
const COLUMN_TYPES = [...KEY_TYPES, ...SUM_COLUMNS.map(() => 'int8')];

function tableSql(table: string): string {
  return `
CREATE TABLE ${table} (
  bucket BIGINT NOT NULL, principal TEXT COLLATE "C" NOT NULL, model TEXT COLLATE "C" NOT NULL, has_model INTEGER NOT NULL,
  status INTEGER NOT NULL, refused INTEGER NOT NULL,
  ${SUM_COLUMNS.map((c) => `${c} BIGINT NOT NULL`).join(', ')},
  PRIMARY KEY (${KEY_LIST})
);
CREATE INDEX ${table}_by_principal ON ${table} (principal, bucket);`;
}

/** What `ON CONFLICT` adds to an existing row (`t`: the table's alias). */
const ADD_TO_ROW = `ON CONFLICT (${KEY_LIST}) DO UPDATE SET ${SUM_COLUMNS.map((c) => `${c} = t.${c} + excluded.${c}`).join(', ')}`;

/** Migration 3: the rollup tables, filled from the usage records already in the database. */
export const ROLLUPS_MIGRATION_SQL = GRANULARITIES.map((g) => {
  const table = ROLLUP_TABLES[g];
  return `${tableSql(table)}
INSERT INTO ${table} (${ALL_COLUMNS}) SELECT ${recordsAsRollupSelect(BUCKET_MS[g], int8)} FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6;`;
}).join('\n');

/**
 * The CTEs that add the rows a statement's `source` (a CTE returning usage_events columns) inserted
 * to both tables, grouped and sorted by key: `WITH source AS (INSERT … RETURNING …), <these> SELECT …`.
 */
export function rollupsOfInsertedCtes(source: string): string {
  return GRANULARITIES.map(
    (g) => `rollup_${g} AS (
  INSERT INTO ${ROLLUP_TABLES[g]} AS t (${ALL_COLUMNS})
  SELECT ${recordsAsRollupSelect(BUCKET_MS[g], int8)} FROM ${source} GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
  ${ADD_TO_ROW})`,
  ).join(',\n');
}

/** The upsert CTEs of pre-grouped rows, one array parameter per column from `$first` on (minute's, then hour's). */
export function groupUpsertCtes(first: number): string {
  return GRANULARITIES.map((g, gi) => {
    const start = first + gi * COLUMN_TYPES.length;
    const arrays = COLUMN_TYPES.map((type, i) => `$${start + i}::${type}[]`).join(', ');
    return `rollup_${g} AS (INSERT INTO ${ROLLUP_TABLES[g]} AS t (${ALL_COLUMNS}) SELECT * FROM unnest(${arrays}) ${ADD_TO_ROW})`;
  }).join(',\n');
}

/** The parameters of groupUpsertCtes: one array per column, minute's columns then hour's. */
export function groupUpsertParams(groups: BatchGroups): unknown[][] {
  const params: unknown[][] = [];
  for (const g of GRANULARITIES) {
    const columns = COLUMN_TYPES.map(() => new Array<unknown>(groups[g].length));
    groups[g].forEach((row, i) => groupValues(row).forEach((v, c) => (columns[c]![i] = v)));
    params.push(...columns);
  }
  return params;
}

/** The refusals' statement: only the rollups. */
export const UPSERT_GROUPS = `WITH ${groupUpsertCtes(1)} SELECT 1`;

/** The two reads of `rollups(query)`: buckets per (ts, principal) and sums per model, in byte order. */
export function rollupReads(query: RollupQuery): { buckets: { text: string; values: unknown[] }; byModel: { text: string; values: unknown[] } } {
  const table = ROLLUP_TABLES[query.granularity];
  const values: unknown[] = [query.sinceMs, query.untilMs];
  const ofPrincipal = query.principal === undefined ? '' : `AND principal = $${values.push(query.principal)}`;
  const where = `FROM ${table} WHERE bucket >= $1 AND bucket < $2 ${ofPrincipal}`;
  const sums = sumsSelect(int8);
  return {
    buckets: { text: `SELECT bucket AS ts, principal, ${sums} ${where} GROUP BY bucket, principal ORDER BY bucket, principal COLLATE "C"`, values },
    byModel: { text: `SELECT model, has_model, ${sums} ${where} GROUP BY model, has_model ORDER BY has_model DESC, model COLLATE "C"`, values },
  };
}

/** A loose index scan of usage_events (principal, ts): each principal and its newest record by one index seek. */
export const LAST_USED = `
WITH RECURSIVE p(principal) AS (
  SELECT min(principal) FROM usage_events
  UNION ALL SELECT (SELECT min(principal) FROM usage_events WHERE principal > p.principal) FROM p WHERE p.principal IS NOT NULL
)
SELECT principal, (SELECT max(ts) FROM usage_events u WHERE u.principal = p.principal) AS ts FROM p WHERE principal IS NOT NULL`;

export const NEWEST_MINUTE = `SELECT max(bucket) AS newest FROM ${ROLLUP_TABLES.minute}`;
export const PRUNE_ROLLUPS: Record<RollupGranularity, string> = {
  minute: `DELETE FROM ${ROLLUP_TABLES.minute} WHERE bucket < $1`,
  hour: `DELETE FROM ${ROLLUP_TABLES.hour} WHERE bucket < $1`,
};
