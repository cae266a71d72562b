/**
 * Usage rollups, backend-neutral: what both stores (sqlite-rollups.ts, postgres-rollups.ts) share
 * so that they agree to the row. A rollup row sums the calls of one group (UTC bucket start,
 * principal, model, status, refused or not): calls, tokens, micro-dollars and one count per latency
 * bucket (LATENCY_BOUNDS_MS). Batches are grouped here in JS (one upsert per distinct group, in one
 * fixed order so concurrent writers lock rows in the same order); the SQL fragments that read the
 * rows back, and that back-fill them from usage records, are generated here from the same bounds.
 *
 * Row key: the model is stored as '' plus `has_model` 0/1 (NULL cannot take part in a conflict
 * target), so a null model and a model named '' stay two groups.
 */
import { LATENCY_BOUNDS_MS, type RefusalRecord, type RollupGranularity, type RollupResult, type RollupSums, type UsageRecord } from '../contract.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
/** Minute rows are kept at most this long before the newest minute row (pruneUsage). */
export const MINUTE_ROWS_KEPT_MS = 2 * 24 * HOUR_MS;

export const BUCKET_MS: Record<RollupGranularity, number> = { minute: MINUTE_MS, hour: HOUR_MS };
export const ROLLUP_TABLES: Record<RollupGranularity, string> = { minute: 'usage_rollup_minute', hour: 'usage_rollup_hour' };

/** Count columns, one per latency bucket: lat_0 (≤ the first bound) … lat_N (above the last). */
export const LATENCY_COLUMNS = Array.from({ length: LATENCY_BOUNDS_MS.length + 1 }, (_, i) => `lat_${i}`);
export const KEY_COLUMNS = ['bucket', 'principal', 'model', 'has_model', 'status', 'refused'] as const;
export const SUM_COLUMNS = ['calls', 'prompt_tokens', 'completion_tokens', 'cost_micro_usd', ...LATENCY_COLUMNS];

/** The UTC-aligned start of the bucket holding `ts` (epoch ms; the same truncation as SQL's `ts - ts % size`). */
export function bucketStart(ts: number, size: number): number {
  return ts - (ts % size);
}

/** Index of the latency bucket of a duration: the first bound it does not exceed (a bound is inclusive), else the open one. */
export function latencyBucket(durationMs: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (durationMs <= LATENCY_BOUNDS_MS[i]!) return i;
  return LATENCY_BOUNDS_MS.length;
}

/** SQL for the latency bucket of a duration expression (the same rule as `latencyBucket`). */
export function latencyBucketSql(duration: string): string {
  return `CASE ${LATENCY_BOUNDS_MS.map((b, i) => `WHEN ${duration} <= ${b} THEN ${i}`).join(' ')} ELSE ${LATENCY_BOUNDS_MS.length} END`;
}

/** One rollup row's worth of a batch: its key and the amounts to add. */
export interface RollupGroup {
  bucket: number;
  principal: string;
  model: string;
  hasModel: 0 | 1;
  status: number;
  refused: 0 | 1;
  calls: number;
  promptTokens: number;
  completionTokens: number;
  costMicroUsd: number;
  latency: number[];
}

/** The groups of a batch per granularity, each list sorted by key (the lock order of the upserts). */
export interface BatchGroups {
  minute: RollupGroup[];
  hour: RollupGroup[];
}

interface Call {
  ts: number;
  principal: string;
  model: string | null;
  status: number;
  refused: boolean;
  promptTokens: number;
  completionTokens: number;
  costMicroUsd: number;
  /** null: not timed (a refusal). */
  durationMs: number | null;
}

function compareGroups(a: RollupGroup, b: RollupGroup): number {
  if (a.bucket !== b.bucket) return a.bucket - b.bucket;
  if (a.principal !== b.principal) return a.principal < b.principal ? -1 : 1;
  if (a.model !== b.model) return a.model < b.model ? -1 : 1;
  return a.hasModel - b.hasModel || a.status - b.status || a.refused - b.refused;
}

function group(calls: Iterable<Call>, size: number): RollupGroup[] {
  const groups = new Map<string, RollupGroup>();
  for (const c of calls) {
    const bucket = bucketStart(c.ts, size);
    const refused = c.refused ? 1 : 0;
    const id = JSON.stringify([bucket, c.principal, c.model, c.status, refused]);
    let g = groups.get(id);
    if (g === undefined) {
      g = {
        bucket, principal: c.principal, model: c.model ?? '', hasModel: c.model === null ? 0 : 1, status: c.status, refused,
        calls: 0, promptTokens: 0, completionTokens: 0, costMicroUsd: 0, latency: new Array<number>(LATENCY_COLUMNS.length).fill(0),
      };
      groups.set(id, g);
    }
    g.calls += 1;
    g.promptTokens += c.promptTokens;
    g.completionTokens += c.completionTokens;
    g.costMicroUsd += c.costMicroUsd;
    if (c.durationMs !== null) g.latency[latencyBucket(c.durationMs)]! += 1;
  }
  return [...groups.values()].sort(compareGroups);
}

