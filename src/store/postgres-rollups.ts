/**
 * The Postgres store's usage rollups (see rollups.ts for the tables): the migration that creates
 * them and back-fills them from the usage records already there, the upserts (one
 * `INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x` per table, a row per distinct group of
 * the batch, in a fixed order so that concurrent instances lock rows in the same order), and the
 * reads. An upsert is atomic per row, so instances writing the same rows at once add up exactly.
 * Text keys are COLLATE "C": byte order, as SQLite compares, and cheaper comparisons.
 */
import type { RollupGranularity, RollupQuery } from '../contract.js';
import {
  BUCKET_MS, GRANULARITIES, ROLLUP_TABLES, TEXT_COLUMNS, recordsAsRollupSelect, rollupReadPlan, rollupReadSql, rollupTable, rowsFromDetailSelect,
  type BatchRows, type RollupTable,
} from './rollups.js';

const int8 = (sum: string) => `${sum}::int8`;
const KEY_TYPES: Record<string, string> = { bucket: 'int8', principal: 'text', model: 'text', has_model: 'int4', status: 'int4', refused: 'int4' };
const typeOf = (column: string) => KEY_TYPES[column] ?? 'int8';

function tableSql(t: RollupTable): string {
  const columns = [...t.key, ...t.sums].map((c) => `${c} ${TEXT_COLUMNS.has(c) ? 'TEXT COLLATE "C"' : typeOf(c) === 'int4' ? 'INTEGER' : 'BIGINT'} NOT NULL`);
  const byPrincipal = t.key.includes('principal') ? `\nCREATE INDEX ${t.name}_of_principal ON ${t.name} (principal, bucket);` : '';
  return `CREATE TABLE ${t.name} (${columns.join(', ')}, PRIMARY KEY (${t.key.join(', ')}));${byPrincipal}`;
}

/** What `ON CONFLICT` adds to an existing row (`t`: the table's alias). */
const addToRow = (t: RollupTable) => `ON CONFLICT (${t.key.join(', ')}) DO UPDATE SET ${t.sums.map((c) => `${c} = t.${c} + excluded.${c}`).join(', ')}`;
const insertInto = (t: RollupTable) => `INSERT INTO ${t.name} AS t (${[...t.key, ...t.sums].join(', ')})`;

/** Migration 3: the rollup tables, filled from the usage records already in the database (the folded ones from the detail ones). */
export const ROLLUPS_MIGRATION_SQL = ROLLUP_TABLES.map((t) => {
  const source =
    t.kind === 'detail'
      ? recordsAsRollupSelect(BUCKET_MS[t.granularity], 'usage_events', int8)
      : rowsFromDetailSelect(t, rollupTable(t.granularity, 'detail').name, int8);
  return `${tableSql(t)}\n${insertInto(t)} ${source};`;
}).join('\n');

/**
 * The CTEs that add the records a statement's `source` CTE inserted (RETURNING the usage_events
 * columns) to every table, grouped in SQL: `WITH source AS (INSERT … RETURNING …), <these> SELECT …`.
 */
export function rollupsOfInsertedCtes(source: string): string {
  const details = GRANULARITIES.map((g) => `detail_${g} AS (${recordsAsRollupSelect(BUCKET_MS[g], source, int8)})`);
  const upserts = ROLLUP_TABLES.map((t) => `add_${t.name} AS (${insertInto(t)} ${rowsFromDetailSelect(t, `detail_${t.granularity}`, int8)} ${addToRow(t)})`);
  return [...details, ...upserts].join(',\n');
}

/** The upsert CTEs of a batch's rows (rollups.ts), one array parameter per column from `$first` on, table by table. */
export function rowUpsertCtes(first: number): string {
  let n = first;
  return ROLLUP_TABLES.map((t) => {
    const arrays = [...t.key, ...t.sums].map((c) => `$${n++}::${typeOf(c)}[]`).join(', ');
    return `add_${t.name} AS (${insertInto(t)} SELECT * FROM unnest(${arrays}) ${addToRow(t)})`;
  }).join(',\n');
}

/** The parameters of rowUpsertCtes: one array per column, table by table in ROLLUP_TABLES order. */
export function rowUpsertParams(batch: BatchRows): unknown[][] {
  const params: unknown[][] = [];
  for (const t of ROLLUP_TABLES) {
    const { rows } = batch.find((b) => b.table.name === t.name)!;
    const width = t.key.length + t.sums.length;
    const columns = Array.from({ length: width }, () => new Array<unknown>(rows.length));
    rows.forEach((row, i) => row.forEach((v, c) => (columns[c]![i] = v)));
    params.push(...columns);
  }
  return params;
}

/** The refusals' statement: only the rollups. */
export const UPSERT_ROWS = `WITH ${rowUpsertCtes(1)} SELECT 1`;

const DIALECT = { param: (n: number) => `$${n}`, cast: int8, byteOrder: ' COLLATE "C"' };
type Reads = { buckets: string; byModel: string };
const READS = Object.fromEntries(
  GRANULARITIES.map((g) => [
    g,
    Object.fromEntries(
      [false, true].map((ofPrincipal) => {
        const plain = rollupReadSql(g, ofPrincipal, DIALECT);
        return [ofPrincipal ? 'ofPrincipal' : 'all', { plain, stepped: rollupReadSql(g, ofPrincipal, DIALECT, true).buckets }];
      }),
    ),
  ]),
) as Record<RollupGranularity, Record<'all' | 'ofPrincipal', { plain: Reads; stepped: string }>>;

/** The two reads of `rollups(query)`, each with its parameters; throws a RangeError for a bad stepMs (rollupStep). */
export function rollupReads(query: RollupQuery): { buckets: { text: string; values: unknown[] }; byModel: { text: string; values: unknown[] } } {
  const plan = rollupReadPlan(query);
  const reads = READS[query.granularity][query.principal === undefined ? 'all' : 'ofPrincipal'];
  return {
    buckets: { text: plan.stepped ? reads.stepped : reads.plain.buckets, values: plan.buckets },
    byModel: { text: reads.plain.byModel, values: plan.byModel },
  };
}

export const PRUNE_ROLLUPS = ROLLUP_TABLES.map((t) => ({ granularity: t.granularity, sql: `DELETE FROM ${t.name} WHERE bucket < $1` }));
