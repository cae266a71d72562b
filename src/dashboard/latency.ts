/**
 * Latency percentiles read off the rollups' bucket counts (LATENCY_BOUNDS_MS): the quantile is
 * the upper bound of the bucket its rank falls in, so it is exact to a bucket and never smaller
 * than the true value. A rank in the open-ended bucket past the last bound reads as that bound.
 */
import { LATENCY_BOUNDS_MS } from '../contract.js';

export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1;

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** Adds `counts` into `into` (both LATENCY_BUCKETS long; a shorter `counts` adds what it has). */
export function addLatency(into: number[], counts: readonly number[]): void {
  for (let i = 0; i < into.length && i < counts.length; i++) into[i]! += counts[i] ?? 0;
}

export const emptyLatency = (): number[] => new Array<number>(LATENCY_BUCKETS).fill(0);

/** The `q` quantile (0 < q ≤ 1) of the durations counted in `counts`; null when none is. */
export function quantile(counts: readonly number[], q: number): number | null {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= rank) return LATENCY_BOUNDS_MS[Math.min(i, LATENCY_BOUNDS_MS.length - 1)]!;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
}

export function percentiles(counts: readonly number[]): Percentiles {
  return { p50: quantile(counts, 0.5), p95: quantile(counts, 0.95), p99: quantile(counts, 0.99) };
}
