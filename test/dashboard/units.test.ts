/**
 * The dashboard's arithmetic: latency percentiles read off bucket counts (the upper bound of the
 * bucket the rank falls in), the ranges' windows aligned to whole steps, and the overview's
 * grouping of rollup rows into steps, per key and in total.
 */
import { describe, expect, it } from 'vitest';
import { LATENCY_BOUNDS_MS } from '../../src/contract.js';
import { emptyLatency, percentiles, quantile } from '../../src/dashboard/latency.js';
import { parseRange, rangeWindow } from '../../src/dashboard/ranges.js';
import { buildOverview } from '../../src/dashboard/overview.js';

const counts = (byBound: Record<number, number>, overflow = 0) => {
  const c = emptyLatency();
  for (const [bound, n] of Object.entries(byBound)) c[LATENCY_BOUNDS_MS.indexOf(Number(bound) as never)] = n;
  c[LATENCY_BOUNDS_MS.length] = overflow;
  return c;
};

describe('percentiles from bucket counts', () => {
  it('the bucket that holds the rank gives its upper bound', () => {
    // 90 calls ≤ 25 ms, 9 ≤ 250 ms, 1 ≤ 2500 ms: the 50th is in 25, the 95th in 250, the 99th in 250, the 100th in 2500.
    const c = counts({ 25: 90, 250: 9, 2500: 1 });
    expect(percentiles(c)).toEqual({ p50: 25, p95: 250, p99: 250 });
    expect(quantile(c, 1)).toBe(2500);
    expect(quantile(c, 0.9)).toBe(25);
    expect(quantile(c, 0.91)).toBe(250);
  });

  it('no timed call: null; a rank past the last bound reads as the last bound', () => {
    expect(percentiles(emptyLatency())).toEqual({ p50: null, p95: null, p99: null });
    expect(percentiles(counts({ 5: 1 }, 3))).toEqual({ p50: 120_000, p95: 120_000, p99: 120_000 });
    expect(quantile(counts({ 5: 1 }), 0.01)).toBe(5);
  });
});

describe('ranges', () => {
  it('accepts the four names (default 24h) and nothing else', () => {
    expect(['1h', '24h', '7d', '30d'].map(parseRange)).toEqual(['1h', '24h', '7d', '30d']);
    expect(parseRange(undefined)).toBe('24h');
    for (const bad of ['1d', '24H', ['1h'], 7, null]) expect(() => parseRange(bad)).toThrow(/range must be one of/);
  });

  it('ends with the step that holds now, aligned to whole steps', () => {
    const now = Date.UTC(2026, 11, 1, 14, 37, 12);
    expect(rangeWindow('1h', now)).toMatchObject({ sinceMs: Date.UTC(2026, 11, 1, 13, 38), untilMs: Date.UTC(2026, 11, 1, 14, 38), steps: 60, granularity: 'minute' });
    expect(rangeWindow('24h', now)).toMatchObject({ sinceMs: Date.UTC(2026, 10, 30, 14, 40), untilMs: Date.UTC(2026, 11, 1, 14, 40), steps: 144 });
    expect(rangeWindow('7d', now)).toMatchObject({ untilMs: Date.UTC(2026, 11, 1, 15), steps: 168, granularity: 'hour' });
    expect(rangeWindow('30d', now)).toMatchObject({ untilMs: Date.UTC(2026, 11, 1, 18), steps: 120 });
  });
});

describe('the overview', () => {
  it('rows land in their step, per key and in total; rows outside the window are left out', () => {
    const window = rangeWindow('1h', Date.UTC(2026, 11, 1, 14, 0, 30));
    const row = (minute: number, principal: string, requests: number, latency: number[] = emptyLatency()) => ({
      ts: window.sinceMs + minute * 60_000,
      principal,
      requests,
      promptTokens: requests * 10,
      completionTokens: requests,
      costMicroUsd: requests * 1_500,
      rateLimited: 0,
      upstreamErrors: 0,
      latency,
    });
    const o = buildOverview(
      { buckets: [row(-1, 'a', 100), row(0, 'a', 2, counts({ 50: 2 })), row(0, 'b', 1), row(59, 'b', 4), row(60, 'a', 100)], byModel: [] },
      window,
      (id) => `name-${id}`,
    );
    expect(o.total).toMatchObject({ requests: 7, prompt_tokens: 70, completion_tokens: 7, total_tokens: 77, usd: 0.0105 });
    expect(o.total.series.requests[0]).toBe(3);
    expect(o.total.series.requests[59]).toBe(4);
    expect(o.total.series.latency_p50_ms[0]).toBe(50);
    expect(o.total.series.latency_p50_ms[1]).toBeNull();
    expect(o.by_key.map((k) => [k.id, k.name, k.requests])).toEqual([['b', 'name-b', 5], ['a', 'name-a', 2]]);
    expect(o.by_key[0]!.series.requests[59]).toBe(4);
  });
});
