/**
 * The overview reads rollups summed into its steps by the store (RollupQuery.stepMs): the query
 * it asks for carries each range's step, and the overview built from those rows is the one built
 * from the per-bucket rows (the series as before the store grouped them), on a real SQLite store,
 * for every range, all keys and one key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageRecord } from '../../src/contract.js';
import { buildOverview, rollupQuery } from '../../src/dashboard/overview.js';
import { RANGE_NAMES, rangeWindow } from '../../src/dashboard/ranges.js';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';

const NOW = Date.UTC(2026, 11, 1, 14, 37, 12);
const DAY = 86_400_000;
let store: SqliteStore;

beforeAll(async () => {
  store = new SqliteStore(openSqlite(':memory:'));
  await store.migrate();
  // 3,000 records over the last 31 days (some before every range), three keys, mixed statuses and durations.
  const records: UsageRecord[] = Array.from({ length: 3_000 }, (_, i) => ({
    ts: NOW - ((i * 2_654_435_761) % (31 * DAY)),
    requestId: `r${i}`,
    principal: ['k1', 'k2', 'k3'][i % 3]!,
    method: 'POST',
    path: '/v1/chat/completions',
    model: i % 5 === 0 ? null : `m${i % 2}`,
    status: i % 17 === 0 ? 429 : i % 19 === 0 ? 502 : 200,
    durationMs: (i * 131) % 20_000,
    stream: false,
    promptTokens: i % 100,
    completionTokens: i % 7,
    costMicroUsd: 13 * i,
    estimated: false,
    upstream: null,
  }));
  // 2,000 more over the last day (several per key in most 10-minute steps), a few in the step that holds now.
  for (let i = 0; i < 2_000; i++) records.push({ ...records[i]!, requestId: `day${i}`, ts: NOW - ((i * 7_919_357) % DAY) });
  for (let i = 0; i < 5; i++) records.push({ ...records[i]!, requestId: `now${i}`, ts: NOW - i * 1_000 });
  await store.recordUsage(records);
});
afterAll(async () => {
  await store?.close();
});

describe('the overview in steps', () => {
  it.each(RANGE_NAMES)('%s: the query carries the step; stepped rows give the same overview as bucket rows', async (name) => {
    const window = rangeWindow(name, NOW);
    for (const principal of [undefined, 'k2']) {
      const query = rollupQuery(window, principal);
      expect(query).toStrictEqual({ sinceMs: window.sinceMs, untilMs: window.untilMs, granularity: window.granularity, stepMs: window.stepMs, ...(principal === undefined ? {} : { principal }) });
      const stepped = await store.rollups(query);
      const { stepMs: _, ...perBucket } = query;
      const plain = await store.rollups(perBucket);
      const nameOf = (id: string) => `name-${id}`;
      const overview = buildOverview(stepped, window, nameOf);
      expect(overview).toStrictEqual(buildOverview(plain, window, nameOf));
      // The store did group (fewer rows, except where a step is one bucket), and there is data to compare.
      if (window.stepMs > (window.granularity === 'minute' ? 60_000 : 3_600_000)) expect(stepped.buckets.length).toBeLessThan(plain.buckets.length);
      expect(overview.total.requests).toBeGreaterThan(0);
      expect(overview.total.series.requests.at(-1)).toBeGreaterThan(0);
    }
  });
});
