/** Small statistics helpers: percentiles (nearest rank) over unsorted samples. */

export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Nearest-rank percentile of already sorted values; NaN when empty. */
export function pct(sortedValues: readonly number[], p: number): number {
  if (sortedValues.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sortedValues.length);
  return sortedValues[Math.min(sortedValues.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

export function summarise(values: readonly number[]): Summary {
  const s = sorted(values);
  return { n: s.length, median: pct(s, 50), p99: pct(s, 99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

export const median = (values: readonly number[]) => pct(sorted(values), 50);

/** Rotates `items` by `round` so no target always goes first. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % Math.max(1, items.length);
  return [...items.slice(k), ...items.slice(0, k)];
}

export const round = (value: number, digits = 3) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : null);
