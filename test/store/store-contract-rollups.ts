/**
 * Store contract, usage rollups (what the dashboard reads): sums per (bucket, principal) and per
 * model over minute and hour buckets aligned to UTC; refusals counted as rate-limited but never as
 * requests nor in usage(); 5xx as upstream errors; latency bucket edges (a bound is inclusive);
 * the principal filter; the range of bucket starts [since, until); many batches and two store
 * instances writing at once adding up exactly; pruning; lastUsed; and the back-fill of a database
 * written before rollups existed. Expected sums are worked out by hand.
 */
import { expect } from 'vitest';
import type { RollupResult, RollupSums, Store } from '../../src/contract.js';
import { FOREVER, usageRecord as rec, type StoreCase } from './store-contract-fixtures.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Thursday 2026-01-15 10:00:00.000 UTC. */
export const T0 = Date.UTC(2026, 0, 15, 10, 0, 0);

/** Sums with zeros where not given; `lat` maps a latency bucket index to its count. */
export function sums(given: Partial<Omit<RollupSums, 'latency'>> & { lat?: Record<number, number> } = {}): RollupSums {
  const { lat = {}, ...rest } = given;
  const latency = new Array<number>(15).fill(0);
  for (const [i, n] of Object.entries(lat)) latency[Number(i)] = n;
  return { requests: 0, promptTokens: 0, completionTokens: 0, costMicroUsd: 0, rateLimited: 0, upstreamErrors: 0, ...rest, latency };
}

const EMPTY: RollupResult = { buckets: [], byModel: [] };
const all = (granularity: 'minute' | 'hour', principal?: string) => ({ sinceMs: 0, untilMs: FOREVER, granularity, ...(principal === undefined ? {} : { principal }) });

/** The buckets of a result as [ts, principal, requests] (for cases about which rows, not their sums). */
const keys = (r: RollupResult) => r.buckets.map((b) => [b.ts, b.principal, b.requests]);