function groupBoth(calls: Call[]): BatchGroups {
  return { minute: group(calls, MINUTE_MS), hour: group(calls, HOUR_MS) };
}

/** The rollup groups of a batch of usage records (timed, not refused). */
export function groupUsage(records: readonly UsageRecord[]): BatchGroups {
  return groupBoth(records.map((r) => ({ ...r, refused: false })));
}

/** The rollup groups of a batch of refusals: refused, untimed, no tokens or cost. */
export function groupRefusals(refusals: readonly RefusalRecord[]): BatchGroups {
  return groupBoth(refusals.map((r) => ({ ...r, refused: true, promptTokens: 0, completionTokens: 0, costMicroUsd: 0, durationMs: null })));
}

/** A group as the values of one row, in the column order KEY_COLUMNS then SUM_COLUMNS. */
export function groupValues(g: RollupGroup): Array<string | number> {
  return [g.bucket, g.principal, g.model, g.hasModel, g.status, g.refused, g.calls, g.promptTokens, g.completionTokens, g.costMicroUsd, ...g.latency];
}

/**
 * The SELECT list that sums a rollup table's rows into RollupSums columns (`cast` wraps each sum
 * for a backend whose sums need a type, e.g. Postgres's numeric → int8).
 */
export function sumsSelect(cast: (sum: string) => string = (s) => s): string {
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
 * The SELECT list that turns usage records (`usage_events` columns) into rollup rows of buckets of
 * `size` ms, for a back-fill or an import: `GROUP BY 1, 2, 3, 4, 5, 6` (the key columns) follows it.
 */
export function recordsAsRollupSelect(size: number, cast: (sum: string) => string = (s) => s): string {
  const lat = latencyBucketSql('duration_ms');
  return [
    `ts - ts % ${size}`, 'principal', "coalesce(model, '')", 'CASE WHEN model IS NULL THEN 0 ELSE 1 END', 'status', '0',
    cast('count(*)'), cast('sum(prompt_tokens)'), cast('sum(completion_tokens)'), cast('sum(cost_micro_usd)'),
    ...LATENCY_COLUMNS.map((_, i) => cast(`sum(CASE WHEN ${lat} = ${i} THEN 1 ELSE 0 END)`)),
  ].join(', ');
}

/**
 * A row of the sums SELECT read as an array (no object per row: a 30-day read has thousands):
 * the group's own columns first (`lead` of them), then the sums in sumsSelect's order.
 */
export type SumsRow = unknown[];

function toSums(row: SumsRow, lead: number): RollupSums {
  const n = (i: number) => Number(row[lead + i]);
  const latency = new Array<number>(LATENCY_COLUMNS.length);
  for (let i = 0; i < latency.length; i++) latency[i] = n(6 + i);
  return { requests: n(0), promptTokens: n(1), completionTokens: n(2), costMicroUsd: n(3), rateLimited: n(4), upstreamErrors: n(5), latency };
}

/** Rows of `SELECT ts, principal, <sums>` and `SELECT model, has_model, <sums>` as the contract's result. */
export function toResult(buckets: SumsRow[], byModel: SumsRow[]): RollupResult {
  return {
    buckets: buckets.map((r) => ({ ts: Number(r[0]), principal: r[1] as string, ...toSums(r, 2) })),
    byModel: byModel.map((r) => ({ model: Number(r[1]) === 1 ? (r[0] as string) : null, ...toSums(r, 2) })),
  };
}

/** The bucket starts before which pruneUsage(beforeMs) deletes rows: a row goes once its whole bucket is before the cutoff. */
export function pruneCutoffs(beforeMs: number, newestMinuteBucket: number | null): Record<RollupGranularity, number> {
  const minuteCutoff = Math.max(beforeMs, newestMinuteBucket === null ? -Infinity : newestMinuteBucket - MINUTE_ROWS_KEPT_MS);
  // Bucket start + size <= cutoff, i.e. start <= cutoff - size: strictly below cutoff - size + 1.
  return { minute: minuteCutoff - MINUTE_MS + 1, hour: beforeMs - HOUR_MS + 1 };
}
