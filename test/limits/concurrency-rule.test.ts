/**
 * Limiter contract, concurrency caps: a rule whose window has no length (CONCURRENT_WINDOW_MS)
 * counts only what calls in flight hold. Held slots fill it; counted events, at any time, never
 * do; a commit to 0 or a release frees the slot at once; a refusal says "retry soon" (only holds
 * are in the way), and holds that are never settled leave with their expiry. For every limiter.
 */
import { describe, expect, it } from 'vitest';
import { CONCURRENT_WINDOW_MS } from '../../src/limits/rules.js';
import type { LimitRule } from '../../src/limits/limiter.js';
import { costs, HOUR, KINDS, limiterFixture, T0 } from './limiter-helpers.js';

const cap = (limit: number): LimitRule => ({ name: 'concurrent', series: 'c', unit: 'requests', windowMs: CONCURRENT_WINDOW_MS, limit });

describe.each(KINDS)('%s limiter', (kind) => {
  const { ctx, take, hold, prune } = limiterFixture(kind, { holdTtlMs: HOUR });

  it('admits while slots are free, refuses the next with the holds-only hint, and frees a slot on commit(0) and release', async () => {
    const rules = [cap(2)];
    const a = await hold(rules);
    const b = await hold(rules);
    expect([a.admitted, b.admitted]).toEqual([true, true]);
    const refused = await hold(rules);
    expect(refused).toMatchObject({ admitted: false, blockedBy: 'concurrent', retryAfterMs: 1000 });
    expect(refused.states[0]).toMatchObject({ used: 2, remaining: 0 });

    await ctx.limiter.commit(a.reservation!, { c: 0 });
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1 });
    expect((await hold(rules)).admitted).toBe(true);
    await ctx.limiter.release(b.reservation!);
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1 });
  });

  it('never counts events, whenever they were counted', async () => {
    const rules = [cap(1)];
    for (let i = 0; i < 5; i++) {
      ctx.now = T0 + i;
      expect((await take(rules)).admitted).toBe(true);
    }
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 0, remaining: 1, resetMs: 0 });
    // A slot committed with its amount (not 0) is counted as an event: gone from the cap too.
    const held = await hold(rules);
    await ctx.limiter.commit(held.reservation!);
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 0 });
  });

  it('shares one series with a windowed rule without either counting the other', async () => {
    const windowed: LimitRule = { name: 'hourly', series: 'w', unit: 'requests', windowMs: HOUR, limit: 10 };
    const rules = [cap(1), windowed];
    const first = await ctx.limiter.reserve(rules, { ...costs([cap(1)], 1, true), w: { amount: 1, hold: false } });
    expect(first.admitted).toBe(true);
    const second = await ctx.limiter.reserve(rules, { ...costs([cap(1)], 1, true), w: { amount: 1, hold: false } });
    expect(second).toMatchObject({ admitted: false, blockedBy: 'concurrent' });
    const states = await ctx.limiter.peek(rules);
    expect(states.map((s) => [s.name, s.used])).toEqual([
      ['concurrent', 1],
      ['hourly', 1], // the refused call was not counted
    ]);
  });

  it('lets a hold that is never settled go when it expires', async () => {
    const rules = [cap(1)];
    expect((await hold(rules)).admitted).toBe(true);
    expect((await hold(rules)).admitted).toBe(false);
    ctx.now = T0 + HOUR + 1;
    await prune(() => HOUR);
    expect((await hold(rules)).admitted).toBe(true);
  });
});
