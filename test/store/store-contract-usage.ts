/**
 * Store contract, usage records: batches, totals over [since, until) with exact boundaries, per
 * principal, per status, USD from micro-dollars, values past 32 bits, a 5,000-record batch, odd
 * strings in every text field, the upstream that served (kept, and queried by), and pruning.
 */
import { expect } from 'vitest';
import type { UsageTotals } from '../../src/contract.js';
import { FOREVER, usageRecord as rec, type StoreCase } from './store-contract-fixtures.js';

const ZERO: UsageTotals = { requests: 0, promptTokens: 0, completionTokens: 0, usd: 0, byStatus: {} };
const ALL = { sinceMs: 0, untilMs: FOREVER };

export const usageCases: StoreCase[] = [
  {
    name: 'no records: zero totals and no principals; an empty batch writes nothing',
    async run(store) {
      expect(await store.usage(ALL)).toStrictEqual({ total: ZERO, byPrincipal: {} });
      await store.recordUsage([]);
      expect(await store.usage(ALL)).toStrictEqual({ total: ZERO, byPrincipal: {} });
    },
  },
  {
    name: 'totals add up over batches, per principal and per status, with USD from micro-dollars',
    async run(store) {
      await store.recordUsage([
        rec({ ts: 1_000, principal: 'a', status: 200, promptTokens: 10, completionTokens: 20, costMicroUsd: 1_500_000 }),
        rec({ ts: 1_001, principal: 'a', status: 200, promptTokens: 1, completionTokens: 2, costMicroUsd: 250_000 }),
      ]);
      await store.recordUsage([rec({ ts: 1_002, principal: 'a', status: 429 })]);
      await store.recordUsage([
        rec({ ts: 1_003, principal: 'b', status: 200, promptTokens: 100, completionTokens: 200, costMicroUsd: 2_000_000 }),
        rec({ ts: 1_004, principal: 'b', status: 500, promptTokens: 5, costMicroUsd: 0 }),
      ]);
      expect(await store.usage(ALL)).toStrictEqual({
        total: { requests: 5, promptTokens: 116, completionTokens: 222, usd: 3.75, byStatus: { '200': 3, '429': 1, '500': 1 } },
        byPrincipal: {
          a: { requests: 3, promptTokens: 11, completionTokens: 22, usd: 1.75, byStatus: { '200': 2, '429': 1 } },
          b: { requests: 2, promptTokens: 105, completionTokens: 200, usd: 2, byStatus: { '200': 1, '500': 1 } },
        },
      });
    },
  },
  {
    name: 'the window is [since, until): a record at since counts, one at until does not',
    async run(store) {
      // Prompt tokens 1, 2, 4, 8, 16: a sum names exactly which records were counted.
      const ts = [999, 1_000, 1_500, 1_999, 2_000];
      await store.recordUsage(ts.map((t, i) => rec({ ts: t, principal: 'a', promptTokens: 2 ** i })));
      const prompt = async (sinceMs: number, untilMs: number) => (await store.usage({ sinceMs, untilMs })).total;
      expect(await prompt(1_000, 2_000)).toMatchObject({ requests: 3, promptTokens: 14 });
      expect(await prompt(1_000, 1_001)).toMatchObject({ requests: 1, promptTokens: 2 });
      expect(await prompt(999, 1_000)).toMatchObject({ requests: 1, promptTokens: 1 });
      expect(await prompt(1_999, 2_000)).toMatchObject({ requests: 1, promptTokens: 8 });
      expect(await prompt(2_000, 2_001)).toMatchObject({ requests: 1, promptTokens: 16 });
      expect(await prompt(1_001, 1_500)).toStrictEqual(ZERO);
      expect(await prompt(1_500, 1_500)).toStrictEqual(ZERO);
      expect(await prompt(2_001, FOREVER)).toStrictEqual(ZERO);
      expect(await prompt(0, FOREVER)).toMatchObject({ requests: 5, promptTokens: 31 });
    },
  },
  {
    name: 'a principal query counts only that principal, within the window; an unknown one is zero',
    async run(store) {
      await store.recordUsage([
        rec({ ts: 10, principal: 'a', promptTokens: 1, costMicroUsd: 1_000_000 }),
        rec({ ts: 20, principal: 'b', promptTokens: 2, status: 401 }),
        rec({ ts: 30, principal: 'a', promptTokens: 4, status: 502 }),
        rec({ ts: 40, principal: 'a', promptTokens: 8 }),
        rec({ ts: 50, principal: 'ab', promptTokens: 16 }),
      ]);
      const onlyA = { requests: 3, promptTokens: 13, completionTokens: 0, usd: 1, byStatus: { '200': 2, '502': 1 } };
      expect(await store.usage({ ...ALL, principal: 'a' })).toStrictEqual({ total: onlyA, byPrincipal: { a: onlyA } });
      const aInWindow = { requests: 1, promptTokens: 4, completionTokens: 0, usd: 0, byStatus: { '502': 1 } };
      expect(await store.usage({ sinceMs: 11, untilMs: 40, principal: 'a' })).toStrictEqual({ total: aInWindow, byPrincipal: { a: aInWindow } });
      expect(await store.usage({ ...ALL, principal: 'nobody' })).toStrictEqual({ total: ZERO, byPrincipal: {} });
      expect(await store.usage({ ...ALL, principal: 'A' })).toStrictEqual({ total: ZERO, byPrincipal: {} });
      // Principals without records in the window are not listed.
      expect(Object.keys((await store.usage({ sinceMs: 15, untilMs: 45 })).byPrincipal).sort()).toStrictEqual(['a', 'b']);
    },
  },
  {
    name: 'byPrincipal lists principals in byte order (upper case first), whatever the order written',
    async run(store) {
      const names = ['b', 'key_a', 'B', 'a', 'key_Z', 'Ä'];
      await store.recordUsage(names.map((principal, i) => rec({ ts: 100 + i, principal })));
      expect(Object.keys((await store.usage(ALL)).byPrincipal)).toStrictEqual(['B', 'a', 'b', 'key_Z', 'key_a', 'Ä']);
    },
  },
  {
    name: 'USD is micro-dollars / 1e6: one micro-dollar, sub-cent sums, whole dollars',
    async run(store) {
      await store.recordUsage([
        rec({ ts: 1, principal: 'tiny', costMicroUsd: 1 }),
        rec({ ts: 2, principal: 'tiny', costMicroUsd: 1 }),
        rec({ ts: 3, principal: 'tiny', costMicroUsd: 1 }),
        rec({ ts: 4, principal: 'mixed', costMicroUsd: 123_456_000 }),
        rec({ ts: 5, principal: 'mixed', costMicroUsd: 789 }),
        rec({ ts: 6, principal: 'free', costMicroUsd: 0 }),
      ]);
      const { total, byPrincipal } = await store.usage(ALL);
      expect(byPrincipal.tiny?.usd).toBe(0.000003);
      expect(byPrincipal.mixed?.usd).toBe(123.456789);
      expect(byPrincipal.free?.usd).toBe(0);
      expect(total.usd).toBeCloseTo(123.456792, 9);
    },
  },
  {
    name: 'counts past 32 bits stay exact: tokens and micro-dollars',
    async run(store) {
      await store.recordUsage([
        rec({ ts: 1, principal: 'big', promptTokens: 3_000_000_000, completionTokens: 4_294_967_296, costMicroUsd: 5_000_000_000_000 }),
        rec({ ts: 2, principal: 'big', promptTokens: 3_000_000_000, completionTokens: 1, costMicroUsd: 2_500_000_000_000 }),
      ]);
      expect((await store.usage(ALL)).total).toStrictEqual({
        requests: 2,
        promptTokens: 6_000_000_000,
        completionTokens: 4_294_967_297,
        usd: 7_500_000,
        byStatus: { '200': 2 },
      });
    },
  },
  {
    name: 'a batch of 5,000 records in one call: every record counted, windows exact',
    async run(store) {
      // Record i: ts 10,000 + i, principal even/odd by i, i prompt tokens, 1 completion token,
      // 2 micro-dollars, status 500 for every tenth record.
      const records = Array.from({ length: 5_000 }, (_, i) =>
        rec({ ts: 10_000 + i, principal: i % 2 === 0 ? 'even' : 'odd', status: i % 10 === 0 ? 500 : 200, promptTokens: i, completionTokens: 1, costMicroUsd: 2, requestId: `r${i}` }),
      );
      await store.recordUsage(records);
      const { total, byPrincipal } = await store.usage(ALL);
      // 0 + 1 + … + 4,999 = 4,999 · 5,000 / 2; even i sum to 2 · (0 + … + 2,499) = 6,247,500.
      expect(total).toMatchObject({ requests: 5_000, promptTokens: 12_497_500, completionTokens: 5_000, byStatus: { '200': 4_500, '500': 500 } });
      expect(total.usd).toBeCloseTo(0.01, 12);
      expect(byPrincipal.even).toMatchObject({ requests: 2_500, promptTokens: 6_247_500, byStatus: { '200': 2_000, '500': 500 } });
      expect(byPrincipal.odd).toMatchObject({ requests: 2_500, promptTokens: 6_250_000, byStatus: { '200': 2_500 } });
      // Records 1,000 … 1,999: (1,000 + 1,999) · 1,000 / 2.
      expect((await store.usage({ sinceMs: 11_000, untilMs: 12_000 })).total).toMatchObject({ requests: 1_000, promptTokens: 1_499_500 });
    },
  },
  {
    name: 'any text in a record is kept: quotes, commas, braces, backslashes, NULL, unicode; model may be null',
    async run(store) {
      const odd = ['key,"weird"{}\\', 'NULL', 'ünï 🙂', "it's", ''];
      await store.recordUsage(
        odd.map((s, i) => rec({ ts: i + 1, principal: s, requestId: s, path: `/v1/${s}`, method: s || 'GET', model: i % 2 === 0 ? null : s, stream: i % 2 === 0, estimated: i % 3 === 0, promptTokens: 1 })),
      );
      const { total, byPrincipal } = await store.usage(ALL);
      expect(total.requests).toBe(5);
      expect(Object.keys(byPrincipal).sort()).toStrictEqual([...odd].sort());
      for (const s of odd) expect(byPrincipal[s]?.requests, JSON.stringify(s)).toBe(1);
    },
  },
  {
    name: 'the upstream that served is kept: a query by upstream counts only its records (within the window, per principal); none (null, absent) only in the totals',
    async run(store) {
      const odd = 'azure "eu",{}\\ ünï';
      await store.recordUsage([
        rec({ ts: 10, principal: 'a', upstream: 'openai-a', promptTokens: 1, costMicroUsd: 1_000_000 }),
        rec({ ts: 20, principal: 'b', upstream: 'openai-a', promptTokens: 2, status: 502 }),
        rec({ ts: 30, principal: 'a', upstream: odd, promptTokens: 4 }),
        rec({ ts: 40, principal: 'a', upstream: null, promptTokens: 8, status: 429 }),
        rec({ ts: 50, principal: 'b', promptTokens: 16 }),
      ]);
      const { upstream: _absent, ...withoutUpstream } = rec({ ts: 60, principal: 'c', promptTokens: 32 });
      await store.recordUsage([withoutUpstream]);
      expect((await store.usage(ALL)).total).toMatchObject({ requests: 6, promptTokens: 63 });
      expect(await store.usage({ ...ALL, upstream: 'openai-a' })).toStrictEqual({
        total: { requests: 2, promptTokens: 3, completionTokens: 0, usd: 1, byStatus: { '200': 1, '502': 1 } },
        byPrincipal: {
          a: { requests: 1, promptTokens: 1, completionTokens: 0, usd: 1, byStatus: { '200': 1 } },
          b: { requests: 1, promptTokens: 2, completionTokens: 0, usd: 0, byStatus: { '502': 1 } },
        },
      });
      expect((await store.usage({ ...ALL, upstream: odd })).total).toMatchObject({ requests: 1, promptTokens: 4 });
      expect((await store.usage({ sinceMs: 11, untilMs: FOREVER, upstream: 'openai-a' })).total).toMatchObject({ requests: 1, promptTokens: 2 });
      expect((await store.usage({ ...ALL, upstream: 'openai-a', principal: 'b' })).total).toMatchObject({ requests: 1, promptTokens: 2 });
      expect(await store.usage({ ...ALL, upstream: 'nobody' })).toStrictEqual({ total: ZERO, byPrincipal: {} });
      expect(await store.usage({ ...ALL, upstream: 'OPENAI-A' })).toStrictEqual({ total: ZERO, byPrincipal: {} });
    },
  },
  {
    name: 'pruneUsage deletes records strictly older than beforeMs and answers how many',
    async run(store) {
      expect(await store.pruneUsage(1_000)).toBe(0);
      await store.recordUsage([
        rec({ ts: 100, principal: 'a', promptTokens: 1 }),
        rec({ ts: 200, principal: 'a', promptTokens: 2 }),
        rec({ ts: 200, principal: 'b', promptTokens: 4 }),
        rec({ ts: 300, principal: 'b', promptTokens: 8 }),
      ]);
      expect(await store.pruneUsage(200)).toBe(1);
      expect((await store.usage(ALL)).total).toMatchObject({ requests: 3, promptTokens: 14 });
      expect(await store.pruneUsage(200)).toBe(0);
      expect(await store.pruneUsage(301)).toBe(3);
      expect(await store.usage(ALL)).toStrictEqual({ total: ZERO, byPrincipal: {} });
      await store.recordUsage([rec({ ts: 50, principal: 'c', promptTokens: 16 })]);
      expect((await store.usage(ALL)).total).toMatchObject({ requests: 1, promptTokens: 16 });
    },
  },
];
