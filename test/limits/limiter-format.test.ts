/**
 * The limiter's pure helpers (src/limits/limiter.ts): OpenAI's duration format for the
 * x-ratelimit-reset-* headers, rounded up to the next unit so a client that waits that long finds
 * room; and `tightest`, the rule state with the least room (optionally of one unit), whose numbers
 * the headers show.
 */
import { describe, expect, it } from 'vitest';
import { formatResetDuration, tightest, type RuleState } from '../../src/limits/limiter.js';

describe('formatResetDuration', () => {
  it.each([
    [-5, '0s'],
    [0, '0s'],
    [0.2, '1ms'],
    [1, '1ms'],
    [250, '250ms'],
    [999, '999ms'],
    [999.5, '1000ms'],
    [1000, '1s'],
    [1001, '2s'],
    [59_000, '59s'],
    [59_001, '1m0s'],
    [60_000, '1m0s'],
    [61_000, '1m1s'],
    [3_599_000, '59m59s'],
    [3_600_000, '1h0m0s'],
    [3_661_001, '1h1m2s'],
    [86_400_000, '24h0m0s'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatResetDuration(ms)).toBe(text);
  });
});

describe('tightest', () => {
  const state = (name: string, unit: RuleState['unit'], remaining: number): RuleState => ({ name, unit, limit: 100, used: 100 - remaining, remaining, windowMs: 1, resetMs: 0 });
  const states = [state('a', 'requests', 5), state('b', 'tokens', 1), state('c', 'requests', 2), state('d', 'requests', 9), state('e', 'requests', 2)];

  it('is the state with the least room, the first of equals', () => {
    expect(tightest(states)?.name).toBe('b');
    expect(tightest(states, 'requests')?.name).toBe('c');
    expect(tightest(states, 'tokens')?.name).toBe('b');
  });

  it('is undefined when no state has that unit, or there are none', () => {
    expect(tightest(states, 'usd')).toBeUndefined();
    expect(tightest([])).toBeUndefined();
  });
});
