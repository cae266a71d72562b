/**
 * How several refused rules make one refusal (src/limits/window-math.ts `refusal`): the rule with
 * the longest wait is named, the first of equal waits; one rule that no wait can satisfy (the
 * cost alone exceeds its limit) makes the whole refusal "never" (no Retry-After) and is the one
 * named (the 429 says which limit the request alone exceeds), wherever it stands; rules that fit do not count; all fit → admitted (null).
 */
import { describe, expect, it } from 'vitest';
import { refusal, type Judgement } from '../../src/limits/window-math.js';
import type { LimitRule } from '../../src/limits/limiter.js';

const rule = (name: string): LimitRule => ({ name, series: name, unit: 'requests', windowMs: 3_600_000, limit: 10 });
const judgement = (name: string, fits: boolean, retryAfterMs?: number): Judgement => ({
  state: { name, unit: 'requests', limit: 10, used: fits ? 1 : 10, remaining: fits ? 9 : 0, windowMs: 3_600_000, resetMs: 0 },
  fits,
  retryAfterMs,
  leavesAt: (ts) => ts + 3_600_000,
});

function decide(...js: Judgement[]) {
  return refusal(js.map((j) => rule(j.state.name)), js);
}

describe('refusal', () => {
  it('admits when every rule fits', () => {
    expect(decide(judgement('a', true), judgement('b', true))).toBeNull();
    expect(decide()).toBeNull();
  });

  it('names the rule with the longest wait, and waits that long', () => {
    const decision = decide(judgement('short', false, 2_000), judgement('fits', true), judgement('long', false, 9_000), judgement('mid', false, 5_000));
    expect(decision).toMatchObject({ admitted: false, blockedBy: 'long', retryAfterMs: 9_000 });
    expect(decision!.states.map((s) => s.name)).toEqual(['short', 'fits', 'long', 'mid']);
  });

  it('names the first of equal waits', () => {
    expect(decide(judgement('fits', true), judgement('first', false, 3_000), judgement('second', false, 3_000))).toMatchObject({ blockedBy: 'first', retryAfterMs: 3_000 });
  });

  it('is never (no wait) and names that rule when one rule can never fit, before or after the others', () => {
    const before = decide(judgement('never', false, undefined), judgement('wait', false, 5_000));
    expect(before).toMatchObject({ admitted: false, blockedBy: 'never' });
    expect(before!.retryAfterMs).toBeUndefined();
    const after = decide(judgement('wait', false, 5_000), judgement('never', false, undefined), judgement('never-too', false, undefined));
    expect(after).toMatchObject({ admitted: false, blockedBy: 'never' });
    expect(after!.retryAfterMs).toBeUndefined();
    const alone = decide(judgement('fits', true), judgement('never', false, undefined));
    expect(alone).toMatchObject({ admitted: false, blockedBy: 'never' });
    expect(alone!.retryAfterMs).toBeUndefined();
  });
});
