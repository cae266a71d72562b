/**
 * Limiter contract, counting: every limiter (SQLite, in-memory, a cluster worker's asking an
 * in-memory one over IPC, and Redis) with an injected clock give exact rolling windows,
 * count one event in several rules of a series, keep series apart, and give exact Retry-After and
 * state values.
 */
import { describe, expect, it } from 'vitest';
import { byName, DAY, daily, HOUR, hourly, KINDS, limiterFixture, T0 } from './limiter-helpers.js';

describe.each(KINDS)('%s limiter', (kind) => {
  const { ctx, take, fillAt, storedTimes } = limiterFixture(kind);

  describe('rolling windows', () => {
    it('counts an event until exactly t + window, then lets it leave', async () => {
      const rules = [hourly(1)];
      await fillAt(rules, [0]);

      ctx.now = T0 + HOUR - 1;
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 0, resetMs: 1 });
      const blocked = await take(rules);
      expect(blocked.admitted).toBe(false);
      expect(blocked.retryAfterMs).toBe(1);

      ctx.now = T0 + HOUR;
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 0, remaining: 1, resetMs: 0 });
      expect((await take(rules)).admitted).toBe(true);
    });

    it('counts one event in both the hourly and the daily rule of one series', async () => {
      const rules = [hourly(10), daily(100)];
      await fillAt(rules, [0, 1000, 2000]);
      const states = await ctx.limiter.peek(rules);
      expect(byName(states, 'hourly')).toMatchObject({ used: 3, remaining: 7 });
      expect(byName(states, 'daily')).toMatchObject({ used: 3, remaining: 97 });

      // Two hours later the hourly window is empty, the daily one still holds all three.
      ctx.now = T0 + 2 * HOUR;
      const later = await ctx.limiter.peek(rules);
      expect(byName(later, 'hourly')).toMatchObject({ used: 0, remaining: 10, resetMs: 0 });
      expect(byName(later, 'daily')).toMatchObject({ used: 3, remaining: 97, resetMs: DAY - 2 * HOUR });
    });

    it('keeps series apart', async () => {
      await fillAt([hourly(2, 'a')], [0, 1]);
      expect((await take([hourly(2, 'a')])).admitted).toBe(false);
      expect((await take([hourly(2, 'b')])).admitted).toBe(true);
      expect((await ctx.limiter.peek([hourly(2, 'a'), hourly(2, 'b')])).map((s) => s.used)).toEqual([2, 1]);
    });

    it('admits only if every rule has room, and then reserves in none when one refuses', async () => {
      ctx.now = T0;
      const rules = [hourly(5), daily(2)];
      await fillAt(rules, [0, 1000]);
      ctx.now = T0 + 2000;
      const refused = await take(rules);
      expect(refused.admitted).toBe(false);
      expect(refused.blockedBy).toBe('daily');
      expect(refused.reservation).toBeUndefined();
      // The refused request reserved nothing: hourly still shows the two admitted ones.
      const states = await ctx.limiter.peek(rules);
      expect(byName(states, 'hourly')).toMatchObject({ used: 2, remaining: 3 });
      expect(byName(states, 'daily')).toMatchObject({ used: 2, remaining: 0 });
    });
    it('counts at the newest event\'s time when the clock goes back (times never go back in a series)', async () => {
      const rules = [hourly(10)];
      await fillAt(rules, [10_000]);
      ctx.now = T0; // 10 s back
      const decision = await take(rules);
      expect(decision.admitted).toBe(true);
      expect(decision.states[0]).toMatchObject({ used: 2, resetMs: HOUR + 10_000 });
      const times = await storedTimes('s');
      expect(times.length).toBeGreaterThan(0);
      expect(new Set(times)).toEqual(new Set([T0 + 10_000]));
      // Both leave the window together, an hour after the newest time.
      ctx.now = T0 + 10_000 + HOUR - 1;
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(2);
      ctx.now = T0 + 10_000 + HOUR;
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(0);
    });
  });

  describe('exact retry and state values', () => {
    it('gives the exact wait until the oldest event leaves (limit 3, events at 0, 10 s, 20 s)', async () => {
      const rules = [hourly(3)];
      await fillAt(rules, [0, 10_000, 20_000]);
      ctx.now = T0 + 30_000;
      const decision = await take(rules);
      expect(decision.admitted).toBe(false);
      expect(decision.blockedBy).toBe('hourly');
      expect(decision.retryAfterMs).toBe(HOUR - 30_000);
      expect(decision.states).toEqual([{ name: 'hourly', unit: 'requests', limit: 3, used: 3, remaining: 0, windowMs: HOUR, resetMs: HOUR - 30_000 }]);

      // At that exact moment the first event has left and one request fits again, no more.
      ctx.now += HOUR - 30_000;
      const admitted = await take(rules);
      expect(admitted.admitted).toBe(true);
      const again = await take(rules);
      expect(again.admitted).toBe(false);
      expect(again.retryAfterMs).toBe(10_000);
    });

    it('waits for as many events to leave as the cost needs', async () => {
      const rules = [hourly(5)];
      await fillAt(rules, [0, 1000, 2000, 3000, 4000]);
      ctx.now = T0 + 5000;
      const decision = await take(rules, 3); // three must leave: the third one leaves at 2000 + HOUR
      expect(decision.admitted).toBe(false);
      expect(decision.retryAfterMs).toBe(2000 + HOUR - 5000);
      ctx.now = T0 + 2000 + HOUR - 1;
      expect((await take(rules, 3)).admitted).toBe(false);
      ctx.now = T0 + 2000 + HOUR;
      expect((await take(rules, 3)).admitted).toBe(true);
    });

    it('gives the larger wait when both rules refuse (daily longer)', async () => {
      const rules = [hourly(2), daily(3)];
      await fillAt(rules, [0, 2 * HOUR, 2 * HOUR + 10_000]);
      ctx.now = T0 + 2 * HOUR + 20_000;
      const decision = await take(rules);
      expect(decision.admitted).toBe(false);
      // hourly frees up when the event at 2h leaves; daily only when the one at 0 leaves.
      expect(decision.retryAfterMs).toBe(DAY - (2 * HOUR + 20_000));
      expect(decision.blockedBy).toBe('daily');
    });

    it('gives the larger wait when both rules refuse (hourly longer)', async () => {
      const rules = [hourly(1), daily(2)];
      await fillAt(rules, [0, DAY - 30 * 60_000]);
      ctx.now = T0 + DAY - 10 * 60_000;
      const decision = await take(rules);
      expect(decision.admitted).toBe(false);
      expect(decision.retryAfterMs).toBe(40 * 60_000); // hourly: (DAY - 30 min) + 1 h - now
      expect(decision.blockedBy).toBe('hourly');
      // daily alone would have allowed it 10 minutes from now; hourly still refuses then.
      ctx.now += 10 * 60_000;
      const later = await take(rules);
      expect(later.admitted).toBe(false);
      expect(later.blockedBy).toBe('hourly');
      expect(later.retryAfterMs).toBe(30 * 60_000);
    });

    it('reports used, remaining and resetMs including the admitted request', async () => {
      const rules = [hourly(4), daily(10)];
      ctx.now = T0;
      const first = await take(rules);
      expect(first.states).toEqual([
        { name: 'hourly', unit: 'requests', limit: 4, used: 1, remaining: 3, windowMs: HOUR, resetMs: HOUR },
        { name: 'daily', unit: 'requests', limit: 10, used: 1, remaining: 9, windowMs: DAY, resetMs: DAY },
      ]);
      ctx.now = T0 + 60_000;
      const second = await take(rules);
      expect(second.states).toEqual([
        { name: 'hourly', unit: 'requests', limit: 4, used: 2, remaining: 2, windowMs: HOUR, resetMs: HOUR - 60_000 },
        { name: 'daily', unit: 'requests', limit: 10, used: 2, remaining: 8, windowMs: DAY, resetMs: DAY - 60_000 },
      ]);
      expect(await ctx.limiter.peek(rules)).toEqual(second.states);
    });

    it('never promises a retry for a cost larger than the limit', async () => {
      const decision = await take([hourly(3)], 4);
      expect(decision.admitted).toBe(false);
      expect(decision.retryAfterMs).toBeUndefined();
      expect((await ctx.limiter.peek([hourly(3)]))[0]!.used).toBe(0);
    });
  });
});
