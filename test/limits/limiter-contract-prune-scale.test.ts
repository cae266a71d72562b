/**
 * Limiter contract, upkeep and scale: every limiter (SQLite, in-memory, a cluster worker's asking
 * an in-memory one over IPC, and Redis) with an injected clock prune old events and expired holds
 * without changing any answer, and answer exactly with 200,000 events in the window.
 */
import { describe, expect, it } from 'vitest';
import { DAY, daily, HOUR, hourly, KINDS, limiterFixture, T0 } from './limiter-helpers.js';

describe.each(KINDS)('%s limiter', (kind) => {
  const { ctx, take, hold, fillAt, reopen, prune, storedTimes, storeEvents } = limiterFixture(kind);

  describe('prune', () => {
    /** The times of the stored events, after T0 (a backend may keep events of one millisecond as one). */
    const eventTimes = async () => (await storedTimes('s')).map((ts) => ts - T0);

    it('deletes only events older than the horizon, and answers stay the same', async () => {
      const rules = [hourly(1000), daily(1000)];
      const offsets = [0, 1000, 1000, 2000, 3 * HOUR, 5 * HOUR, DAY - 1000];
      await fillAt(rules, offsets);

      // Check the answers at several later moments (some exactly where an event leaves), before and
      // after pruning at each one.
      for (const at of [DAY - 1000, DAY, DAY + 999, DAY + 1000, DAY + 1999, DAY + 2000, DAY + 3 * HOUR, DAY + 5 * HOUR - 1, 2 * DAY - 1000, 2 * DAY]) {
        ctx.now = T0 + at;
        const before = await ctx.limiter.peek(rules);
        const ids = await eventTimes();
        const removed = await prune(() => DAY);
        const expectedKept = ids.filter((t) => t > at - DAY);
        expect(await eventTimes()).toEqual(expectedKept);
        expect(removed).toBe(ids.length - expectedKept.length);
        expect(await ctx.limiter.peek(rules)).toEqual(before);
        const brute = (window: number) => offsets.filter((t) => t > at - window).length;
        expect(before.map((s) => s.used)).toEqual([brute(HOUR), brute(DAY)]);
      }
    });

    it('keeps exact counts when new events come after a prune', async () => {
      const rules = [hourly(3)];
      await fillAt(rules, [0, 10, 20]);
      ctx.now = T0 + 2 * HOUR;
      expect(await prune(() => HOUR)).toBe(3);
      await fillAt(rules, [2 * HOUR, 2 * HOUR + 10, 2 * HOUR + 20]);
      ctx.now = T0 + 2 * HOUR + 30;
      const decision = await take(rules);
      expect(decision.admitted).toBe(false);
      expect(decision.retryAfterMs).toBe(HOUR - 30);
      expect(await prune(() => HOUR)).toBe(0);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(3);
    });

    it('sweeps expired holds and only those', async () => {
      await reopen({ holdTtlMs: 60_000 });
      const rules = [hourly(2)];
      ctx.now = T0;
      const first = await hold(rules);
      ctx.now = T0 + 30_000;
      const second = await hold(rules);
      expect((await take(rules)).admitted).toBe(false);

      ctx.now = T0 + 59_999;
      expect(await prune(() => DAY)).toBe(0);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(2);

      ctx.now = T0 + 60_000;
      expect(await prune(() => DAY)).toBe(1);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1);
      // The swept hold is gone for good: settling it later does not go negative or double count.
      await ctx.limiter.release(first.reservation!);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1);
      await ctx.limiter.commit(second.reservation!);
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1 });
      // Nothing is left to sweep.
      ctx.now = T0 + 2 * 60_000;
      expect(await prune(() => DAY)).toBe(0);
    });

    it('counts a swept hold once per series it held', async () => {
      await reopen({ holdTtlMs: 60_000 });
      const rules = [hourly(10, 'a'), hourly(10, 'b')];
      await ctx.limiter.reserve(rules, { a: { amount: 5, hold: true }, b: { amount: 7, hold: true } });
      ctx.now = T0 + 60_000;
      expect(await prune(() => DAY)).toBe(2);
      expect((await ctx.limiter.peek(rules)).map((s) => s.used)).toEqual([0, 0]);
    });
  });

  describe('scale', () => {
    it('answers exactly with 200,000 events in the window', async () => {
      // Irregular times (with repeats) and costs 1..3, from a small deterministic generator.
      let seed = 42;
      const rand = () => {
        // mulberry32
        seed = (seed + 0x6d2b79f5) | 0;
        let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
        return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
      };
      const n = 200_000;
      const ts = new Float64Array(n);
      const cost = new Uint8Array(n);
      let t = T0;
      const events: { ts: number; amount: number }[] = [];
      for (let i = 0; i < n; i++) {
        t += Math.floor(rand() * 900); // about 200,000 × 450 ms ≈ 25 h
        ts[i] = t;
        cost[i] = 1 + Math.floor(rand() * 3);
        events.push({ ts: t, amount: cost[i]! });
      }
      // Stored directly, and a limiter started on them (a memory limiter reads the tables as it starts).
      await storeEvents('big', events);
      const last = t;
      const brute = (at: number, window: number) => {
        let sum = 0;
        let oldest: number | undefined;
        for (let i = n - 1; i >= 0 && ts[i]! > at - window; i--) {
          if (ts[i]! <= at) {
            sum += cost[i]!;
            oldest = ts[i]!;
          }
        }
        return { sum, oldest };
      };

      const rules = [hourly(1_000_000, 'big'), daily(1_000_000, 'big')];
      // Forward, then back again (never before the newest event).
      for (const at of [last, last + 1, last + 10 * 60_000, last + HOUR - 1, last + 5 * HOUR, last + 10 * 60_000]) {
        ctx.now = at;
        const states = await ctx.limiter.peek(rules);
        for (const [i, window] of [HOUR, DAY].entries()) {
          const expected = brute(at, window);
          expect(states[i]!.used).toBe(expected.sum);
          expect(states[i]!.resetMs).toBe(expected.oldest === undefined ? 0 : expected.oldest + window - at);
        }
      }

      // A limit exactly at the hourly count: full, and the retry is when enough has left.
      ctx.now = last + 1;
      const count = brute(ctx.now, HOUR);
      const full = [hourly(count.sum, 'big')];
      const decision = await take(full, 1);
      expect(decision.admitted).toBe(false);
      // The first event in the window leaves at oldest + HOUR; its cost frees at least one unit.
      expect(decision.retryAfterMs).toBe(count.oldest! + HOUR - ctx.now);
      const roomy = [hourly(count.sum + 1, 'big')];
      const ok = await take(roomy, 1);
      expect(ok.admitted).toBe(true);
      expect(ok.states[0]!.used).toBe(count.sum + 1);
    });
  });
});

