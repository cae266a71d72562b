/** Shared by the per-key limit tests: time units, the injected clock's start, and the 429 check. */
import { expect } from 'vitest';
import type { HttpResult } from './helpers.js';

export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const T0 = 1_750_000_000_000;

/** A 429 rate_limit_exceeded whose message matches `words`, with exactly this Retry-After (null: none). */
export function expect429(r: HttpResult, words: RegExp, retryAfterMs: number | null): void {
  expect(r.status, r.text).toBe(429);
  const error = (r.body as { error: Record<string, unknown> }).error;
  expect(error).toMatchObject({ code: 'rate_limit_exceeded', param: null });
  expect(String(error.message)).toMatch(words);
  if (retryAfterMs === null) {
    expect(r.headers.get('retry-after')).toBeNull();
    expect(r.headers.get('retry-after-ms')).toBeNull();
  } else {
    expect(r.headers.get('retry-after-ms')).toBe(String(retryAfterMs));
    expect(r.headers.get('retry-after')).toBe(String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  }
}