export const rollupCases: StoreCase[] = [
  {
    name: 'rollups: sums per minute and hour bucket and principal, and per model (null model last), from usage records',
    async run(store) {
      expect(await store.rollups(all('minute'))).toStrictEqual(EMPTY);
      await store.recordUsage([
        rec({ ts: T0 + 1_000, principal: 'a', model: 'gpt-4o', promptTokens: 10, completionTokens: 20, costMicroUsd: 100, durationMs: 3 }),
        rec({ ts: T0 + 30_000, principal: 'a', model: 'gpt-4o', promptTokens: 1, completionTokens: 2, costMicroUsd: 5, durationMs: 7 }),
        rec({ ts: T0 + 61_000, principal: 'a', model: 'mini', status: 500, promptTokens: 4, durationMs: 5 }),
        rec({ ts: T0 + 2_000, principal: 'b', model: 'gpt-4o', status: 429, durationMs: 10 }),
        rec({ ts: T0 + HOUR, principal: 'b', model: null, promptTokens: 100, completionTokens: 200, costMicroUsd: 1_000, durationMs: 200_000 }),
      ]);
      await store.recordUsage([rec({ ts: T0 + 120_000, principal: 'b', model: 'mini', status: 499, promptTokens: 2, durationMs: 60_000 })]);
      const lateB = sums({ requests: 1, promptTokens: 100, completionTokens: 200, costMicroUsd: 1_000, lat: { 14: 1 } });
      const byModel = [
        { model: 'gpt-4o', ...sums({ requests: 3, promptTokens: 11, completionTokens: 22, costMicroUsd: 105, rateLimited: 1, lat: { 0: 1, 1: 1 } }) },
        { model: 'mini', ...sums({ requests: 2, promptTokens: 6, upstreamErrors: 1, lat: { 0: 1, 12: 1 } }) },
        { model: null, ...lateB },
      ];
      const range = { sinceMs: T0, untilMs: T0 + 2 * HOUR };
      expect(await store.rollups({ ...range, granularity: 'minute' })).toStrictEqual({
        buckets: [
          { ts: T0, principal: 'a', ...sums({ requests: 2, promptTokens: 11, completionTokens: 22, costMicroUsd: 105, lat: { 0: 1, 1: 1 } }) },
          { ts: T0, principal: 'b', ...sums({ requests: 1, rateLimited: 1 }) },
          { ts: T0 + MIN, principal: 'a', ...sums({ requests: 1, promptTokens: 4, upstreamErrors: 1, lat: { 0: 1 } }) },
          { ts: T0 + 2 * MIN, principal: 'b', ...sums({ requests: 1, promptTokens: 2, lat: { 12: 1 } }) },
          { ts: T0 + HOUR, principal: 'b', ...lateB },
        ],
        byModel,
      });
      expect(await store.rollups({ ...range, granularity: 'hour' })).toStrictEqual({
        buckets: [
          { ts: T0, principal: 'a', ...sums({ requests: 3, promptTokens: 15, completionTokens: 22, costMicroUsd: 105, upstreamErrors: 1, lat: { 0: 2, 1: 1 } }) },
          { ts: T0, principal: 'b', ...sums({ requests: 2, promptTokens: 2, rateLimited: 1, lat: { 12: 1 } }) },
          { ts: T0 + HOUR, principal: 'b', ...lateB },
        ],
        byModel,
      });
    },
  },
  {
    name: 'rollups: minute and hour buckets start on UTC minutes and hours, whatever the record ms',
    async run(store) {
      const at = (h: number, m: number, s = 0, ms = 0) => Date.UTC(2026, 2, 29, h, m, s, ms);
      const ts = [at(0, 59, 59, 999), at(1, 0), at(1, 0, 59, 999), at(1, 1), at(1, 30, 15, 500), at(1, 59, 59, 999), at(2, 0)];
      await store.recordUsage(ts.map((t, i) => rec({ ts: t, principal: 'a', requestId: `r${i}` })));
      expect(keys(await store.rollups(all('minute')))).toStrictEqual([
        [at(0, 59), 'a', 1], [at(1, 0), 'a', 2], [at(1, 1), 'a', 1], [at(1, 30), 'a', 1], [at(1, 59), 'a', 1], [at(2, 0), 'a', 1],
      ]);
      expect(keys(await store.rollups(all('hour')))).toStrictEqual([[at(0, 0), 'a', 1], [at(1, 0), 'a', 5], [at(2, 0), 'a', 1]]);
    },
  },
  {
    name: 'rollups: refusals count as rate-limited, never as requests, latency, usage() totals or lastUsed; a 429 record is a request, untimed',
    async run(store) {
      await store.recordRefusals([]);
      expect(await store.rollups(all('minute'))).toStrictEqual(EMPTY);
      await store.recordUsage([
        rec({ ts: T0 + 1, principal: 'a', model: 'gpt-4o', status: 200, promptTokens: 3, durationMs: 20 }),
        rec({ ts: T0 + 2, principal: 'a', model: 'gpt-4o', status: 429, durationMs: 20 }),
      ]);
      await store.recordRefusals([
        { ts: T0 + 5, principal: 'a', model: 'gpt-4o', status: 429 },
        { ts: T0 + 6, principal: 'a', model: null, status: 429 },
      ]);
      await store.recordRefusals([{ ts: T0 + MIN + 7, principal: 'c', model: 'gpt-4o', status: 429 }]);
      expect(await store.rollups(all('minute'))).toStrictEqual({
        buckets: [
          { ts: T0, principal: 'a', ...sums({ requests: 2, promptTokens: 3, rateLimited: 3, lat: { 2: 1 } }) },
          { ts: T0 + MIN, principal: 'c', ...sums({ rateLimited: 1 }) },
        ],
        byModel: [
          { model: 'gpt-4o', ...sums({ requests: 2, promptTokens: 3, rateLimited: 3, lat: { 2: 1 } }) },
          { model: null, ...sums({ rateLimited: 1 }) },
        ],
      });
      expect((await store.rollups(all('hour'))).buckets).toStrictEqual([
        { ts: T0, principal: 'a', ...sums({ requests: 2, promptTokens: 3, rateLimited: 3, lat: { 2: 1 } }) },
        { ts: T0, principal: 'c', ...sums({ rateLimited: 1 }) },
      ]);
      const { total, byPrincipal } = await store.usage({ sinceMs: 0, untilMs: FOREVER });
      expect(total).toMatchObject({ requests: 2, byStatus: { '200': 1, '429': 1 } });
      expect(Object.keys(byPrincipal)).toStrictEqual(['a']);
      expect(await store.lastUsed()).toStrictEqual({ a: T0 + 2 });
    },
  },
  {
    name: 'rollups: every 5xx is an upstream error (not 499, 4xx or 429); every status is a request',
    async run(store) {
      const statuses = [500, 502, 503, 504, 599, 499, 400, 404, 429, 200, 201];
      await store.recordUsage(statuses.map((status, i) => rec({ ts: T0 + i, principal: 'a', status, requestId: `r${i}` })));
      const [bucket] = (await store.rollups(all('minute'))).buckets;
      expect(bucket).toMatchObject({ ts: T0, requests: 11, upstreamErrors: 5, rateLimited: 1 });
    },
  },
  {
    name: 'rollups: latency buckets: a duration on a bound counts in that bound\'s bucket, one ms more in the next, past the last in the open one',
    async run(store) {
      // [duration ms, bucket index] with LATENCY_BOUNDS_MS = 5, 10, 25, …, 60000, 120000.
      const cases: Array<[number, number]> = [
        [0, 0], [5, 0], [6, 1], [10, 1], [11, 2], [25, 2], [26, 3], [50, 3], [51, 4], [100, 4], [101, 5], [250, 5], [251, 6],
        [500, 6], [501, 7], [1000, 7], [1001, 8], [2500, 8], [2501, 9], [5000, 9], [5001, 10], [10000, 10], [10001, 11],
        [30000, 11], [30001, 12], [60000, 12], [60001, 13], [120000, 13], [120001, 14], [3_600_000, 14],
      ];
      // One minute per duration, so each bucket row holds one.
      await store.recordUsage(cases.map(([durationMs], i) => rec({ ts: T0 + i * MIN, principal: 'a', durationMs, requestId: `r${i}` })));
      const { buckets, byModel } = await store.rollups(all('minute'));
      expect(buckets.map((b) => b.latency.length)).toStrictEqual(cases.map(() => 15));
      expect(buckets.map((b) => b.latency.indexOf(1))).toStrictEqual(cases.map(([, index]) => index));
      expect(buckets.map((b) => b.latency.reduce((x, y) => x + y, 0))).toStrictEqual(cases.map(() => 1));
      expect(byModel[0]!.latency).toStrictEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    },
  },
  {
    name: 'rollups: latency counts leave out calls answered 429 (limiter or upstream), in buckets, per model and for one principal',
    async run(store) {
      await store.recordUsage([
        rec({ ts: T0 + 1, principal: 'a', model: 'm', status: 200, durationMs: 400 }),
        rec({ ts: T0 + 2, principal: 'a', model: 'm', status: 429, durationMs: 1 }),
        rec({ ts: T0 + 3, principal: 'a', model: 'm', status: 429, durationMs: 2 }),
        rec({ ts: T0 + 4, principal: 'a', model: 'm', status: 500, durationMs: 3_000 }),
        rec({ ts: T0 + 5, principal: 'a', model: 'm', status: 499, durationMs: 7 }),
      ]);
      // 400 ms: bucket 6 (≤ 500); 3,000 ms: 9 (≤ 5,000); 7 ms: 1 (≤ 10); the 429s' 1 and 2 ms would be bucket 0.
      const timed = sums({ requests: 5, rateLimited: 2, upstreamErrors: 1, lat: { 1: 1, 6: 1, 9: 1 } });
      for (const granularity of ['minute', 'hour'] as const) {
        for (const principal of [undefined, 'a']) {
          expect(await store.rollups(all(granularity, principal)), `${granularity} ${principal}`).toStrictEqual({
            buckets: [{ ts: T0, principal: 'a', ...timed }],
            byModel: [{ model: 'm', ...timed }],
          });
        }
      }
    },
  },
  {
    name: 'rollups: a principal filter keeps only its rows (exact name), in buckets and per model',
    async run(store) {
      await store.recordUsage([
        rec({ ts: T0, principal: 'a', model: 'm1', promptTokens: 1 }),
        rec({ ts: T0 + MIN, principal: 'ab', model: 'm2', promptTokens: 2 }),
        rec({ ts: T0 + MIN, principal: 'a', model: 'm3', promptTokens: 4 }),
        rec({ ts: T0 + MIN, principal: 'A', model: 'm1', promptTokens: 8 }),
      ]);
      await store.recordRefusals([{ ts: T0, principal: 'ab', model: 'm1', status: 429 }]);
      expect(await store.rollups(all('minute', 'a'))).toStrictEqual({
        buckets: [
          { ts: T0, principal: 'a', ...sums({ requests: 1, promptTokens: 1, lat: { 2: 1 } }) },
          { ts: T0 + MIN, principal: 'a', ...sums({ requests: 1, promptTokens: 4, lat: { 2: 1 } }) },
        ],
        byModel: [
          { model: 'm1', ...sums({ requests: 1, promptTokens: 1, lat: { 2: 1 } }) },
          { model: 'm3', ...sums({ requests: 1, promptTokens: 4, lat: { 2: 1 } }) },
        ],
      });
      expect(await store.rollups(all('hour', 'ab'))).toStrictEqual({
        buckets: [{ ts: T0, principal: 'ab', ...sums({ requests: 1, promptTokens: 2, rateLimited: 1, lat: { 2: 1 } }) }],
        byModel: [
          { model: 'm1', ...sums({ rateLimited: 1 }) },
          { model: 'm2', ...sums({ requests: 1, promptTokens: 2, lat: { 2: 1 } }) },
        ],
      });
      expect(await store.rollups(all('minute', 'nobody'))).toStrictEqual(EMPTY);
      // Unfiltered, principals sort in byte order: upper case first.
      expect(keys(await store.rollups(all('minute')))).toStrictEqual([[T0, 'a', 1], [T0, 'ab', 0], [T0 + MIN, 'A', 1], [T0 + MIN, 'a', 1], [T0 + MIN, 'ab', 1]]);
    },
  },
  {
    name: 'rollups: a null model, a model named "" and one named "NULL" are three groups; odd text is kept',
    async run(store) {
      const odd = 'key,"weird"{}\\ ünï 🙂';
      await store.recordUsage([
        rec({ ts: T0, principal: odd, model: null, promptTokens: 1 }),
        rec({ ts: T0, principal: odd, model: '', promptTokens: 2 }),
        rec({ ts: T0, principal: odd, model: 'NULL', promptTokens: 4 }),
        rec({ ts: T0, principal: odd, model: odd, promptTokens: 8 }),
      ]);
      const { buckets, byModel } = await store.rollups(all('hour', odd));
      expect(buckets.map((b) => [b.principal, b.promptTokens])).toStrictEqual([[odd, 15]]);
      expect(byModel.map((m) => [m.model, m.promptTokens])).toStrictEqual([['', 2], ['NULL', 4], [odd, 8], [null, 1]]);
    },
  },
  {
    name: 'rollups: the range selects bucket starts in [since, until): a bucket counts whole or not at all',
    async run(store) {
      await store.recordUsage([
        rec({ ts: T0 + 59_999, principal: 'a', promptTokens: 1 }),
        rec({ ts: T0 + MIN, principal: 'a', promptTokens: 2 }),
        rec({ ts: T0 + 2 * MIN + 30_000, principal: 'a', promptTokens: 4 }),
        rec({ ts: T0 + HOUR + 1, principal: 'a', promptTokens: 8 }),
      ]);
      const prompt = async (sinceMs: number, untilMs: number, granularity: 'minute' | 'hour' = 'minute') => {
        const r = await store.rollups({ sinceMs, untilMs, granularity });
        const byModel = r.byModel.reduce((n, m) => n + m.promptTokens, 0);
        expect(r.buckets.reduce((n, b) => n + b.promptTokens, 0)).toBe(byModel);
        return byModel;
      };
      expect(await prompt(T0, T0 + MIN)).toBe(1);
      expect(await prompt(T0 + MIN, T0 + 2 * MIN)).toBe(2);
      // since inside the first minute: that bucket is out; until inside the third: that bucket is in, whole.
      expect(await prompt(T0 + 1, T0 + 2 * MIN + 1)).toBe(6);
      expect(await prompt(T0, T0)).toBe(0);
      expect(await prompt(T0 + 3 * MIN, T0 + HOUR)).toBe(0);
      expect(await prompt(T0 + HOUR, T0 + HOUR + 1)).toBe(8);
      expect(await prompt(T0, T0 + HOUR, 'hour')).toBe(7);
      expect(await prompt(T0 + 1, FOREVER, 'hour')).toBe(8);
      expect(await prompt(T0, T0 + 1, 'hour')).toBe(7);
      expect(await prompt(0, T0, 'hour')).toBe(0);
    },
  },
  {
    name: 'rollups: 40 batches of 25 records add up exactly, in minute and hour rows alike',
    async run(store) {
      // Record i: one minute, principal a for even i and b for odd, i prompt tokens, 1 completion
      // token, 2 micro-dollars, 12 ms (latency bucket 2), status 500 for every tenth (all even).
      for (let batch = 0; batch < 40; batch++) {
        await store.recordUsage(
          Array.from({ length: 25 }, (_, j) => {
            const i = batch * 25 + j;
            return rec({ ts: T0 + 5 * MIN + i, principal: i % 2 === 0 ? 'a' : 'b', status: i % 10 === 0 ? 500 : 200, promptTokens: i, completionTokens: 1, costMicroUsd: 2, requestId: `r${i}` });
          }),
        );
      }
      // Even i: 2 · (0 + … + 499) = 249,500; odd i: 500² = 250,000.
      const expected = [
        { ts: T0 + 5 * MIN, principal: 'a', ...sums({ requests: 500, promptTokens: 249_500, completionTokens: 500, costMicroUsd: 1_000, upstreamErrors: 100, lat: { 2: 500 } }) },
        { ts: T0 + 5 * MIN, principal: 'b', ...sums({ requests: 500, promptTokens: 250_000, completionTokens: 500, costMicroUsd: 1_000, lat: { 2: 500 } }) },
      ];
      const byModel = [{ model: 'gpt-4o-mini', ...sums({ requests: 1_000, promptTokens: 499_500, completionTokens: 1_000, costMicroUsd: 2_000, upstreamErrors: 100, lat: { 2: 1_000 } }) }];
      expect(await store.rollups(all('minute'))).toStrictEqual({ buckets: expected, byModel });
      expect(await store.rollups(all('hour'))).toStrictEqual({ buckets: expected.map((b) => ({ ...b, ts: T0 })), byModel });
    },
  },
  {
    name: 'rollups: two store instances on one database writing the same rows at once give exact sums',
    async run(store, backend) {
      const other = await backend.openSibling();
      // Each instance: 20 batches of 50 into the same two minute rows (and hour rows), as the
      // other writes; instance k's record i has k · 1,000 + i prompt tokens.
      const write = async (s: Store, k: number) => {
        for (let batch = 0; batch < 20; batch++) {
          const records = Array.from({ length: 50 }, (_, j) => {
            const i = batch * 50 + j;
            return rec({ ts: T0 + (i % 2) * MIN + i, principal: 'a', promptTokens: k * 1_000 + i, requestId: `k${k}-${i}` });
          });
          await s.recordUsage(records);
          await s.recordRefusals([{ ts: T0, principal: 'a', model: 'gpt-4o-mini', status: 429 }]);
        }
      };
      await Promise.all([write(store, 1), write(other, 2)]);
      // Per instance, even i (minute T0): 1,000 · 500 + 249,500; odd i (minute T0 + 1): 1,000 · 500 + 250,000 (times k).
      const minute = await other.rollups(all('minute'));
      expect(minute.buckets.map((b) => [b.ts, b.requests, b.promptTokens, b.rateLimited])).toStrictEqual([
        [T0, 1_000, 500_000 + 249_500 + 1_000_000 + 249_500, 40],
        [T0 + MIN, 1_000, 500_000 + 250_000 + 1_000_000 + 250_000, 0],
      ]);
      const hour = await store.rollups(all('hour'));
      expect(hour.buckets.map((b) => [b.ts, b.requests, b.promptTokens, b.rateLimited, b.latency[2]])).toStrictEqual([[T0, 2_000, 3_999_000, 40, 2_000]]);
      expect((await store.usage({ sinceMs: 0, untilMs: FOREVER })).total).toMatchObject({ requests: 2_000, promptTokens: 3_999_000 });
    },
  },
  {
    name: 'pruneUsage: minute rows go before beforeMs or two days before the newest minute, hour rows before beforeMs; answers records deleted',
    async run(store) {
      expect(await store.pruneUsage(T0)).toBe(0);
      const D = Date.UTC(2026, 0, 10);
      await store.recordUsage([
        rec({ ts: D + 10_000, principal: 'a', promptTokens: 1 }),
        rec({ ts: D + 90_000, principal: 'a', promptTokens: 2 }),
        rec({ ts: D + 2 * HOUR, principal: 'a', promptTokens: 4 }),
        rec({ ts: D + 2 * DAY + 3 * HOUR, principal: 'a', promptTokens: 8 }),
        rec({ ts: D + 3 * DAY, principal: 'a', promptTokens: 16 }),
      ]);
      await store.recordRefusals([{ ts: D + 5_000, principal: 'a', model: null, status: 429 }]);
      const starts = async (granularity: 'minute' | 'hour') => (await store.rollups(all(granularity))).buckets.map((b) => b.ts);
      // The newest minute is D + 3 days: minute rows ending by D + 1 day go. Hour D ends after
      // beforeMs: it stays (a row goes only once its whole bucket is before beforeMs).
      expect(await store.pruneUsage(D + 80_000)).toBe(1);
      expect(await starts('minute')).toStrictEqual([D + 2 * DAY + 3 * HOUR, D + 3 * DAY]);
      expect(await starts('hour')).toStrictEqual([D, D + 2 * HOUR, D + 2 * DAY + 3 * HOUR, D + 3 * DAY]);
      // Rows are not recomputed: hour D still counts the pruned record (and the refusal).
      expect((await store.rollups(all('hour'))).buckets[0]).toMatchObject({ ts: D, requests: 2, promptTokens: 3, rateLimited: 1 });
      expect((await store.usage({ sinceMs: 0, untilMs: FOREVER })).total).toMatchObject({ requests: 4, promptTokens: 30 });
      // beforeMs past the two days: minute rows ending by it go; hour rows ending by it go.
      expect(await store.pruneUsage(D + 2 * DAY + 3 * HOUR + 1)).toBe(3);
      expect(await starts('minute')).toStrictEqual([D + 2 * DAY + 3 * HOUR, D + 3 * DAY]);
      expect(await starts('hour')).toStrictEqual([D + 2 * DAY + 3 * HOUR, D + 3 * DAY]);
      expect(await store.pruneUsage(D + 3 * DAY + MIN)).toBe(1);
      expect(await starts('minute')).toStrictEqual([]);
      expect(await starts('hour')).toStrictEqual([D + 3 * DAY]);
      expect(await store.lastUsed()).toStrictEqual({});
    },
  },
  {
    name: 'lastUsed: the newest record per principal, whatever the order written; none without records',
    async run(store) {
      expect(await store.lastUsed()).toStrictEqual({});
      await store.recordUsage([rec({ ts: 300, principal: 'a' }), rec({ ts: 100, principal: 'a' }), rec({ ts: 50, principal: 'b' })]);
      await store.recordUsage([rec({ ts: 200, principal: 'a' }), rec({ ts: 7, principal: 'B' }), rec({ ts: 9_000_000_000_000, principal: 'ünï' })]);
      expect(await store.lastUsed()).toStrictEqual({ a: 300, b: 50, B: 7, ünï: 9_000_000_000_000 });
    },
  },
  {
    name: 'migrate back-fills the rollups once from the usage records of a database made before them (429s untimed there too)',
    async run(_store, backend) {
      const store = await backend.openFromBeforeRollups([
        rec({ ts: T0 + 1, principal: 'a', model: 'm', promptTokens: 1, costMicroUsd: 10, durationMs: 5 }),
        rec({ ts: T0 + MIN, principal: 'a', model: null, status: 502, promptTokens: 2, durationMs: 6 }),
        rec({ ts: T0 + HOUR, principal: 'b', model: 'm', status: 429, promptTokens: 4, durationMs: 120_001 }),
      ]);
      const check = async () => {
        expect(await store.rollups(all('minute'))).toStrictEqual({
          buckets: [
            { ts: T0, principal: 'a', ...sums({ requests: 1, promptTokens: 1, costMicroUsd: 10, lat: { 0: 1 } }) },
            { ts: T0 + MIN, principal: 'a', ...sums({ requests: 1, promptTokens: 2, upstreamErrors: 1, lat: { 1: 1 } }) },
            { ts: T0 + HOUR, principal: 'b', ...sums({ requests: 1, promptTokens: 4, rateLimited: 1 }) },
          ],
          byModel: [
            { model: 'm', ...sums({ requests: 2, promptTokens: 5, costMicroUsd: 10, rateLimited: 1, lat: { 0: 1 } }) },
            { model: null, ...sums({ requests: 1, promptTokens: 2, upstreamErrors: 1, lat: { 1: 1 } }) },
          ],
        });
        expect(keys(await store.rollups(all('hour')))).toStrictEqual([[T0, 'a', 2], [T0 + HOUR, 'b', 1]]);
      };
      await check();
      await store.migrate();
      await check();
      await store.recordUsage([rec({ ts: T0 + 2, principal: 'a', model: 'm', promptTokens: 8, durationMs: 5 })]);
      expect((await store.rollups(all('hour'))).buckets[0]).toMatchObject({ ts: T0, principal: 'a', requests: 3, promptTokens: 11 });
      expect(await store.lastUsed()).toStrictEqual({ a: T0 + MIN, b: T0 + HOUR });
    },
  },
];
