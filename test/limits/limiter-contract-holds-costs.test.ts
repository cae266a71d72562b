/**
 * Limiter contract, holds and costs: every limiter (SQLite, in-memory, a cluster worker's asking
 * an in-memory one over IPC, and Redis) with an injected clock count a hold
 * while in flight and from its commit, free it on release and settle it once; costs of 0, above 1,
 * and invalid ones.
 */
import { describe, expect, it } from 'vitest';
import { daily, HOUR, hourly, KINDS, limiterFixture, T0 } from './limiter-helpers.js';

describe.each(KINDS)('%s limiter', (kind) => {
  const { ctx, take, hold, fillAt, storedTimes } = limiterFixture(kind);

  describe('hold mode', () => {
    it('counts a hold while in flight and counts it at commit time', async () => {
      const rules = [hourly(2)];
      ctx.now = T0;
      const decision = await hold(rules);
      expect(decision.admitted).toBe(true);
      expect(decision.reservation?.held).toEqual({ s: 1 });
      expect(decision.states[0]).toMatchObject({ used: 1, remaining: 1 });
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1, resetMs: 0 });

      ctx.now = T0 + 5000;
      await ctx.limiter.commit(decision.reservation!);
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1, resetMs: HOUR });

      // Counted from the commit, not from the reservation.
      ctx.now = T0 + 5000 + HOUR - 1;
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1);
      ctx.now = T0 + 5000 + HOUR;
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(0);
    });

    it('frees the slot on release', async () => {
      const rules = [hourly(1), daily(1)];
      const decision = await hold(rules);
      expect((await hold(rules)).admitted).toBe(false);
      await ctx.limiter.release(decision.reservation!);
      expect((await ctx.limiter.peek(rules)).map((s) => s.used)).toEqual([0, 0]);
      expect((await take(rules)).admitted).toBe(true);
    });

    it('settles a reservation once: a second commit or a release after commit changes nothing', async () => {
      const rules = [hourly(5)];
      const decision = await hold(rules, 2);
      await ctx.limiter.commit(decision.reservation!);
      await ctx.limiter.commit(decision.reservation!);
      await ctx.limiter.release(decision.reservation!);
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 2, remaining: 3 });
    });

    it('commit and release are no-ops for unheld reservations', async () => {
      const rules = [hourly(5)];
      const decision = await take(rules);
      expect(decision.reservation?.held).toEqual({});
      await ctx.limiter.release(decision.reservation!);
      await ctx.limiter.commit(decision.reservation!);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1);
    });

    it('refuses with a retry when only holds fill the window', async () => {
      const rules = [hourly(2)];
      await hold(rules);
      await hold(rules);
      const decision = await hold(rules);
      expect(decision.admitted).toBe(false);
      expect(decision.retryAfterMs).toBeGreaterThan(0);
      expect((await take(rules)).admitted).toBe(false);
    });

    it('holds and counted events add up in every rule of the series', async () => {
      const rules = [hourly(3), daily(4)];
      await fillAt(rules, [0, 1000]);
      ctx.now = T0 + 2000;
      const held = await hold(rules);
      expect(held.states.map((s) => s.used)).toEqual([3, 3]);
      const refused = await take(rules);
      expect(refused.admitted).toBe(false);
      expect(refused.blockedBy).toBe('hourly');
      expect(refused.retryAfterMs).toBe(HOUR - 2000);
    });
  });

  describe('costs', () => {
    it('admits a cost of 0 even when full, and it counts nothing', async () => {
      const rules = [hourly(1)];
      const zero = await take(rules, 0);
      expect(zero.admitted).toBe(true);
      expect(zero.states[0]).toMatchObject({ used: 0, remaining: 1, resetMs: 0 });
      await take(rules);
      expect((await take(rules, 0)).admitted).toBe(true);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1);
      expect(await storedTimes('s')).toEqual([T0]); // one stored event: the counted one, none for the zeros
    });

    it('rejects non-integer, negative and non-finite costs without reserving', async () => {
      const rules = [hourly(10)];
      for (const cost of [0.5, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(take(rules, cost)).rejects.toThrow(RangeError);
        await expect(hold(rules, cost)).rejects.toThrow(RangeError);
      }
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(0);
    });

    it('counts a cost above 1 as that many', async () => {
      const rules = [hourly(10)];
      expect((await take(rules, 4)).states[0]).toMatchObject({ used: 4, remaining: 6 });
      expect((await take(rules, 7)).admitted).toBe(false);
      expect((await take(rules, 6)).states[0]).toMatchObject({ used: 10, remaining: 0 });
    });
  });
});
