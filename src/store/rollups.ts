/**
 * Usage rollups, backend-neutral: what both stores (sqlite-rollups.ts, postgres-rollups.ts) share
 * so that they agree to the row. Per granularity (UTC minute, UTC hour) three tables:
 *  - the detail rows, one per (bucket, principal, model, status, refused or not): calls, tokens,
 *    micro-dollars and one count per latency bucket (LATENCY_BOUNDS_MS);
 *  - the same sums folded per (bucket, principal) and per (bucket, model), already as RollupSums
 *    (requests, rate-limited, upstream errors): what the dashboard reads without a principal
 *    filter, so a 30-day read touches a row per hour and principal (or model), not per detail
 *    group. The detail rows serve the reads of one principal's models.
 * Batches are grouped here in JS (one upsert per distinct group and table, in one fixed order so
 * concurrent writers lock rows in the same order); the SQL that reads the rows back, and that
 * back-fills them from usage records, is generated here from the same column lists.
 *
 * Row key: the model is stored as '' plus `has_model` 0/1 (NULL cannot take part in a conflict
 * target), so a null model and a model named '' stay two groups.
 *
 * Latency counts leave out calls answered 429 (see RollupSums.latency), here for batches and in
 * the SQL that back-fills from usage records. Rows written before that rule keep the 429s they
 * counted: rows are sums, never recomputed, and a few days of slightly low percentiles are not
 * worth a migration that would rebuild them from records (which pruning may have removed).
 *
 * Reads can sum the buckets of a range into steps (RollupQuery.stepMs) in SQL: GROUP BY the step
 * start (bucket - bucket % stepMs, UTC-aligned as bucket starts are) and principal.
 */
import { LATENCY_BOUNDS_MS, type RefusalRecord, type RollupGranularity, type RollupQuery, type RollupResult, type RollupSums, type UsageRecord } from '../contract.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
/** Minute rows are kept at most this long before the newest minute row (pruneUsage). */
export const MINUTE_ROWS_KEPT_MS = 2 * 24 * HOUR_MS;

export const GRANULARITIES: readonly RollupGranularity[] = ['minute', 'hour'];
export const BUCKET_MS: Record<RollupGranularity, number> = { minute: MINUTE_MS, hour: HOUR_MS };

/** Count columns, one per latency bucket: lat_0 (≤ the first bound) … lat_N (above the last). */
export const LATENCY_COLUMNS = Array.from({ length: LATENCY_BOUNDS_MS.length + 1 }, (_, i) => `lat_${i}`);
/** The detail rows' key and sums. */
export const KEY_COLUMNS = ['bucket', 'principal', 'model', 'has_model', 'status', 'refused'] as const;
export const SUM_COLUMNS = ['calls', 'prompt_tokens', 'completion_tokens', 'cost_micro_usd', ...LATENCY_COLUMNS];
/** The folded rows' sums: RollupSums's fields in order. */
export const TOTAL_COLUMNS = ['requests', 'prompt_tokens', 'completion_tokens', 'cost_micro_usd', 'rate_limited', 'upstream_errors', ...LATENCY_COLUMNS];
export const TEXT_COLUMNS = new Set(['principal', 'model']);

export type TableKind = 'detail' | 'principal' | 'model';
export interface RollupTable {
  name: string;
  granularity: RollupGranularity;
  kind: TableKind;
  key: readonly string[];
  sums: readonly string[];
}

const KEYS: Record<TableKind, readonly string[]> = { detail: KEY_COLUMNS, principal: ['bucket', 'principal'], model: ['bucket', 'model', 'has_model'] };

export function rollupTable(granularity: RollupGranularity, kind: TableKind): RollupTable {
  const name = `usage_rollup_${granularity}${kind === 'detail' ? '' : `_by_${kind}`}`;
  return { name, granularity, kind, key: KEYS[kind], sums: kind === 'detail' ? SUM_COLUMNS : TOTAL_COLUMNS };
}

/** Every table, the detail one of a granularity first (the others are back-filled from it). */
export const ROLLUP_TABLES: readonly RollupTable[] = GRANULARITIES.flatMap((g) => (['detail', 'principal', 'model'] as const).map((k) => rollupTable(g, k)));

/** The UTC-aligned start of the bucket holding `ts` (epoch ms; the same truncation as SQL's `ts - ts % size`). */
export function bucketStart(ts: number, size: number): number {
  return ts - (ts % size);
}

/** Index of the latency bucket of a duration: the first bound it does not exceed (a bound is inclusive), else the open one. */
export function latencyBucket(durationMs: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (durationMs <= LATENCY_BOUNDS_MS[i]!) return i;
  return LATENCY_BOUNDS_MS.length;
}

