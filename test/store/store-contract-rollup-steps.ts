/**
 * Store contract, rollups read in steps (RollupQuery.stepMs, the dashboard's points): a step's
 * sums are the sums of the buckets inside it (per principal, also for one principal), steps start
 * on multiples of stepMs (UTC) whatever sinceMs is, a step longer than the range is one row per
 * principal holding only the range's buckets, the default is the bucket itself, byModel does not
 * depend on the step, and a step that is not a positive whole multiple of the bucket throws.
 */
import { expect } from 'vitest';
import type { RollupGranularity, RollupResult, RollupSums, Store } from '../../src/contract.js';
import { FOREVER, usageRecord as rec, type StoreCase } from './store-contract-fixtures.js';
import { sums, T0 } from './store-contract-rollups.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

type Row = RollupResult['buckets'][number];

/** The reference grouping: bucket rows summed per (floor(ts / step) · step, principal), sorted as the store sorts. */
function groupBySteps(buckets: readonly Row[], stepMs: number): Row[] {
  const out = new Map<string, Row>();
  for (const b of buckets) {
    const ts = Math.floor(b.ts / stepMs) * stepMs;
    const id = `${ts}\u0000${b.principal}`;
    const row = out.get(id);
    if (row === undefined) {
      out.set(id, { ...b, ts, latency: [...b.latency] });
      continue;
    }
    for (const f of ['requests', 'promptTokens', 'completionTokens', 'costMicroUsd', 'rateLimited', 'upstreamErrors'] as const) row[f] += b[f];
    b.latency.forEach((n, i) => (row.latency[i]! += n));
  }
  const byte = (a: string, b: string) => (Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return [...out.values()].sort((x, y) => x.ts - y.ts || byte(x.principal, y.principal));
}

/**
 * Records over 13 hours from T0 - 1 h (10:00 UTC): principals a, b and B, minutes and seconds
 * spread by a fixed pattern, statuses 200 / 429 / 500, durations over many latency buckets.
 */
async function writeSpread(store: Store): Promise<void> {
  const records = Array.from({ length: 400 }, (_, i) => {
    const ts = T0 - HOUR + ((i * 7_919_357) % (13 * HOUR));
    const status = i % 11 === 0 ? 429 : i % 13 === 0 ? 500 : 200;
    return rec({
      ts, principal: ['a', 'b', 'B'][i % 3]!, model: i % 4 === 0 ? null : `m${i % 3}`, status, requestId: `r${i}`,
      durationMs: (i * 37) % 9_000, promptTokens: i, completionTokens: i % 5, costMicroUsd: 3 * i,
    });
  });
  for (let i = 0; i < records.length; i += 50) await store.recordUsage(records.slice(i, i + 50));
  await store.recordRefusals([{ ts: T0 + 5 * MIN, principal: 'a', model: 'm1', status: 429 }, { ts: T0 + 3 * HOUR, principal: 'c', model: null, status: 429 }]);
}

const total = (rows: readonly RollupSums[], f: 'requests' | 'promptTokens' | 'rateLimited') => rows.reduce((n, r) => n + r[f], 0);

export const rollupStepCases: StoreCase[] = [
  {
    name: 'rollups in steps: each (step, principal) row sums the bucket rows inside the step, unfiltered and for one principal',
    async run(store) {
      await writeSpread(store);
      const cases: Array<[RollupGranularity, number]> = [['minute', 10 * MIN], ['minute', 7 * MIN], ['minute', HOUR], ['hour', 2 * HOUR], ['hour', 6 * HOUR], ['hour', DAY]];
      const range = { sinceMs: T0 - HOUR, untilMs: T0 + 12 * HOUR };
      for (const [granularity, stepMs] of cases) {
        for (const principal of [undefined, 'b']) {
          const query = { ...range, granularity, ...(principal === undefined ? {} : { principal }) };
          const plain = await store.rollups(query);
          const stepped = await store.rollups({ ...query, stepMs });
          const label = `${granularity} ${stepMs} ${principal}`;
          expect(stepped.buckets, label).toStrictEqual(groupBySteps(plain.buckets, stepMs));
          expect(stepped.buckets.length, label).toBeLessThan(plain.buckets.length);
          expect(stepped.byModel, label).toStrictEqual(plain.byModel);
        }
      }
      // Worked by hand from writeSpread (09:00 to 22:00 UTC): 6 h steps from 06:00, 12:00, 18:00,
      // the three principals in each (and c's refusal at 13:00), all 400 records in all.
      const sixHours = await store.rollups({ ...range, granularity: 'hour', stepMs: 6 * HOUR });
      expect(sixHours.buckets.map((b) => [b.ts, b.principal])).toStrictEqual([
        [T0 - 4 * HOUR, 'B'], [T0 - 4 * HOUR, 'a'], [T0 - 4 * HOUR, 'b'],
        [T0 + 2 * HOUR, 'B'], [T0 + 2 * HOUR, 'a'], [T0 + 2 * HOUR, 'b'], [T0 + 2 * HOUR, 'c'],
        [T0 + 8 * HOUR, 'B'], [T0 + 8 * HOUR, 'a'], [T0 + 8 * HOUR, 'b'],
      ]);
      expect(total(sixHours.buckets, 'requests')).toBe(400);
      expect(total(sixHours.buckets, 'promptTokens')).toBe((399 * 400) / 2);
      // 429s: i = 0, 11, …, 396 (37 records) and the two refusals.
      expect(total(sixHours.buckets, 'rateLimited')).toBe(37 + 2);
    },
  },
  {
    name: 'rollups in steps: steps start on multiples of stepMs (UTC), whatever sinceMs; a step holds only the range\'s buckets',
    async run(store) {
      // 09:55, 10:05, 10:19, 10:20, 10:41 UTC.
      const at = [T0 - 5 * MIN, T0 + 5 * MIN, T0 + 19 * MIN + 59_999, T0 + 20 * MIN, T0 + 41 * MIN];
      await store.recordUsage(at.map((ts, i) => rec({ ts, principal: 'a', promptTokens: 10 ** i, requestId: `r${i}` })));
      const rows = async (sinceMs: number, untilMs: number, stepMs: number, granularity: RollupGranularity = 'minute') =>
        (await store.rollups({ sinceMs, untilMs, granularity, stepMs })).buckets.map((b) => [b.ts, b.promptTokens]);
      // 20-minute steps from a since of 09:50: the first step starts 09:40 and holds 09:55 only.
      expect(await rows(T0 - 10 * MIN, T0 + HOUR, 20 * MIN)).toStrictEqual([[T0 - 20 * MIN, 1], [T0, 110], [T0 + 20 * MIN, 1_000], [T0 + 40 * MIN, 10_000]]);
      // since 10:06 leaves 09:55 and 10:05 out; until 10:21 leaves 10:41 out (the 10:20 step holds 10:20 only).
      expect(await rows(T0 + 6 * MIN, T0 + 21 * MIN, 20 * MIN)).toStrictEqual([[T0, 100], [T0 + 20 * MIN, 1_000]]);
      // 7 minutes does not divide an hour: steps on multiples of 420,000 ms since the epoch, and
      // T0 is 5 minutes past one (09:55, 10:02, 10:09, 10:16, …, 10:37).
      expect(T0 % (7 * MIN)).toBe(5 * MIN);
      expect(await rows(T0 - HOUR, T0 + HOUR, 7 * MIN)).toStrictEqual([[T0 - 5 * MIN, 1], [T0 + 2 * MIN, 10], [T0 + 16 * MIN, 1_100], [T0 + 37 * MIN, 10_000]]);
      // Hour rows in 6 h steps start at 00, 06, 12 or 18 UTC; in day steps at midnight UTC.
      expect(await rows(T0 - DAY, T0 + DAY, 6 * HOUR, 'hour')).toStrictEqual([[Date.UTC(2026, 0, 15, 6), 11_111]]);
      expect(await rows(T0 - DAY, T0 + DAY, DAY, 'hour')).toStrictEqual([[Date.UTC(2026, 0, 15), 11_111]]);
    },
  },
  {
    name: 'rollups in steps: a step longer than the range is one row per principal, at the step\'s start, with the range\'s buckets only',
    async run(store) {
      await store.recordUsage([
        rec({ ts: T0 - HOUR, principal: 'a', promptTokens: 1 }),
        rec({ ts: T0, principal: 'a', promptTokens: 2 }),
        rec({ ts: T0 + 30 * MIN, principal: 'b', promptTokens: 4, status: 500 }),
        rec({ ts: T0 + 90 * MIN, principal: 'a', promptTokens: 8 }),
        rec({ ts: T0 + 3 * HOUR, principal: 'a', promptTokens: 16 }),
      ]);
      const range = { sinceMs: T0, untilMs: T0 + 2 * HOUR };
      const year = 365 * DAY;
      for (const [granularity, stepMs] of [['minute', 30 * DAY], ['hour', year]] as const) {
        const expectedTs = Math.floor(T0 / stepMs) * stepMs;
        expect(expectedTs).toBeLessThan(T0);
        expect((await store.rollups({ ...range, granularity, stepMs })).buckets, `${granularity} ${stepMs}`).toStrictEqual([
          { ts: expectedTs, principal: 'a', ...sums({ requests: 2, promptTokens: 10, lat: { 2: 2 } }) },
          { ts: expectedTs, principal: 'b', ...sums({ requests: 1, promptTokens: 4, upstreamErrors: 1, lat: { 2: 1 } }) },
        ]);
      }
      // 365-day steps since the epoch: the one holding T0 starts 2025-12-18.
      expect((await store.rollups({ ...range, granularity: 'hour', stepMs: year, principal: 'b' })).buckets.map((b) => [b.ts, b.principal, b.requests]))
        .toStrictEqual([[Date.UTC(2025, 11, 18), 'b', 1]]);
    },
  },
  {
    name: 'rollups in steps: no stepMs is the same as stepMs = the bucket (one row per bucket), for both granularities and a principal',
    async run(store) {
      await writeSpread(store);
      for (const [granularity, bucket] of [['minute', MIN], ['hour', HOUR]] as const) {
        for (const principal of [undefined, 'a']) {
          const query = { sinceMs: 0, untilMs: FOREVER, granularity, ...(principal === undefined ? {} : { principal }) };
          const plain = await store.rollups(query);
          expect(plain.buckets.length).toBeGreaterThan(granularity === 'minute' ? 100 : 10);
          expect(await store.rollups({ ...query, stepMs: bucket })).toStrictEqual(plain);
          // And the plain rows are one per (bucket, principal) already.
          expect(groupBySteps(plain.buckets, bucket)).toStrictEqual(plain.buckets);
        }
      }
    },
  },
  {
    name: 'rollups in steps: a stepMs that is not a positive whole multiple of the bucket throws a RangeError',
    async run(store) {
      await store.recordUsage([rec({ ts: T0, principal: 'a' })]);
      const bad: Array<[RollupGranularity, number]> = [
        ['minute', 0], ['minute', -MIN], ['minute', 30_000], ['minute', 90_000], ['minute', MIN + 0.5], ['minute', Number.NaN],
        ['minute', Number.POSITIVE_INFINITY], ['minute', MIN * 2 ** 50], ['hour', MIN], ['hour', 90 * MIN], ['hour', -HOUR], ['hour', 0],
      ];
      for (const [granularity, stepMs] of bad) {
        await expect(store.rollups({ sinceMs: 0, untilMs: FOREVER, granularity, stepMs }), `${granularity} ${stepMs}`).rejects.toThrow(RangeError);
        await expect(store.rollups({ sinceMs: 0, untilMs: FOREVER, granularity, stepMs, principal: 'a' })).rejects.toThrow(/stepMs/);
      }
      // The good ones next to them answer.
      expect((await store.rollups({ sinceMs: 0, untilMs: FOREVER, granularity: 'hour', stepMs: 2 * HOUR })).buckets).toHaveLength(1);
      expect((await store.rollups({ sinceMs: 0, untilMs: FOREVER, granularity: 'minute', stepMs: 120 * MIN })).buckets).toHaveLength(1);
    },
  },
];