/** Whether a call's duration goes into the latency counts: timed (not a refusal) and not answered 429. */
export function isTimed(status: number, durationMs: number | null): durationMs is number {
  return durationMs !== null && status !== 429;
}

/** SQL for the latency bucket of a duration expression (the same rule as `latencyBucket`). */
export function latencyBucketSql(duration: string): string {
  return `CASE ${LATENCY_BOUNDS_MS.map((b, i) => `WHEN ${duration} <= ${b} THEN ${i}`).join(' ')} ELSE ${LATENCY_BOUNDS_MS.length} END`;
}

interface Call {
  ts: number;
  principal: string;
  model: string | null;
  status: number;
  promptTokens: number;
  completionTokens: number;
  costMicroUsd: number;
  /** null: not timed (a refusal). */
  durationMs: number | null;
}

type Value = string | number;
/** A row's values in the table's column order (key, then sums). */
export type RowValues = Value[];

/** A batch as the rows to add to each table, every table's rows sorted by key (the lock order). */
export type BatchRows = Array<{ table: RollupTable; rows: RowValues[] }>;

function compareKeys(a: RowValues, b: RowValues, length: number): number {
  for (let i = 0; i < length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Adds `add` into the row of `key` (created with zeros), in `rows`. */
function addTo(rows: Map<string, RowValues>, key: Value[], add: readonly number[]): void {
  const id = JSON.stringify(key);
  let row = rows.get(id);
  if (row === undefined) rows.set(id, (row = [...key, ...add.map(() => 0)]));
  for (let i = 0; i < add.length; i++) (row[key.length + i] as number) += add[i]!;
}

function sorted(rows: Map<string, RowValues>, keyLength: number): RowValues[] {
  return [...rows.values()].sort((a, b) => compareKeys(a, b, keyLength));
}

const SUM_ZEROS: readonly number[] = SUM_COLUMNS.map(() => 0);

/** A detail row's sums as the folded tables' (TOTAL_COLUMNS), from its key's status and refused flag. */
function totalsOf(row: RowValues): number[] {
  const status = row[4] as number;
  const refused = row[5] === 1;
  const [calls, prompt, completion, cost, ...latency] = row.slice(KEY_COLUMNS.length) as number[];
  return [refused ? 0 : calls!, prompt!, completion!, cost!, status === 429 ? calls! : 0, status >= 500 ? calls! : 0, ...latency];
}

/**
 * A batch's rows for every table. Each call is added once, to its minute's detail row; the other
 * tables are folded from those rows (a busy minute's calls of one key, model and status share one),
 * so the cost per call stays one key and one addition whatever the number of tables.
 */
function rowsOf(calls: readonly Call[], refusals: boolean): BatchRows {
  const minute = new Map<string, RowValues>();
  const sums = KEY_COLUMNS.length;
  for (const c of calls) {
    const bucket = bucketStart(c.ts, BUCKET_MS.minute);
    const model = c.model ?? '';
    const hasModel = c.model === null ? 0 : 1;
    const refused = refusals ? 1 : 0;
    // Unambiguous without escaping: numbers first, then the principal's length, principal and model.
    const id = `${bucket}:${c.status}:${refused}:${hasModel}:${c.principal.length}:${c.principal}${model}`;
    let row = minute.get(id);
    if (row === undefined) minute.set(id, (row = [bucket, c.principal, model, hasModel, c.status, refused, ...SUM_ZEROS]));
    // The detail sums in SUM_COLUMNS' order: calls, prompt, completion, cost, then the latency counts.
    (row[sums] as number) += 1;
    (row[sums + 1] as number) += c.promptTokens;
    (row[sums + 2] as number) += c.completionTokens;
    (row[sums + 3] as number) += c.costMicroUsd;
    if (isTimed(c.status, c.durationMs)) (row[sums + 4 + latencyBucket(c.durationMs)] as number) += 1;
  }
  const out: BatchRows = [];
  let detail = minute;
  for (const granularity of GRANULARITIES) {
    if (granularity !== 'minute') {
      const size = BUCKET_MS[granularity];
      const coarser = new Map<string, RowValues>();
      for (const row of minute.values()) addTo(coarser, [bucketStart(row[0] as number, size), ...row.slice(1, KEY_COLUMNS.length)], row.slice(KEY_COLUMNS.length) as number[]);
      detail = coarser;
    }
    const byPrincipal = new Map<string, RowValues>();
    const byModel = new Map<string, RowValues>();
    for (const row of detail.values()) {
      const totals = totalsOf(row);
      addTo(byPrincipal, [row[0]!, row[1]!], totals);
      addTo(byModel, [row[0]!, row[2]!, row[3]!], totals);
    }
    out.push(
      { table: rollupTable(granularity, 'detail'), rows: sorted(detail, KEY_COLUMNS.length) },
      { table: rollupTable(granularity, 'principal'), rows: sorted(byPrincipal, 2) },
      { table: rollupTable(granularity, 'model'), rows: sorted(byModel, 3) },
    );
  }
  return out;
}

/** The rollup rows of a batch of usage records (timed, not refused). */
export function groupUsage(records: readonly UsageRecord[]): BatchRows {
  return rowsOf(records, false);
}

/** The rollup rows of a batch of refusals: refused, untimed, no tokens or cost. */
export function groupRefusals(refusals: readonly RefusalRecord[]): BatchRows {
  return rowsOf(refusals.map((r) => ({ ...r, promptTokens: 0, completionTokens: 0, costMicroUsd: 0, durationMs: null })), true);
}

type Cast = (sum: string) => string;
const asIs: Cast = (s) => s;

/** `sum(c) AS c` for each column, cast. */
const summed = (columns: readonly string[], cast: Cast): string => columns.map((c) => `${cast(`sum(${c})`)} AS ${c}`).join(', ');

/** The SELECT list that sums detail-shaped rows (SUM_COLUMNS with status, refused) into TOTAL_COLUMNS, named so. */
export function sumsSelect(cast: Cast = asIs): string {
  return [
    `${cast('sum(CASE WHEN refused = 0 THEN calls ELSE 0 END)')} AS requests`,
    `${cast('sum(prompt_tokens)')} AS prompt_tokens`,
    `${cast('sum(completion_tokens)')} AS completion_tokens`,
    `${cast('sum(cost_micro_usd)')} AS cost_micro_usd`,
    `${cast('sum(CASE WHEN status = 429 THEN calls ELSE 0 END)')} AS rate_limited`,
    `${cast('sum(CASE WHEN status >= 500 THEN calls ELSE 0 END)')} AS upstream_errors`,
    ...LATENCY_COLUMNS.map((c) => `${cast(`sum(${c})`)} AS ${c}`),
  ].join(', ');
}

/**
 * The SELECT that turns usage records (`usage_events` columns, of the table or CTE `source`) into
 * detail rows of buckets of `size` ms, named as the detail columns and grouped by their key.
 * Latency counts only the records not answered 429 (as `isTimed`).
 */
export function recordsAsRollupSelect(size: number, source: string, cast: Cast = asIs): string {
  const lat = latencyBucketSql('duration_ms');
  const exprs = [
    `ts - ts % ${size}`, 'principal', "coalesce(model, '')", 'CASE WHEN model IS NULL THEN 0 ELSE 1 END', 'status', '0',
    cast('count(*)'), cast('sum(prompt_tokens)'), cast('sum(completion_tokens)'), cast('sum(cost_micro_usd)'),
    ...LATENCY_COLUMNS.map((_, i) => cast(`sum(CASE WHEN status <> 429 AND ${lat} = ${i} THEN 1 ELSE 0 END)`)),
  ];
  const columns = [...KEY_COLUMNS, ...SUM_COLUMNS];
  const key = KEY_COLUMNS.map((_, i) => i + 1).join(', ');
  return `SELECT ${exprs.map((e, i) => `${e} AS ${columns[i]}`).join(', ')} FROM ${source} GROUP BY ${key}`;
}

/** The rows of `table` made from detail-shaped rows of `source` (a detail table, or a CTE of detail rows), sorted by key. */
export function rowsFromDetailSelect(table: RollupTable, source: string, cast: Cast = asIs): string {
  const key = table.key.join(', ');
  const sums = table.kind === 'detail' ? summed(SUM_COLUMNS, cast) : sumsSelect(cast);
  return `SELECT ${key}, ${sums} FROM ${source} GROUP BY ${key} ORDER BY ${key}`;
}

export interface Dialect {
  /** Placeholder of the n-th parameter (1-based). */
  param(n: number): string;
  cast: Cast;
  /** What follows a text column in ORDER BY for byte order. */
  byteOrder: string;
}

/**
 * The step of a query (RollupQuery.stepMs, default the granularity's bucket); a RangeError when
 * it is not a positive whole multiple of the bucket (nor a safe integer).
 */
export function rollupStep(query: Pick<RollupQuery, 'granularity' | 'stepMs'>): number {
  const bucket = BUCKET_MS[query.granularity];
  const step = query.stepMs ?? bucket;
  if (!Number.isSafeInteger(step) || step <= 0 || step % bucket !== 0) {
    throw new RangeError(`stepMs must be a positive whole multiple of ${bucket} (the ${query.granularity} bucket), not ${String(step)}`);
  }
  return step;
}

/**
 * The two reads of `rollups(query)`, as arrays of [ts, principal, …TOTAL_COLUMNS] and [model,
 * has_model, …TOTAL_COLUMNS]. Parameters: since, until, then the principal (`ofPrincipal`);
 * `stepped` buckets take the step first (step, since, until[, principal]: the order in which they
 * appear in the text, as SQLite's `?` binds) and sum the buckets of each step.
 */
export function rollupReadSql(granularity: RollupGranularity, ofPrincipal: boolean, d: Dialect, stepped = false): { buckets: string; byModel: string } {
  const where = (first: number) => `bucket >= ${d.param(first)} AND bucket < ${d.param(first + 1)}${ofPrincipal ? ` AND principal = ${d.param(first + 2)}` : ''}`;
  const modelOrder = `ORDER BY has_model DESC, model${d.byteOrder}`;
  const folded = rollupTable(granularity, 'principal').name;
  const buckets = stepped
    ? `SELECT bucket - bucket % ${d.param(1)} AS step, principal, ${summed(TOTAL_COLUMNS, d.cast)} FROM ${folded}
       WHERE ${where(2)} GROUP BY step, principal ORDER BY step, principal${d.byteOrder}`
    : `SELECT bucket, principal, ${TOTAL_COLUMNS.join(', ')} FROM ${folded}
       WHERE ${where(1)} ORDER BY bucket, principal${d.byteOrder}`;
  const byModel = ofPrincipal
    ? `SELECT model, has_model, ${sumsSelect(d.cast)} FROM ${rollupTable(granularity, 'detail').name} WHERE ${where(1)} GROUP BY model, has_model ${modelOrder}`
    : `SELECT model, has_model, ${summed(TOTAL_COLUMNS, d.cast)} FROM ${rollupTable(granularity, 'model').name}
       WHERE ${where(1)} GROUP BY model, has_model ${modelOrder}`;
  return { buckets, byModel };
}

/**
 * How to run rollupReadSql for `query` (validating its step): `stepped` (its step is longer than
 * a bucket) and the parameters of each of the two reads.
 */
export function rollupReadPlan(query: RollupQuery): { stepped: boolean; buckets: unknown[]; byModel: unknown[] } {
  const step = rollupStep(query);
  const byModel = query.principal === undefined ? [query.sinceMs, query.untilMs] : [query.sinceMs, query.untilMs, query.principal];
  const stepped = step !== BUCKET_MS[query.granularity];
  return { stepped, buckets: stepped ? [step, ...byModel] : byModel, byModel };
}

/** A read row as an array: the group's two columns, then TOTAL_COLUMNS. */
export type SumsRow = unknown[];

function toSums(row: SumsRow): RollupSums {
  const n = (i: number) => Number(row[2 + i]);
  const latency = new Array<number>(LATENCY_COLUMNS.length);
  for (let i = 0; i < latency.length; i++) latency[i] = n(6 + i);
  return { requests: n(0), promptTokens: n(1), completionTokens: n(2), costMicroUsd: n(3), rateLimited: n(4), upstreamErrors: n(5), latency };
}

/** The rows of rollupReadSql as the contract's result. */
export function toResult(buckets: SumsRow[], byModel: SumsRow[]): RollupResult {
  return {
    buckets: buckets.map((r) => ({ ts: Number(r[0]), principal: r[1] as string, ...toSums(r) })),
    byModel: byModel.map((r) => ({ model: Number(r[1]) === 1 ? (r[0] as string) : null, ...toSums(r) })),
  };
}

/**
 * Each principal's newest usage record (both stores: the same SQL), by a loose index scan of
 * usage_events (principal, ts): each principal found, and its newest record read, by one index seek.
 */
export const LAST_USED_SQL = `
WITH RECURSIVE p(principal) AS (
  SELECT min(principal) FROM usage_events
  UNION ALL SELECT (SELECT min(principal) FROM usage_events WHERE principal > p.principal) FROM p WHERE p.principal IS NOT NULL
)
SELECT principal, (SELECT max(ts) FROM usage_events u WHERE u.principal = p.principal) AS ts FROM p WHERE principal IS NOT NULL`;

/** The newest minute row's bucket (`newest`, null when there is none), for pruneCutoffs. */
export const NEWEST_MINUTE_SQL = `SELECT max(bucket) AS newest FROM ${rollupTable('minute', 'detail').name}`;

/** The bucket starts below which pruneUsage(beforeMs) deletes rows: a row goes once its whole bucket is before the cutoff. */
export function pruneCutoffs(beforeMs: number, newestMinuteBucket: number | null): Record<RollupGranularity, number> {
  const minuteCutoff = Math.max(beforeMs, newestMinuteBucket === null ? -Infinity : newestMinuteBucket - MINUTE_ROWS_KEPT_MS);
  // Bucket start + size <= cutoff, i.e. start <= cutoff - size: strictly below cutoff - size + 1.
  return { minute: minuteCutoff - MINUTE_MS + 1, hour: beforeMs - HOUR_MS + 1 };
}
